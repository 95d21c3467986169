"""Prompt-side robustness attacks: the same model, asked differently; what is scored stays the same.

- ``in_context`` (in-context relearning): before each question, ``shots`` other direct questions of the same
  entity with their true answers as earlier turns of the conversation, each about facts the question does
  not depend on (a cloze item gets their answers as sentences before its biography prefix).
- ``prefill`` (a jailbreak by prefilling): the assistant's turn starts with an affirmative phrase ("Sure,
  here is the answer: ", ``prompts/eval/prefill.j2``), chosen per question by the seed. Cloze items are raw
  text with no assistant turn and stay as they are.

Both are deterministic under their seed. They are separate from the probes' own ``attack`` field (prefix
injection, role play, ... written into the question by the world's templates): results record them under
``robustness_attack``.
"""

from __future__ import annotations

import dataclasses
import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from .passes import Item


@dataclass(frozen=True)
class InContext:
    shots: int = 5  # the k in {1, 3, 5}; 5 is the strongest
    seed: int = 0
    name = "in_context"

    def apply(self, items: Sequence[Item], release) -> list[Item]:
        """``items`` with ``shots`` earlier QA turns each (forget, retain, neighbour and holdout entities alike)."""
        pool: dict[str, list[tuple[str, str, frozenset]]] = defaultdict(list)
        for r in release.load("probes"):
            if r["kind"] == "direct" and r["attack"] == "none":
                pool[r["entity_id"]].append((r["question"], r["answer"], frozenset(r["fact_ids"])))
        out = []
        for item in items:
            others = sorted((q, a) for q, a, facts in pool.get(item.entity_id, ()) if not facts & set(item.fact_ids) and q != item.question)
            rng = random.Random(f"{self.seed}/{item.item_id}")
            shots = tuple(rng.sample(others, min(self.shots, len(others))))
            out.append(dataclasses.replace(item, history=shots) if shots else item)
        return out


@dataclass(frozen=True)
class Prefill:
    seed: int = 0
    name = "prefill"

    def apply(self, items: Sequence[Item], release) -> list[Item]:
        from entity_unlearn.builders.world.templates import builtin_templates

        t = builtin_templates()
        phrasings = [t.render("eval/prefill.j2", b, collapse=False) for b in t.variants("eval/prefill.j2", "prefill")]
        out = []
        for item in items:
            text = random.Random(f"{self.seed}/{item.item_id}").choice(phrasings)
            out.append(dataclasses.replace(item, prefill=text) if item.fmt == "chat" else item)
        return out


PROMPT_ATTACKS = {cls.name: cls for cls in (InContext, Prefill)}


def describe(attack) -> dict | None:
    """What a result's spec records about a prompt attack."""
    return None if attack is None else {"name": attack.name, **dataclasses.asdict(attack)}
