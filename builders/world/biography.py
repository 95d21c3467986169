"""Biographies: one sentence per fact, a seeded phrasing for each, grouped in paragraphs.

Phrasings are the numbered blocks ``<field>__<n>`` of ``prompts/<type>/bio.j2``. A block sees ``first``
(it opens a paragraph, so it names the entity; later sentences use pronouns) and ``i``/``n`` (the fact's
place among its field's facts, which are in time order: "her first novel", "it was followed in 1990 by").
"""

from __future__ import annotations

from ..schema import Biography, BioSentence, Entity, Fact
from .facts import entity_view
from .registry import TypeRegistry
from .sampler import stream
from .templates import TemplateProblem, Templates


def render_biography(entity: Entity, facts: list[Fact], registry: TypeRegistry, names: dict[str, str], templates: Templates, seed: int) -> Biography:
    spec = registry.get(entity.entity_type)
    path = f"{spec.template_dir}/bio.j2"
    view = entity_view(entity, registry, names, templates)
    rng = stream(seed, "bio", entity.entity_id)
    by_field: dict[str, list[Fact]] = {}
    for f in facts:
        by_field.setdefault(f.relation, []).append(f)
    sentences: list[BioSentence] = []
    for p, paragraph in enumerate(spec.paragraphs):
        first = True
        for field in paragraph:
            variants = templates.variants(path, field)
            if not variants and by_field.get(field):
                raise TemplateProblem(f"{path}: no phrasing for {field!r}; add a block {field}__1")
            items = by_field.get(field, [])
            last = None
            for i, fact in enumerate(items):
                block = rng.choice([v for v in variants if v != last] or variants)  # no phrasing twice in a row
                last = block
                text = templates.render(path, block, e=view, value=fact.text, year=fact.year, first=first, i=i, n=len(items))
                sentences.append(BioSentence(text, (fact.fact_id,), f"{path}#{block}", p))
                first = False
    paragraphs: dict[int, list[str]] = {}
    for s in sentences:
        paragraphs.setdefault(s.paragraph, []).append(s.text)
    text = "\n\n".join(" ".join(v) for _, v in sorted(paragraphs.items()))
    return Biography(entity.entity_id, text, tuple(sentences))
