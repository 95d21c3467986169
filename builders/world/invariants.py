"""Invariants of a sampled world, checked independently of the sampler.

Each violation names the entity, the rule and what to do; ``check_world`` raises
one WorldInvariantError listing them all.
"""

from __future__ import annotations

from collections import defaultdict

from entity_unlearn.errors import EntityUnlearnError

from ..schema import Entity
from .bounds import holds, year_of, year_range
from .names import real_names
from .registry import TypeRegistry


class WorldInvariantError(EntityUnlearnError, ValueError):
    """The world breaks its invariants; ``violations`` lists each as a sentence."""

    def __init__(self, violations: list[str]) -> None:
        self.violations = violations
        shown = "\n  ".join(violations[:20])
        more = f"\n  ... and {len(violations) - 20} more" if len(violations) > 20 else ""
        super().__init__(f"{len(violations)} world invariant violation(s):\n  {shown}{more}")


def _label(e: Entity) -> str:
    return f"{e.entity_id} ({e.name})"


def world_violations(entities: tuple[Entity, ...] | list[Entity], registry: TypeRegistry) -> list[str]:
    """Every broken invariant, as sentences naming entity and rule."""
    out: list[str] = []
    by_id = {e.entity_id: e for e in entities}
    if len(by_id) != len(entities):
        out.append("entity ids: an entity id occurs twice")
    real = real_names()
    owners: dict[str, list[str]] = defaultdict(list)
    for e in entities:
        spec = registry.get(e.entity_type)
        me = e.attributes
        owners[e.name.lower()].append(e.entity_id)
        for alias in e.aliases:
            owners[alias.lower()].append(e.entity_id)
        words = [w for w in e.name.replace(".", " ").split() if w.lower() in real]
        if words:
            out.append(f"{_label(e)}: rule 'novel names': {words} are real names")
        for attr in spec.attributes:
            v = me.get(attr.name)
            if v is None:
                if attr.probability >= 1.0:
                    out.append(f"{_label(e)}: rule 'required attribute': {attr.name} is missing")
                continue
            lo, hi = year_range(attr.min, attr.max, me)
            if attr.kind in ("date", "year", "int"):
                y = v if attr.kind == "int" else year_of(v)
                if not lo <= y <= hi:  # type: ignore[operator]
                    out.append(
                        f"{_label(e)}: rule 'dates in order': {attr.name}={v} is outside [{lo}, {hi}] from {[str(x) for x in attr.min]} / {[str(x) for x in attr.max]}"
                    )
            if attr.kind == "titled_events":
                years = [i["year"] for i in v]
                if len(set(years)) != len(years):
                    out.append(f"{_label(e)}: rule 'one {attr.name} per year': years {years} repeat, so 'the {attr.name} of YEAR' is ambiguous")
                for i in v:
                    if not lo <= i["year"] <= hi:
                        out.append(f"{_label(e)}: rule 'dates in order': {attr.name} {i['value']!r} in {i['year']} is outside [{lo}, {hi}]")
            if attr.unique and attr.is_list:
                for i in v:
                    owners[(i["value"] if isinstance(i, dict) else i).lower()].append(e.entity_id)
        for rel in spec.relations:
            for link in e.links.get(rel.name, []):
                t = by_id.get(link["target"])
                if t is None:
                    out.append(f"{_label(e)}: rule 'referenced entity exists': {rel.name} -> {link['target']} is not in the world")
                    continue
                if t.entity_type != rel.target:
                    out.append(f"{_label(e)}: rule 'relation target type': {rel.name} -> {_label(t)} is a {t.entity_type}, not a {rel.target}")
                if t.entity_id == e.entity_id:
                    out.append(f"{_label(e)}: rule 'no self links': {rel.name} points to itself")
                for c in rel.constraints:
                    if not holds(c, me, t.attributes, link.get("year")):
                        out.append(f"{_label(e)}: rule 'dates in order': {rel.name} -> {_label(t)} breaks '{c}'")
                if rel.has_year:
                    lo, hi = year_range(rel.year_min, rel.year_max, me, t.attributes)
                    if link.get("year") is None or not lo <= link["year"] <= hi:
                        out.append(f"{_label(e)}: rule 'dates in order': {rel.name} -> {_label(t)} in {link.get('year')} is outside [{lo}, {hi}]")
                if rel.symmetric:
                    back = [link["target"] for link in t.links.get(rel.name, [])]
                    if back != [e.entity_id]:
                        out.append(
                            f"{_label(e)}: rule 'symmetric {rel.name}': {rel.name} is {_label(t)} but that entity's {rel.name} is {back or 'nobody'}"
                        )
                    for f in rel.shared:
                        if me.get(f) != t.attributes.get(f):
                            out.append(f"{_label(e)}: rule 'shared {f}': {rel.name} {_label(t)} has {f}={t.attributes.get(f)!r}, not {me.get(f)!r}")
    for name, ids in owners.items():
        if len(ids) > 1:
            out.append(f"{', '.join(sorted(set(ids)))}: rule 'unique names': {name!r} is used {len(ids)} times, so answers naming it are ambiguous")
    return out


def check_world(entities: tuple[Entity, ...] | list[Entity], registry: TypeRegistry) -> None:
    violations = world_violations(entities, registry)
    if violations:
        raise WorldInvariantError(violations)
