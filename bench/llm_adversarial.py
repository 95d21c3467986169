"""How many adversarial LLM answers verification lets through: a local server answers every task with one behaviour.

    python bench/llm_adversarial.py            # 20 entities (persons, organisations, places), one answer per task

Behaviours (tests/openai_server.py): ``lookalike`` wrong answers are the true one with zero-width characters in it;
``negated`` paraphrased answers read "It is false and never happened that the answer is X.", biographies open every
paragraph with "It is not true that"; ``good`` is the control. Printed per behaviour and task: items accepted / items
(an accepted item is wording that enters the release). Every answer goes through the real openai client.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from openai_server import ScriptedServer  # noqa: E402

from entity_unlearn.builders import LLMConfig, generate_world, split_counts  # noqa: E402
from entity_unlearn.builders.llm.enrich import enrich_world  # noqa: E402

CASES = {"good": ("bio", "paraphrase", "perturb"), "lookalike": ("perturb",), "negated": ("bio", "paraphrase")}


def main(n: int = 20) -> None:
    world = generate_world(split_counts(n), seed=0)
    print(f"{n} entities, one answer per task (max_attempts 1)")
    for behaviour, tasks in CASES.items():
        server = ScriptedServer()
        server.default = behaviour
        server.start()
        try:
            with tempfile.TemporaryDirectory() as cache:
                config = LLMConfig(model="bench-model", base_url=server.url, cache_dir=cache, max_attempts=1, tasks=tasks)
                _, report = enrich_world(world, config)
        finally:
            server.stop()
        for task, a in report["generation"]["acceptance"].items():
            print(f"  {behaviour:<10} {task:<10} accepted {a['accepted']:>4} / {a['items']:<4}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if sys.argv[1:] else 20)
