"""Prints the time `entity-unlearn audit` takes on default releases of several sizes, step by step.

Usage: python bench/audit_time.py [PERSONS ...] [--releases DIR] [--baseline GIT_REF]   (default: 200 2000)
Targets (issue 12): a 200-person release in under 10 s, 2,000 persons in under 60 s.

Each release (seed 0, built as `build` builds it) is built first, not timed, into a temporary folder, or into
``--releases DIR`` where a release built by an earlier run is reused. It is then audited from its folder in a
fresh process (imports done and the file cache warmed by one untimed read before the clock starts): reading
the parquet files, then every check. Wall time varies with the machine's load; the process's CPU time is
printed beside it. ``--baseline REF`` also times the audit package (``builders/audit``) of that git commit on
the same releases, alternating with this one, and prints the ratio of the two: the measure that load does not
spoil.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import tarfile
import tempfile
import time
from io import BytesIO
from pathlib import Path

STEPS = ("shortcuts", "floor", "leakage", "variety", "consistency", "language", "hygiene")
ROOT = Path(__file__).resolve().parents[1]


def build(persons: int, folder: Path) -> None:
    from entity_unlearn.builders import ReleaseConfig, build_release, generate_world
    from entity_unlearn.builders.release.build import release_world_args
    from entity_unlearn.builders.world.files import templates_hash

    if (folder / "manifest.json").is_file():
        return
    world = generate_world(**release_world_args(persons), seed=0)  # as `build` makes it: holdout persons kept unlinked
    build_release(world, folder, ReleaseConfig(version="1.0.0", generation={"method": "template", "templates_sha256": templates_hash()}))


def audit_package(package: str | None):
    """The ``entity_unlearn.builders.audit`` package, or a copy of it unpacked at ``package`` (a baseline)."""
    if package is None:
        import entity_unlearn.builders.audit as audit

        return audit
    name = "entity_unlearn.builders.audit_baseline"
    spec = importlib.util.spec_from_file_location(name, Path(package) / "__init__.py", submodule_search_locations=[package])
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.modules[name] = module
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def time_one(folder: str, package: str | None) -> dict:
    """One timed audit of ``folder`` in this process: load and check seconds (wall, CPU), and per step where known."""
    audit = audit_package(package)
    run = sys.modules[audit.__name__ + ".report"].audit
    import tqdm.auto  # noqa: F401

    import entity_unlearn.eval.metrics  # noqa: F401  lazy imports of the checks, done before the clock starts

    audit.load_material(folder)  # warm the file cache and pyarrow
    wall, cpu = time.perf_counter(), time.process_time()
    material = audit.load_material(folder)
    loaded, loaded_cpu = time.perf_counter(), time.process_time()
    timings: dict = {}
    try:
        report = run(material, timings=timings)
    except TypeError:  # a baseline without per-step timings
        report = run(material)
    done, done_cpu = time.perf_counter(), time.process_time()
    return {
        "probes": report["probes"],
        "failures": len(report["failures"]),
        "load": [loaded - wall, loaded_cpu - cpu],
        "checks": [done - loaded, done_cpu - loaded_cpu],
        "total": [done - wall, done_cpu - cpu],
        "steps": timings,
    }


def baseline_package(ref: str, into: Path) -> str:
    """``builders/audit`` of git commit ``ref``, unpacked under ``into``."""
    data = subprocess.run(["git", "-C", str(ROOT), "archive", ref, "builders/audit"], check=True, capture_output=True).stdout
    with tarfile.open(fileobj=BytesIO(data)) as tar:
        tar.extractall(into, filter="data")
    return str(into / "builders" / "audit")


def timed(folder: Path, package: str | None) -> dict:
    cmd = [sys.executable, __file__, "--time-one", str(folder)] + (["--package", package] if package else [])
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("persons", nargs="*", type=int, default=[200, 2000])
    ap.add_argument("--releases", help="folder of built releases to reuse (built there when missing)")
    ap.add_argument("--baseline", help="git ref whose builders/audit to time too, for a ratio")
    ap.add_argument("--time-one", help=argparse.SUPPRESS)
    ap.add_argument("--package", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.time_one:
        print(json.dumps(time_one(args.time_one, args.package)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        releases = Path(args.releases or tmp)
        base = baseline_package(args.baseline, Path(tmp) / "baseline") if args.baseline else None
        for persons in args.persons:
            folder = releases / f"release-{persons}-seed0"
            build(persons, folder)
            now = timed(folder, None)
            target = 10 if persons <= 200 else 60
            print(f"\n{persons} persons, {now['probes']} probes, {now['failures']} threshold(s) broken; target {target} s")
            print(f"{'':14} {'wall s':>8} {'CPU s':>8}")
            rows = [("read files", now["load"])] + [(s, now["steps"][s]) for s in STEPS if s in now["steps"]] + [("audit", now["total"])]
            for name, (w, c) in rows:
                print(f"{name:14} {w:>8.1f} {c:>8.1f}")
            if base is not None:
                old = timed(folder, base)
                again = timed(folder, None)
                w = (now["total"][0] + again["total"][0]) / 2
                c = (now["total"][1] + again["total"][1]) / 2
                print(
                    f"baseline {args.baseline}: {old['total'][0]:.1f} s wall, {old['total'][1]:.1f} s CPU; this tree, run before and after it: "
                    f"{now['total'][0]:.1f} and {again['total'][0]:.1f} s wall, {now['total'][1]:.1f} and {again['total'][1]:.1f} s CPU; "
                    f"ratio to their mean {old['total'][0] / w:.1f}x wall, {old['total'][1] / c:.1f}x CPU"
                )


if __name__ == "__main__":
    main()
