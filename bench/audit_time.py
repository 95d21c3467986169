"""Prints the time `entity-unlearn audit` takes on default releases of several sizes.

Usage: python bench/audit_time.py [PERSONS ...]   (default: 200 2000)
Targets (issue 12): a 200-person release in under 10 s, 2,000 persons in under 60 s.

Each release is built first (not timed; the build runs the audit too), then audited from its
folder: reading the parquet files and every check. Imports are done before the clock starts.
Wall time varies with the machine's load; CPU time (this process) is printed beside it.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from entity_unlearn.builders import ReleaseConfig, build_release, generate_world
from entity_unlearn.builders.audit import audit_folder, load_material
from entity_unlearn.builders.audit.report import audit
from entity_unlearn.builders.release.build import release_world_args
from entity_unlearn.builders.world.files import templates_hash


def main(sizes: list[int]) -> None:
    print(f"{'persons':>8} {'probes':>8} {'load s':>7} {'checks s':>9} {'audit wall s':>13} {'audit CPU s':>12} {'target s':>9} {'failures':>9}")
    for persons in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp) / "release"
            world = generate_world(**release_world_args(persons), seed=0)  # as `build` makes it: holdout persons kept unlinked
            build_release(world, folder, ReleaseConfig(version="1.0.0", generation={"method": "template", "templates_sha256": templates_hash()}))
            audit_folder(folder)  # warm the file cache and lazy imports
            wall, cpu = time.perf_counter(), time.process_time()
            material = load_material(folder)
            loaded = time.perf_counter()
            report = audit(material)
            done_wall, done_cpu = time.perf_counter(), time.process_time()
            target = 10 if persons <= 200 else 60
            print(
                f"{persons:>8} {report['probes']:>8} {loaded - wall:>7.1f} {done_wall - loaded:>9.1f} {done_wall - wall:>13.1f} "
                f"{done_cpu - cpu:>12.1f} {target:>9} {len(report['failures']):>9}"
            )


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [200, 2000])
