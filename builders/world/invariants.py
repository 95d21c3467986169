"""Invariants of a sampled world, checked independently of the sampler.

Each violation names the entity, the rule and what to do; ``check_world`` raises
one WorldInvariantError listing them all.
"""

from __future__ import annotations

from collections import defaultdict

from entity_unlearn.errors import EntityUnlearnError

from ..schema import Entity
from .blocklist import is_notable, is_real_word
from .bounds import holds, year_range
from .kinds import KINDS
from .names import cultures
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
    owners: dict[str, list[str]] = defaultdict(list)
    culture_lists = cultures()
    for e in entities:
        spec = registry.get(e.entity_type)
        me = e.attributes
        owners[e.name.lower()].append(e.entity_id)
        for alias in e.aliases:
            owners[alias.lower()].append(e.entity_id)
        for name in (e.name, *e.aliases):  # no famous full name, no real one-word name or alias (the audit's rule too)
            if is_notable(name) or (len(name.split()) == 1 and is_real_word(name)):
                out.append(f"{_label(e)}: rule 'novel names': {name!r} is a real or famous name")
        out += [f"{_label(e)}: {v}" for v in _culture_violations(e, spec, by_id, registry, culture_lists)]
        for attr in spec.attributes:
            v = me.get(attr.name)
            if v is None:
                if attr.probability >= 1.0:
                    out.append(f"{_label(e)}: rule 'required attribute': {attr.name} is missing")
                continue
            out += [f"{_label(e)}: {problem}" for problem in KINDS[attr.kind].check(attr, v, me, spec)]
            if attr.kind == "name" and len(str(v).split()) == 1 and is_real_word(str(v)):
                out.append(f"{_label(e)}: rule 'novel names': {attr.name} {v!r} is a real name")
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
                if rel.family and e.name.split()[-1] != t.name.split()[-1]:
                    out.append(f"{_label(e)}: rule 'family surname': {rel.name} {_label(t)} has another surname")
    for name, ids in owners.items():
        if len(ids) > 1:
            out.append(f"{', '.join(sorted(set(ids)))}: rule 'unique names': {name!r} is used {len(ids)} times, so answers naming it are ambiguous")
    return out


def _culture_of(e: Entity, registry: TypeRegistry, by_id: dict[str, Entity], depth: int = 0) -> str | None:
    spec = registry.get(e.entity_type)
    if spec.culture is None or depth > 3:
        return None
    if spec.attribute(spec.culture) is not None:
        return e.attributes.get(spec.culture)
    links = e.links.get(spec.culture) or []
    target = by_id.get(links[0]["target"]) if links else None
    return _culture_of(target, registry, by_id, depth + 1) if target else None


def _culture_violations(e: Entity, spec, by_id: dict[str, Entity], registry: TypeRegistry, culture_lists: dict) -> list[str]:
    """A person's given name is of its culture and gender; a surname of its culture unless a family member's."""
    culture = _culture_of(e, registry, by_id)
    if culture not in culture_lists or "{given}" not in " ".join(_patterns(spec)):
        return []
    c = culture_lists[culture]
    given, surname = e.name.split()[0], e.name.split()[-1]
    gender = e.attributes.get("gender")
    allowed = c.get(f"given_{gender}") if gender in ("female", "male") else c["given_female"] + c["given_male"]
    out = []
    if given not in allowed:
        out.append(f"rule 'names follow the culture': given name {given!r} is not a {gender} name of the {culture} culture")
    family = {
        by_id[link["target"]].name.split()[-1] for r in spec.relations if r.family for link in e.links.get(r.name, []) if link["target"] in by_id
    }
    if surname not in c["surnames"] and surname not in family:
        out.append(f"rule 'names follow the culture': surname {surname!r} is not of the {culture} culture nor a family member's")
    return out


def _patterns(spec) -> list[str]:
    from .names import _builtin_styles

    styles = {k: v["patterns"] for k, v in _builtin_styles()["styles"].items()} | {k: v["patterns"] for k, v in spec.styles.items()}
    return styles.get(spec.name_style, [])


def check_world(entities: tuple[Entity, ...] | list[Entity], registry: TypeRegistry) -> None:
    violations = world_violations(entities, registry)
    if violations:
        raise WorldInvariantError(violations)
