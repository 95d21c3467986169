"""LLM-assisted generation throughput against a local OpenAI-compatible server with artificial latency.

    python bench/llm_throughput.py                    # 200 entities, bio task, 200 ms latency, concurrency 32
    python bench/llm_throughput.py 1000 0.2 64 bio,paraphrase,perturb

Target (issue): at least 20 entity biographies per second at concurrency 32 with
200 ms per request, so a 10,000-entity release takes minutes on a real endpoint.
Every answer goes through the real openai client, verification and a fresh cache.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from openai_server import ScriptedServer  # noqa: E402

from entity_unlearn.builders import LLMConfig, generate_world, split_counts  # noqa: E402
from entity_unlearn.builders.llm.enrich import enrich_world  # noqa: E402


def main(n: int = 200, latency: float = 0.2, concurrency: int = 32, tasks: str = "bio") -> None:
    world = generate_world(split_counts(n), seed=0)
    server = ScriptedServer(latency_s=latency).start()
    try:
        with tempfile.TemporaryDirectory() as cache:
            config = LLMConfig(model="bench-model", base_url=server.url, cache_dir=cache, concurrency=concurrency, tasks=tuple(tasks.split(",")))
            start = time.perf_counter()
            _, report = enrich_world(world, config)
            took = time.perf_counter() - start
            again = time.perf_counter()
            _, cached = enrich_world(world, config)
            rebuild = time.perf_counter() - again
    finally:
        server.stop()
    run, gen = report["run"], report["generation"]
    print(f"{n} entities, tasks {tasks}, latency {latency * 1000:.0f} ms, concurrency {concurrency}")
    print(
        f"  {run['requests']} requests in {took:.2f} s: {n / took:.1f} entities/s, {run['requests'] / took:.1f} requests/s "
        f"(ideal {concurrency / latency:.0f} requests/s)"
    )
    print(f"  acceptance { ({k: v['rate'] for k, v in gen['acceptance'].items()}) }; tokens {gen['tokens_in']} in / {gen['tokens_out']} out")
    print(f"  rebuild from the cache: {cached['run']['requests']} requests, {cached['run']['cache_hits']} hits, {rebuild:.2f} s")


if __name__ == "__main__":
    a = sys.argv[1:]
    main(int(a[0]) if a else 200, float(a[1]) if len(a) > 1 else 0.2, int(a[2]) if len(a) > 2 else 32, a[3] if len(a) > 3 else "bio")
