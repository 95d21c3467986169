"""Variety: how many distinct surface forms the text has once names, fact values and numbers are masked.

A form is a text with the entity's names (``<E>``), the text of its facts and options (``<V>``),
numbers (``<N>``) and personal pronouns (``<P>``) masked: "When was Ilse Varnholm born?" and
"When was Kessa Droum born?" are one form. Counted per relation for direct (d1) questions, their
paraphrases (d2) and answers, per relation for biography sentences (a sentence counts for every
fact it states), and per attack for the wrapper an attack puts around a question (the plain
question masked as ``<Q>``, a hint sentence that is another probe's answer as ``<A>``). Few forms
mean a model can learn the template instead of the entity. Answer length is reported by depth.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from typing import Any

from .heuristics import words
from .load import EntityRow, FactRow, Material, ProbeRow
from .text import DIGITS, sentences


class Masker:
    """Masks the names and fact texts of one entity (and of the entities its facts name)."""

    def __init__(self, names: tuple[str, ...], values: set[str], pronouns: re.Pattern) -> None:
        alts = sorted({v for v in values if v and v not in names} - set(names), key=len, reverse=True)
        self.names = re.compile(r"(?<!\w)(?:" + "|".join(map(re.escape, sorted(names, key=len, reverse=True))) + r")(?!\w)") if names else None
        self.values = re.compile(r"(?<!\w)(?:" + "|".join(map(re.escape, alts)) + r")(?!\w)") if alts else None
        self.pronouns = pronouns

    def __call__(self, text: str, extra: tuple[str, ...] = ()) -> str:
        for v in sorted(extra, key=len, reverse=True):
            text = text.replace(v, "<V>")
        if self.names is not None:
            text = self.names.sub("<E>", text)
        if self.values is not None:
            text = self.values.sub("<V>", text)
        return self.pronouns.sub("<P>", DIGITS.sub("<N>", text))


def maskers(material: Material) -> dict[str, Masker]:
    pronouns = re.compile(r"(?<!\w)(?:" + "|".join(words()["pronouns"]) + r")(?!\w)", re.IGNORECASE)
    by_id: dict[str, EntityRow] = {e.entity_id: e for e in material.entities}
    facts: dict[str, list[FactRow]] = defaultdict(list)
    for f in material.facts:
        facts[f.entity_id].append(f)
    out = {}
    for e in material.entities:
        values = {f.text for f in facts[e.entity_id]}
        for f in facts[e.entity_id]:
            if f.target_id in by_id:
                values.update(by_id[f.target_id].names)
        out[e.entity_id] = Masker(e.names, values, pronouns)
    return out


def _forms(texts: dict[str, list[str]]) -> dict[str, dict[str, Any]]:
    out = {}
    for key, items in sorted(texts.items()):
        c = Counter(items)
        out[key] = {"texts": len(items), "forms": len(c), "most_common": c.most_common(1)[0][0]}
    return out


def renamed(a: str, b: str, most: int = 3) -> bool:
    """``a`` is ``b`` with at most ``most`` words changed in one place (an alias or a misspelt name)."""
    x, y = a.split(), b.split()
    while x and y and x[0] == y[0]:
        x, y = x[1:], y[1:]
    while x and y and x[-1] == y[-1]:
        x, y = x[:-1], y[:-1]
    return len(x) <= most and len(y) <= most


def wrapper(p: ProbeRow, base: ProbeRow | None, mask: Masker, hints: list[str]) -> str:
    """The text an attack adds around the plain question, masked."""
    q = p.question
    if base is not None and base.question in q:
        q = q.replace(base.question, "<Q>")
    elif base is not None and renamed(q, base.question):
        return "<Q>"
    for h in hints:
        q = q.replace(h, "<A>")
    return mask(q, p.options)


def variety(material: Material) -> dict[str, Any]:
    """Distinct masked forms per relation (d1 questions, paraphrases, answers, biography sentences), per attack
    (wrappers), and answer lengths in words by depth."""
    mask = maskers(material)
    d1q: dict[str, list[str]] = defaultdict(list)
    d1a: dict[str, list[str]] = defaultdict(list)
    para: dict[str, list[str]] = defaultdict(list)
    wrappers: dict[str, list[str]] = defaultdict(list)
    lengths: dict[str, list[tuple[int, int]]] = defaultdict(list)
    plain = {p.probe_id: p for p in material.probes if p.attack == "none"}
    hints: dict[str, list[str]] = defaultdict(list)
    for p in material.probes:
        if p.depth == "d1" and p.attack == "none":
            hints[p.entity_id].append(p.answer)
    for p in material.probes:
        m = mask.get(p.entity_id)
        if m is None:
            continue
        lengths[p.depth].append((len(p.short_answer.split()), len(p.answer.split())))
        if p.attack != "none":
            wrappers[p.attack].append(wrapper(p, plain.get(p.base_id), m, hints[p.entity_id]))
        elif p.kind == "direct":
            d1q[p.relation].append(m(p.question))
            d1a[p.relation].append(m(p.answer, (p.short_answer,)))
        elif p.kind == "paraphrase":
            para[p.relation].append(m(p.question))
    facts: dict[str, list[FactRow]] = defaultdict(list)
    for f in material.facts:
        facts[f.entity_id].append(f)
    bio: dict[str, list[str]] = defaultdict(list)
    for e in material.entities:
        m = mask[e.entity_id]
        for s in sentences(e.biography):
            stated = {f.relation for f in facts[e.entity_id] if f.text and f.text in s} or {"(no fact)"}
            form = m(s)
            for r in stated:
                bio[f"{e.entity_type}/{r}"].append(form)
    return {
        "d1_questions": _forms(d1q),
        "paraphrased_questions": _forms(para),
        "d1_answers": _forms(d1a),
        "biography_sentences": _forms(bio),
        "attack_wrappers": _forms(wrappers),
        "answer_words_by_depth": {
            d: {"probes": len(v), "short_answer": round(sum(a for a, _ in v) / len(v), 2), "answer": round(sum(b for _, b in v) / len(v), 2)}
            for d, v in sorted(lengths.items())
        },
    }
