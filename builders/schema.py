"""The records every stage exchanges: Entity, Fact, BioSentence, Biography, Probe, World.

Generators emit them, builders serialise them, evaluation reads them back. They
are frozen; their JSON form is ``to_dict()`` (keys sorted on write) and
``from_dict()`` reverses it exactly.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

DEPTHS = ("d0", "d1", "d2", "d3", "d4")
DEPTH_NAMES = {
    "d0": "verbatim",
    "d1": "direct",
    "d2": "paraphrase / reverse",
    "d3": "multi-hop",
    "d4": "inference",
}


def _tuples(value: Any) -> Any:
    """Lists from JSON become tuples, recursively, so records round-trip as equal."""
    if isinstance(value, list):
        return tuple(_tuples(v) for v in value)
    return value


class _Record:
    def to_dict(self) -> dict[str, Any]:
        return asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls, data: dict[str, Any]):
        names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
        unknown = set(data) - names
        if unknown:
            raise ValueError(f"{cls.__name__} record has unknown fields {sorted(unknown)}")
        return cls(**{k: _tuples(v) if k not in ("attributes", "links") else v for k, v in data.items()})


@dataclass(frozen=True)
class Entity(_Record):
    """A node of the fact graph.

    ``attributes`` maps an attribute name to its canonical value: an ISO date
    string, an int, a string, or a list of ``{"value": str, "year": int|None}``.
    ``links`` maps a relation name to a list of ``{"target": entity_id, "year": int|None}``.
    """

    entity_id: str
    entity_type: str
    name: str
    aliases: tuple[str, ...]
    attributes: dict[str, Any]
    links: dict[str, list[dict[str, Any]]]


@dataclass(frozen=True)
class Fact(_Record):
    """One edge or attribute value: (entity, relation, value), with display text.

    ``fact_id`` is ``"<entity_id>/<relation>/<value key>"``; it depends only on
    the entity id, the relation and the canonical value, so it is stable.
    """

    fact_id: str
    entity_id: str
    relation: str
    value: str
    text: str
    year: int | None = None
    target_id: str | None = None


@dataclass(frozen=True)
class BioSentence(_Record):
    text: str
    fact_ids: tuple[str, ...]
    template_id: str
    paragraph: int


@dataclass(frozen=True)
class Biography(_Record):
    entity_id: str
    text: str
    sentences: tuple[BioSentence, ...]
    source: str = "template"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Biography:
        sentences = tuple(BioSentence.from_dict(s) for s in data["sentences"])
        return cls(entity_id=data["entity_id"], text=data["text"], sentences=sentences, source=data.get("source", "template"))


@dataclass(frozen=True)
class Probe(_Record):
    """A graded question about one entity, TOFU-compatible field names.

    ``perturbed_answer`` holds K wrong answers rendered like ``paraphrased_answer``;
    ``options`` are the short answers (true + K wrong) in a seeded order, and
    ``options[answer_index] == short_answer``. ``source`` says what wrote the
    wording: ``template``, ``llm`` or ``template_fallback`` (an LLM output was
    rejected and the template's wording kept).

    ``relation`` is the field the probe asks about, as its template blocks name it:
    an attribute or relation of the entity's type (d0, d1, d2 paraphrase), the
    given fields joined by ``_and_`` (reverse), ``<via>__<field>`` (hop) or
    ``<rule>__<field>`` (inference). ``parent_id`` is the probe this one rewords:
    the d1 probe of a d2 paraphrase or of an attacked variant; None otherwise.
    """

    probe_id: str
    entity_id: str
    entity_type: str
    depth: str
    kind: str
    template_id: str
    question: str
    answer: str
    short_answer: str
    paraphrased_question: str
    paraphrased_answer: str
    perturbed_answer: tuple[str, ...]
    options: tuple[str, ...]
    answer_index: int
    fact_ids: tuple[str, ...]
    relation: str
    attack: str = "none"
    source: str = "template"
    parent_id: str | None = None


@dataclass(frozen=True)
class World:
    """A generated world: every record, plus what made it.

    ``generation`` is empty for a template-only world (its manifest then has no
    ``generation`` key, so existing worlds keep their bytes); an LLM-assisted
    world records backend, model, prompt hashes and acceptance rates there.
    """

    seed: int
    version: str
    k_perturbed: int
    counts: dict[str, int]
    entities: tuple[Entity, ...]
    facts: tuple[Fact, ...] = ()
    biographies: tuple[Biography, ...] = ()
    probes: tuple[Probe, ...] = ()
    type_hashes: dict[str, str] = field(default_factory=dict)
    # How the wording was made when an LLM took part (``llm_enrich.enrich_world``):
    # backend, model, prompt hashes, acceptance. Empty for template-only worlds.
    generation: dict[str, Any] = field(default_factory=dict)

    def entity(self, entity_id: str) -> Entity:
        return self._by_id()[entity_id]

    def _by_id(self) -> dict[str, Entity]:
        cache = self.__dict__.get("_by_id_cache")
        if cache is None:
            cache = {e.entity_id: e for e in self.entities}
            object.__setattr__(self, "_by_id_cache", cache)
        return cache
