"""Generation throughput: entities/s and probes/s for worlds of growing size (one process, one core).

    python bench/generate_throughput.py            # 200, 1000, 2000 entities
    python bench/generate_throughput.py 200 10000  # chosen sizes

Targets (issue 2): 200 entities under 10 s, 10,000 under 5 minutes, time linear in size.
"""

from __future__ import annotations

import platform
import sys
import time

from entity_unlearn import __version__
from entity_unlearn.builders import generate_world, split_counts


def main(sizes: list[int]) -> None:
    print(f"entity-unlearn {__version__}, Python {platform.python_version()}, {platform.processor() or platform.machine()}, seed 0, K=5")
    print(f"{'entities':>9} {'probes':>9} {'seconds':>8} {'entities/s':>11} {'probes/s':>9} {'ms/entity':>10}")
    for n in sizes:
        start = time.perf_counter()
        world = generate_world(split_counts(n), seed=0)
        took = time.perf_counter() - start
        print(f"{n:>9} {len(world.probes):>9} {took:>8.2f} {n / took:>11.1f} {len(world.probes) / took:>9.0f} {1000 * took / n:>10.2f}", flush=True)


if __name__ == "__main__":
    main([int(x) for x in sys.argv[1:]] or [200, 1000, 2000])
