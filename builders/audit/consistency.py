"""The world's invariants, re-checked from the published records alone (no generator code, no type spec).

What the files state must hold together: every reference resolves, facts and entity profiles
agree, names are unique and novel, probes are well formed and their answers are the facts
they cite, no wrong option is in fact true, no question has two answers. Rules the type spec
would state (dates in order, symmetric relations, hidden attributes) are mined from the data
instead: an order between two time fields (within an entity, or between an entity and the one a
relation links it to) that nearly all entities follow is a rule, and the few that break it are
violations; so is a link left unreciprocated in a relation that is otherwise reciprocated. An
attribute that no entity of a type states as a fact is hidden (a person's gender decides names
and pronouns but is never asked); one stated by some entities of a type must be stated by all
that have it.

A probe cites facts either of its own entity (the answer is the fact's text) or of another entity
that point at it (an *inverse* probe, "Which company did X found?": the answer is that entity's
name). Names are novel when no entity's full name is a famous person's (``notable_hashes.txt``)
and no one-word name or alias is a real name, place or word (``real_names.txt``, ``real_words.txt``);
realistic given names and surnames are allowed in names of several words. The block lists are the
generator's data files, read through ``builders/world/blocklist.py`` (no generator code).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import date
from typing import Any

from ..world.blocklist import is_notable, is_real_word
from .load import EntityRow, FactRow, Material, ProbeRow

EXAMPLES = 5


class Findings:
    """Violations by check, each counted, a few kept as examples."""

    def __init__(self, checks: tuple[str, ...]) -> None:
        self.counts: Counter = Counter({c: 0 for c in checks})
        self.examples: dict[str, list[str]] = {c: [] for c in checks}

    def add(self, check: str, text: str) -> None:
        self.counts[check] += 1
        if len(self.examples[check]) < EXAMPLES:
            self.examples[check].append(text)

    def result(self) -> dict[str, Any]:
        return {c: {"violations": self.counts[c], "examples": self.examples[c]} for c in sorted(self.counts)}


CHECKS = (
    "references",
    "facts_match_profiles",
    "unique_names",
    "novel_names",
    "symmetric_links",
    "dates_in_order",
    "probe_records",
    "answers_match_facts",
    "wrong_options_true",
    "ambiguous_questions",
)


def name_problem(name: str) -> str | None:
    """Why ``name`` is not novel: a famous person's full name, or a one-word real name; else None."""
    if len(name.split()) == 1 and is_real_word(name):
        return "is a real one-word name (a given name, surname, place or famous mononym)"
    if is_notable(name):
        return "is a famous person's name"
    return None


def time_values(entity: EntityRow, facts: list[FactRow], year_like: set[str]) -> dict[str, list[float]]:
    """Field -> the times it states: ISO dates (as fractional years), event years, year-valued attributes."""
    out: dict[str, list[float]] = defaultdict(list)
    for f in facts:
        v = f.value
        if len(v) == 10 and v[4] == "-" and v[7] == "-" and v[:4].isdigit():
            try:
                d = date.fromisoformat(v)
            except ValueError:
                continue
            out[f.relation].append(d.year + (d.timetuple().tm_yday - 1) / 366)
        elif f.year is not None:
            out[f.relation].append(float(f.year))
        elif f.relation in year_like:
            out[f.relation].append(float(v))
    return out


def mine_orders(
    pairs: dict[tuple[str, ...], list[tuple[float, float, str]]], findings: Findings, min_support: int, max_share: float
) -> list[dict[str, Any]]:
    """Rules ``a < b`` (or ``a > b``) that at least ``1 - max_share`` of ``min_support``+ entities follow; the
    comparisons of the others that break it are violations.

    Entities, not comparisons, are counted: the comparisons of one entity (each of its works against
    its mentor's birth) are not independent, so one entity with many of them would make a
    coincidence look like a rule.
    """
    rules = []
    for key, obs in sorted(pairs.items()):
        less = [o for o in obs if o[0] < o[1]]
        more = [o for o in obs if o[0] > o[1]]
        if not less and not more:
            continue
        minority, sign = (more, "<") if len(less) >= len(more) else (less, ">")
        who = {o[2] for o in less + more}
        breaking = {o[2] for o in minority}
        n = len(who)
        if n < min_support or len(breaking) > max_share * n:
            continue
        rules.append({"rule": f"{key[0]}: {key[1]} {sign} {key[2]}", "entities": n, "violations": len(breaking)})
        for a, b, e in minority:
            findings.add(
                "dates_in_order", f"{e}: {key[1]} {a:.0f} is not {sign} {key[2]} {b:.0f}, unlike {n - len(breaking)} of {n} entities ({key[0]})"
            )
    return rules


def consistency(material: Material, min_support: int = 20, max_share: float = 0.01, symmetric_share: float = 0.9) -> dict[str, Any]:
    """Violations per check (count and examples), and the order rules mined from the data."""
    out = Findings(CHECKS)
    ents = {e.entity_id: e for e in material.entities}
    facts = {f.fact_id: f for f in material.facts}
    by_entity: dict[str, list[FactRow]] = defaultdict(list)
    if len(ents) != len(material.entities):
        out.add("references", "an entity id occurs twice")
    if len(facts) != len(material.facts):
        out.add("references", "a fact id occurs twice")
    for f in material.facts:
        by_entity[f.entity_id].append(f)
        if f.entity_id not in ents:
            out.add("references", f"fact {f.fact_id}: entity {f.entity_id} does not exist")
        elif f.relation not in ents[f.entity_id].attributes and f.relation not in ents[f.entity_id].links:
            out.add("facts_match_profiles", f"fact {f.fact_id}: {f.entity_id} has no attribute or link {f.relation!r}")
        if f.target_id is not None and f.target_id not in ents:
            out.add("references", f"fact {f.fact_id}: target {f.target_id} does not exist")
    # profiles against facts (attributes no entity of the type states are hidden); names
    owners: dict[str, set[str]] = defaultdict(set)
    stated = {(ents[f.entity_id].entity_type, f.relation) for f in material.facts if f.entity_id in ents}
    hidden = sorted({f"{e.entity_type}/{a}" for e in material.entities for a in e.attributes if (e.entity_type, a) not in stated})
    for e in material.entities:
        mine = by_entity[e.entity_id]
        linked = {(f.relation, f.target_id) for f in mine if f.target_id is not None}
        for rel, links in e.links.items():
            for link in links:
                if link["target"] not in ents:
                    out.add("references", f"{e.entity_id}: {rel} -> {link['target']} does not exist")
                elif (rel, link["target"]) not in linked:
                    out.add("facts_match_profiles", f"{e.entity_id}: {rel} -> {link['target']} has no fact")
        for attr, value in e.attributes.items():
            if value not in (None, [], "") and (e.entity_type, attr) in stated and not any(f.relation == attr for f in mine):
                out.add("facts_match_profiles", f"{e.entity_id}: attribute {attr!r} has no fact")
        for n in e.names:
            owners[n.lower()].add(e.entity_id)
            problem = name_problem(n)
            if problem:
                out.add("novel_names", f"{e.entity_id}: {n!r} {problem}")
    for name, ids in sorted(owners.items()):
        if len(ids) > 1:
            out.add("unique_names", f"{name!r} names {', '.join(sorted(ids))}")
    # symmetric relations: reciprocated by nearly every link
    links: dict[tuple[str, str], list[tuple[str, str]]] = defaultdict(list)
    for e in material.entities:
        for rel, targets in e.links.items():
            for link in targets:
                links[(e.entity_type, rel)].append((e.entity_id, link["target"]))
    symmetric = []
    for (etype, rel), pairs in sorted(links.items()):
        back = [(a, b) for a, b in pairs if b in ents and any(x["target"] == a for x in ents[b].links.get(rel, []))]
        if len(back) >= symmetric_share * len(pairs) and len(back) >= 2:
            symmetric.append(f"{etype}/{rel}")
            returned = set(back)
            for a, b in pairs:
                if (a, b) not in returned:
                    theirs = [x["target"] for x in ents[b].links.get(rel, [])] if b in ents else []
                    out.add("symmetric_links", f"{a} {rel} {b}, but {b}'s {rel} is {theirs or 'nobody'}")
    # dates in order, mined
    # a year-valued attribute: every value a plain number up to 2100, written as it is ("1980", never "1,980")
    values_by_rel: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for f in material.facts:
        if f.year is None and f.target_id is None:
            values_by_rel[f.relation].append((f.value, f.text))
    year_like = {r for r, vs in values_by_rel.items() if all(v.isdigit() and v == t and int(v) <= 2100 for v, t in vs)}
    times = {e.entity_id: time_values(e, by_entity[e.entity_id], year_like) for e in material.entities}
    pairs: dict[tuple[str, ...], list[tuple[float, float, str]]] = defaultdict(list)
    for e in material.entities:
        mine = times[e.entity_id]
        for a, xs in mine.items():
            for b, ys in mine.items():
                if a < b:
                    pairs[(e.entity_type, a, b)] += [(x, y, e.entity_id) for x in xs for y in ys]
        for rel, targets in e.links.items():
            for link in targets:
                theirs = times.get(link["target"], {})
                for a, xs in mine.items():
                    for b, ys in theirs.items():
                        pairs[(f"{e.entity_type} -{rel}->", a, f"target.{b}")] += [(x, y, e.entity_id) for x in xs for y in ys]
    rules = mine_orders(pairs, out, min_support, max_share)
    probe_checks(material, ents, facts, by_entity, out)
    return {
        "checks": out.result(),
        "violations": sum(out.counts.values()),
        "order_rules": rules,
        "symmetric_relations": symmetric,
        "hidden_attributes": hidden,
    }


def stated_value(fact: FactRow, probe: ProbeRow, ents: dict[str, EntityRow]) -> str:
    """What ``fact`` answers in ``probe``: its text, or for an inverse probe (the fact points at the probe's
    entity from another) the name of the entity that states it."""
    if fact.entity_id != probe.entity_id and fact.target_id == probe.entity_id and fact.entity_id in ents:
        return ents[fact.entity_id].name
    return fact.text


def true_values(fact: FactRow, probe: ProbeRow, ents: dict[str, EntityRow], by_entity: dict[str, list[FactRow]], incoming) -> set[str]:
    """Every true answer of the question ``fact`` answers in ``probe`` (a list field's other elements, the other
    entities that point at the probe's entity by the same relation)."""
    if fact.entity_id != probe.entity_id and fact.target_id == probe.entity_id:
        return {ents[f.entity_id].name for f in incoming[(probe.entity_id, fact.relation)] if f.entity_id in ents}
    return {f.text for f in by_entity[probe.entity_id] if f.relation == fact.relation}


def probe_checks(
    material: Material, ents: dict[str, EntityRow], facts: dict[str, FactRow], by_entity: dict[str, list[FactRow]], out: Findings
) -> None:
    """Probe records well formed; answers are the cited facts; no wrong option true; no question with two answers."""
    answers: dict[tuple[str, str], set[str]] = defaultdict(set)
    reverse: dict[str, set[str]] = defaultdict(set)
    incoming: dict[tuple[str, str], list[FactRow]] = defaultdict(list)
    for f in material.facts:
        if f.target_id is not None:
            incoming[(f.target_id, f.relation)].append(f)
    for p in material.probes:
        if p.entity_id not in ents:
            out.add("references", f"probe {p.probe_id}: entity {p.entity_id} does not exist")
            continue
        cited = [facts.get(fid) for fid in p.fact_ids]
        if any(f is None for f in cited):
            out.add("references", f"probe {p.probe_id}: cites a fact that does not exist ({list(p.fact_ids)})")
            continue
        if not 0 <= p.answer_index < len(p.options) or p.options[p.answer_index] != p.short_answer:
            out.add("probe_records", f"probe {p.probe_id}: options[answer_index] is not the short answer")
        if len(set(p.options)) != len(p.options):
            out.add("probe_records", f"probe {p.probe_id}: options repeat")
        if len(p.perturbed_answer) != len(p.options) - 1:
            out.add("probe_records", f"probe {p.probe_id}: {len(p.perturbed_answer)} perturbed answers for {len(p.options)} options")
        if p.paraphrased_answer in p.perturbed_answer:
            out.add("probe_records", f"probe {p.probe_id}: a perturbed answer is the paraphrased answer")
        e = ents[p.entity_id]
        if p.kind in ("direct", "paraphrase", "cloze") and cited:
            said = [stated_value(f, p, ents) for f in cited]  # type: ignore[arg-type]
            if len(cited) == 1 and said[0] != p.short_answer:
                out.add("answers_match_facts", f"probe {p.probe_id}: answer {p.short_answer!r} but fact {cited[0].fact_id} says {said[0]!r}")  # type: ignore[union-attr]
            if len(cited) > 1 and not all(s in p.short_answer for s in said):
                out.add("answers_match_facts", f"probe {p.probe_id}: answer {p.short_answer!r} does not state every cited fact ({said})")
            if len(cited) == 1:
                true = true_values(cited[0], p, ents, by_entity, incoming)  # type: ignore[arg-type]
                wrong = [o for i, o in enumerate(p.options) if i != p.answer_index and o in true]
                if wrong:
                    out.add("wrong_options_true", f"probe {p.probe_id}: wrong options {wrong} are true {cited[0].relation} values of {p.entity_id}")  # type: ignore[union-attr]
        elif p.kind == "reverse" and p.short_answer not in e.names:
            out.add("answers_match_facts", f"probe {p.probe_id}: a reverse probe's answer {p.short_answer!r} is not the entity's name")
        elif p.kind == "hop" and cited and cited[-1].text != p.short_answer:  # type: ignore[union-attr]
            out.add("answers_match_facts", f"probe {p.probe_id}: answer {p.short_answer!r} but the last cited fact says {cited[-1].text!r}")  # type: ignore[union-attr]
        if p.kind == "reverse":
            reverse[p.question].add(p.short_answer)
        elif p.attack == "none":
            answers[(p.entity_id, p.question)].add(p.short_answer)
    for (eid, q), shorts in sorted(answers.items()):
        if len(shorts) > 1:
            out.add("ambiguous_questions", f"{eid}: {q!r} has answers {sorted(shorts)}")
    for q, shorts in sorted(reverse.items()):
        if len(shorts) > 1:
            out.add("ambiguous_questions", f"{q!r} has answers {sorted(shorts)}")
