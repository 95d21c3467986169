"""Answer leakage: questions that state their own answer, or the answer of another probe of the same entity.

- own question: the probe's short answer occurs (as whole tokens) in its question. A question
  that lists every option (the ``multiple_choice`` attack) offers the answer among equals and is
  not counted; one that names the answer and only some wrong options ("Which came first, A or
  B?") is.
- other question: the short answer occurs in the question of another probe of the same entity
  (a hint, a reverse question naming a title, ...). Questions listing every option are not
  counted as stating anything, nor is an answer that is the entity's own name (every question
  about the entity states it: reverse probes). This matters where probes share a context (few-shot prompts,
  one conversation); evaluated one by one, they do not leak.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

from .load import Material, ProbeRow
from .text import PhraseFinder, contains, tokens

EXAMPLES = 5


def lists_all_options(p: ProbeRow, q: tuple[str, ...]) -> bool:
    return all(contains(q, tokens(o)) for o in p.options)


def leakage(material: Material) -> dict[str, Any]:
    """Counts of probes by ``depth/kind`` and relation whose answer is in their own question, or in another's."""
    own_by: dict[str, Counter] = defaultdict(Counter)
    own_relations: Counter = Counter()
    other_by: dict[str, Counter] = defaultdict(Counter)
    stated_by: Counter = Counter()
    own_examples: list[dict[str, str]] = []
    other_examples: list[dict[str, str]] = []
    by_entity: dict[str, list[ProbeRow]] = defaultdict(list)
    for p in material.probes:
        by_entity[p.entity_id].append(p)
    names = {e.entity_id: {tokens(n) for n in e.names} for e in material.entities}
    for eid, probes in by_entity.items():
        own_names = names.get(eid, set())
        qtoks = [tokens(p.question) for p in probes]
        listing = [lists_all_options(p, q) for p, q in zip(probes, qtoks)]
        answers = [tokens(p.short_answer) for p in probes]
        finder = PhraseFinder(answers)
        found_in: dict[tuple[str, ...], list[int]] = defaultdict(list)
        for j, q in enumerate(qtoks):
            if not listing[j]:
                for phrase in set(finder.scan(q)):
                    found_in[phrase].append(j)
        for i, p in enumerate(probes):
            group = f"{p.depth}/{p.kind}"
            own_by[group]["probes"] += 1
            other_by[group]["probes"] += 1
            stating = [j for j in found_in.get(answers[i], ()) if j != i] if answers[i] not in own_names else []
            if i in found_in.get(answers[i], ()):
                own_by[group]["leaks"] += 1
                own_relations[p.relation] += 1
                if len(own_examples) < EXAMPLES:
                    own_examples.append({"probe_id": p.probe_id, "question": p.question, "answer": p.short_answer})
            if stating:
                other_by[group]["leaks"] += 1
                for j in stating:
                    stated_by[f"{probes[j].depth}/{probes[j].kind}" + (f"@{probes[j].attack}" if probes[j].attack != "none" else "")] += 1
                if len(other_examples) < EXAMPLES:
                    j = stating[0]
                    other_examples.append(
                        {"probe_id": p.probe_id, "answer": p.short_answer, "stated_by": probes[j].probe_id, "question": probes[j].question}
                    )

    def table(counts: dict[str, Counter]) -> dict[str, Any]:
        out = {k: {"probes": c["probes"], "leaks": c["leaks"], "share": round(c["leaks"] / c["probes"], 4)} for k, c in sorted(counts.items())}
        return {"by_depth_kind": out, "leaks": sum(c["leaks"] for c in counts.values()), "probes": sum(c["probes"] for c in counts.values())}

    return {
        "own_question": {**table(own_by), "by_relation": dict(sorted(own_relations.items())), "examples": own_examples},
        "other_question": {**table(other_by), "stated_by": dict(sorted(stated_by.items())), "examples": other_examples},
    }
