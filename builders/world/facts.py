"""Facts of the graph: one per scalar attribute, list element and link.

``display`` writes a canonical value the way every text does (``prompts/values.j2``),
so answers, biographies and perturbed answers agree on "March 4, 1961".
"""

from __future__ import annotations

import re
from typing import Any

from ..schema import Entity, Fact
from .registry import TypeRegistry
from .templates import Templates

_SLUG = re.compile(r"[^a-z0-9]+")


def slug(text: str) -> str:
    return _SLUG.sub("-", str(text).lower()).strip("-")


def display(templates: Templates, kind: str, value: Any) -> str:
    """Text of a canonical value of an attribute ``kind``."""
    if kind in ("date", "int"):
        return templates.render("values.j2", kind, value=value)
    return str(value)


def fact_id(entity_id: str, relation: str, value: Any) -> str:
    return f"{entity_id}/{relation}/{slug(value)}"


def entity_facts(entity: Entity, registry: TypeRegistry, names: dict[str, str], templates: Templates) -> list[Fact]:
    """Every fact of ``entity`` in spec order; ``names`` maps entity ids to names."""
    spec = registry.get(entity.entity_type)
    out: list[Fact] = []
    eid = entity.entity_id
    for attr in spec.attributes:
        value = entity.attributes.get(attr.name)
        if value is None:
            continue
        if attr.is_list:
            for item in value:
                v = item["value"] if isinstance(item, dict) else item
                year = item.get("year") if isinstance(item, dict) else None
                out.append(Fact(fact_id(eid, attr.name, v), eid, attr.name, str(v), str(v), year))
        else:
            out.append(Fact(fact_id(eid, attr.name, value), eid, attr.name, str(value), display(templates, attr.kind, value)))
    for rel in spec.relations:
        for link in entity.links.get(rel.name, []):
            t = link["target"]
            out.append(Fact(fact_id(eid, rel.name, t), eid, rel.name, t, names[t], link.get("year"), t))
    return out


def entity_view(entity: Entity, registry: TypeRegistry, names: dict[str, str], templates: Templates) -> dict[str, Any]:
    """What templates see as ``e``: name, id, type, aliases, and each field's text."""
    spec = registry.get(entity.entity_type)
    view: dict[str, Any] = {"name": entity.name, "id": entity.entity_id, "type": entity.entity_type, "aliases": list(entity.aliases)}
    for attr in spec.attributes:
        v = entity.attributes.get(attr.name)
        if v is None:
            view[attr.name] = None
        elif attr.is_list:
            view[attr.name] = [i["value"] if isinstance(i, dict) else i for i in v]
        else:
            view[attr.name] = display(templates, attr.kind, v)
    for rel in spec.relations:
        links = entity.links.get(rel.name, [])
        view[rel.name] = names[links[0]["target"]] if links else None
    return view
