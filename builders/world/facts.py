"""Facts of the graph: one per scalar attribute, list element and link.

``display`` writes a canonical value the way every text does (``prompts/values.j2``),
so answers, biographies and perturbed answers agree on "March 4, 1961".
"""

from __future__ import annotations

import re
from typing import Any

from ..schema import Entity, Fact
from .blocklist import normalise
from .kinds import KINDS, entity_props
from .registry import TypeRegistry
from .spec import AttributeSpec, TypeSpec
from .templates import Templates

_SLUG = re.compile(r"[^a-z0-9]+")


def slug(text: str) -> str:
    """``"Brännholm Works"`` -> ``"brannholm-works"`` (accents stripped first, so distinct names stay distinct)."""
    return _SLUG.sub("-", normalise(str(text))).strip("-")


def display(templates: Templates, kind: str, value: Any) -> str:
    """Text of a canonical value of an attribute ``kind`` (dates and numbers are written by ``values.j2``)."""
    return KINDS[kind].text(templates, None, value, {})  # type: ignore[arg-type]


def fact_id(entity_id: str, relation: str, value: Any) -> str:
    return f"{entity_id}/{relation}/{slug(value)}"


def value_text(templates: Templates, spec: TypeSpec, attr: AttributeSpec, value: str, attributes: dict[str, Any]) -> str:
    """How one canonical item of ``attr`` is written, for an entity with ``attributes`` (its choices decide forms)."""
    kind = KINDS[attr.kind]
    props = kind.form_props(spec, attr, entity_props(spec, attributes), value) if attr.form else {}  # type: ignore[attr-defined]
    return kind.text(templates, attr, value, props)


def entity_facts(entity: Entity, registry: TypeRegistry, names: dict[str, str], templates: Templates) -> list[Fact]:
    """Every fact of ``entity`` in spec order (hidden attributes make none); ``names`` maps entity ids to names."""
    spec = registry.get(entity.entity_type)
    out: list[Fact] = []
    eid = entity.entity_id
    for attr in spec.attributes:
        value = entity.attributes.get(attr.name)
        if value is None or attr.hidden:
            continue
        for v, year in KINDS[attr.kind].items(value):
            out.append(Fact(fact_id(eid, attr.name, v), eid, attr.name, v, value_text(templates, spec, attr, v, entity.attributes), year))
    for rel in spec.relations:
        for link in entity.links.get(rel.name, []):
            t = link["target"]
            out.append(Fact(fact_id(eid, rel.name, t), eid, rel.name, t, names[t], link.get("year"), t))
    return out


def entity_view(entity: Entity, registry: TypeRegistry, names: dict[str, str], templates: Templates) -> dict[str, Any]:
    """What templates see as ``e``: name, id, type, aliases, each field's text, and ``props`` (the properties of
    its choices, e.g. ``e.props.occupation.work``)."""
    spec = registry.get(entity.entity_type)
    view: dict[str, Any] = {"name": entity.name, "id": entity.entity_id, "type": entity.entity_type, "aliases": list(entity.aliases)}
    view["props"] = entity_props(spec, entity.attributes)
    for attr in spec.attributes:
        v = entity.attributes.get(attr.name)
        if v is None:
            view[attr.name] = None
        elif attr.is_list:
            view[attr.name] = [t for t, _ in KINDS[attr.kind].items(v)]
        else:
            view[attr.name] = value_text(templates, spec, attr, str(v) if attr.kind != "int" else v, entity.attributes)
    for rel in spec.relations:
        links = entity.links.get(rel.name, [])
        view[rel.name] = names[links[0]["target"]] if links else None
    return view
