"""Split hygiene: rows that keep a forget person's name where a model must keep them, holdout names in training.

Per forget set ``forgetXX``: rows of ``retain{100-XX}`` (kept knowledge, trained on), of
``neighbor`` and of ``world`` whose question or answer names one of its persons (name or alias,
as whole tokens). A model cannot both forget a person and keep answering "X is married to
<forgotten person>". Holdout persons (never trained on, the membership-inference calibration):
their names in the training text (``full``, ``corpus``) and among the options of other
entities' probes. A world has no splits: nothing to check.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from .load import EntityRow, Material, TextRow
from .text import PhraseFinder, tokens

FORGET = re.compile(r"^forget(\d\d)$")
HOLDOUT = re.compile(r"^holdout\d\d$")
EXAMPLES = 5


def naming(rows: Iterable[TextRow], people: list[EntityRow]) -> dict[str, Any]:
    """Rows whose question or answer names one of ``people``; the people so named; examples."""
    finder = PhraseFinder(tokens(n) for e in people for n in e.names)
    owner = {tokens(n): e.entity_id for e in people for n in e.names}
    n_rows = hits = 0
    named: set[str] = set()
    examples = []
    for r in rows:
        n_rows += 1
        found = {owner[p] for text in (r.question, r.answer) for p in finder.scan(tokens(text))}
        if found:
            hits += 1
            named |= found
            if len(examples) < EXAMPLES:
                examples.append({"row": r.row_id, "names": sorted(found), "question": r.question, "answer": r.answer})
    return {"rows": n_rows, "rows_naming": hits, "persons_named": len(named), "examples": examples}


def hygiene(material: Material) -> dict[str, Any]:
    if material.kind != "release":
        return {"applies": False}
    members: dict[str, list[EntityRow]] = {}
    for e in material.entities:
        for s in e.splits:
            members.setdefault(s, []).append(e)
    forget_sets = sorted(s for s in members if FORGET.match(s))
    retain: dict[str, Any] = {}
    neighbor: dict[str, Any] = {}
    world: dict[str, Any] = {}
    for fs in forget_sets:
        pct = int(FORGET.match(fs)[1])  # type: ignore[index]
        rname = f"retain{100 - pct:02d}"
        if rname in material.configs:
            retain[rname] = {"forget_set": fs, **naming(material.configs[rname], members[fs])}
        if "neighbor" in material.configs:
            neighbor[fs] = naming(material.configs["neighbor"], members[fs])
        if "world" in material.configs:
            world[fs] = naming(material.configs["world"], members[fs])
    held = sorted({e.entity_id: e for s, es in members.items() if HOLDOUT.match(s) for e in es}.values(), key=lambda e: e.entity_id)
    held_ids = {e.entity_id for e in held}
    finder = PhraseFinder(tokens(n) for e in held for n in e.names)
    training_hits = [t for t in material.training if any(True for _ in finder.scan(tokens(t)))]
    held_names = {n for e in held for n in e.names}
    in_options = [p for p in material.probes if p.entity_id not in held_ids and held_names.intersection(p.options)]
    return {
        "applies": True,
        "retain_naming_forget": retain,
        "neighbor_naming_forget": neighbor,
        "world_naming_forget": world,
        "holdout_in_training": {
            "holdout_persons": len(held),
            "texts_naming": len(training_hits),
            "examples": [t[:300] for t in training_hits[:EXAMPLES]],
        },
        "holdout_in_options": {"probes": len(in_options), "examples": [p.probe_id for p in in_options[:EXAMPLES]]},
    }
