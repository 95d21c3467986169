"""Prints the end-to-end release build time (generate the world, split, write parquet, card, manifest).

Usage: python bench/release_build_time.py [PERSONS ...]   (default: 200 2000)
Target: a 200-person release in under 15 s.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from entity_unlearn.builders import ReleaseConfig, build_release, generate_world
from entity_unlearn.builders.release.build import release_world_args
from entity_unlearn.builders.release.world_knowledge import WORLD_KNOWLEDGE_FILE
from entity_unlearn.builders.world.files import templates_hash


def main(sizes: list[int]) -> None:
    print(f"{'persons':>8} {'entities':>9} {'generate s':>11} {'release s':>10} {'total s':>8} {'probes':>8} {'MB':>6}")
    for persons in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            world = generate_world(**release_world_args(persons), seed=0)
            generated = time.perf_counter()
            config = ReleaseConfig(
                version="1.0.0", world_knowledge=WORLD_KNOWLEDGE_FILE, generation={"method": "template", "templates_sha256": templates_hash()}
            )
            manifest = build_release(world, Path(tmp) / "release", config)
            done = time.perf_counter()
            mb = sum(f["bytes"] for f in manifest["files"].values()) / 1e6
            print(
                f"{persons:>8} {len(world.entities):>9} {generated - start:>11.1f} {done - generated:>10.1f} {done - start:>8.1f} "
                f"{len(world.probes):>8} {mb:>6.1f}"
            )


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [200, 2000])
