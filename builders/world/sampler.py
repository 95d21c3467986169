"""The seeded world sampler: entities, their attributes, then the links between them.

Every random stream is ``random.Random("<seed>/<scope>")`` (string seeds hash with
SHA-512, so streams are the same on every machine and Python build). Types are
sampled in registry order; attributes in spec order, so a bound may name an
attribute above it; links after all attributes, so any type may link to any other.
"""

from __future__ import annotations

import math
import random
from typing import Any

from entity_unlearn.errors import EntityUnlearnError

from ..schema import Entity
from .bounds import holds, year_range
from .names import NameMaker, read_vocab
from .registry import TypeRegistry
from .spec import AttributeSpec, RelationSpec, TypeSpec

RANDOM_PICKS = 64  # random candidates tried before scanning every candidate


class SamplingError(EntityUnlearnError, ValueError):
    """The spec cannot be satisfied for some entity; the message names it and the rule."""


class _Draft:
    __slots__ = ("entity_id", "entity_type", "name", "attributes", "links")

    def __init__(self, entity_id: str, entity_type: str, name: str) -> None:
        self.entity_id, self.entity_type, self.name = entity_id, entity_type, name
        self.attributes: dict[str, Any] = {}
        self.links: dict[str, list[dict[str, Any]]] = {}


def stream(seed: int, *scope: str) -> random.Random:
    return random.Random("/".join([str(seed), *scope]))


def _round_sig(value: float, digits: int) -> int:
    if digits <= 0 or value <= 0:
        return int(round(value))
    scale = 10 ** (int(math.floor(math.log10(value))) - digits + 1)
    return int(round(value / scale) * scale)


class _AttributeSampler:
    def __init__(self, names: NameMaker, seed: int) -> None:
        self.names = names
        self.seed = seed
        self.pools: dict[tuple[str, str], list[str]] = {}

    def pool(self, spec: TypeSpec, attr: AttributeSpec) -> list[str]:
        key = (spec.name, attr.name)
        if key not in self.pools:
            self.pools[key] = [self.names.make(attr.style) for _ in range(attr.pool)]  # type: ignore[arg-type]
        return self.pools[key]

    def titles(self, rng: random.Random, spec: TypeSpec, attr: AttributeSpec, n: int) -> list[str]:
        if attr.pool:
            return rng.sample(self.pool(spec, attr), min(n, attr.pool))
        return [self.names.make(attr.style) for _ in range(n)]  # type: ignore[arg-type]

    def sample(self, rng: random.Random, spec: TypeSpec, attr: AttributeSpec, draft: _Draft) -> Any:
        me = draft.attributes
        kind = attr.kind
        if kind == "choice":
            values = attr.values or read_vocab(attr.vocab, spec.search_dir)  # type: ignore[arg-type]
            return rng.choices(values, weights=attr.weights or None)[0]
        if kind == "name":
            return rng.choice(self.pool(spec, attr)) if attr.pool else self.names.make(attr.style)  # type: ignore[arg-type]
        n = rng.randint(*attr.count)
        if kind == "names":
            return sorted(self.titles(rng, spec, attr, n))
        lo, hi = year_range(attr.min, attr.max, me)
        if kind in ("date", "year", "int"):
            if lo > hi:
                return self._impossible(spec, attr, draft, lo, hi)
            if kind == "int":
                value = math.exp(rng.uniform(math.log(lo), math.log(hi))) if attr.log else rng.uniform(lo, hi)
                return min(max(_round_sig(value, attr.round), lo), hi)
            year = rng.randint(lo, hi)
            if kind == "year":
                return year
            return f"{year:04d}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
        # titled_events: distinct years so "the work of YEAR" names one work
        if lo > hi:
            return self._impossible(spec, attr, draft, lo, hi) if attr.count[0] > 0 else []
        years = sorted(rng.sample(range(lo, hi + 1), min(n, hi - lo + 1)))
        titles = self.titles(rng, spec, attr, len(years))
        return [{"value": t, "year": y} for t, y in zip(titles, years)]

    @staticmethod
    def _impossible(spec: TypeSpec, attr: AttributeSpec, draft: _Draft, lo: int, hi: int) -> None:
        if attr.probability < 1.0:
            return None
        raise SamplingError(
            f"{spec.source}: attributes.{attr.name} of {draft.entity_id} ({draft.name}) has an empty range [{lo}, {hi}]; widen its min/max"
        )


def _sample_entities(registry: TypeRegistry, counts: dict[str, int], seed: int, names: NameMaker) -> dict[str, list[_Draft]]:
    attrs = _AttributeSampler(names, seed)
    drafts: dict[str, list[_Draft]] = {}
    for spec in registry.specs():
        rng = stream(seed, "attributes", spec.name)
        out = drafts[spec.name] = []
        for i in range(counts.get(spec.name, 0)):
            draft = _Draft(f"{spec.id_prefix}{i:05d}", spec.name, names.make(spec.name_style))
            for attr in spec.attributes:
                present = attr.probability >= 1.0 or rng.random() < attr.probability
                value = attrs.sample(rng, spec, attr, draft) if present else None
                draft.attributes[attr.name] = value
            out.append(draft)
    return drafts


def _linked(a: _Draft, b: _Draft) -> bool:
    return any(link["target"] == b.entity_id for ls in a.links.values() for link in ls) or any(
        link["target"] == a.entity_id for ls in b.links.values() for link in ls
    )


def _acceptable(rel: RelationSpec, me: _Draft, cand: _Draft, spec: TypeSpec) -> int | None | bool:
    """False if cand cannot be linked; else the link's year (None when the relation has none)."""
    if cand is me or (cand.entity_type == me.entity_type and _linked(me, cand)):
        return False  # a person's spouse is not also their sibling or mentor
    if not all(holds(c, me.attributes, cand.attributes) for c in rel.constraints):
        return False
    if rel.symmetric:
        if cand.links.get(rel.name) or not all(holds(c, cand.attributes, me.attributes) for c in rel.constraints):
            return False
    if rel.has_year:
        lo, hi = year_range(rel.year_min, rel.year_max, me.attributes, cand.attributes)
        return False if lo > hi else (lo, hi)  # type: ignore[return-value]
    return None


def _sample_links(registry: TypeRegistry, drafts: dict[str, list[_Draft]], seed: int) -> None:
    for spec in registry.specs():
        for rel in spec.relations:
            rng = stream(seed, "links", spec.name, rel.name)
            pool = drafts.get(rel.target, [])
            for me in drafts[spec.name]:
                if rel.symmetric and me.links.get(rel.name):
                    continue
                if rel.probability < 1.0 and rng.random() >= rel.probability:
                    continue
                picked = None
                for _ in range(RANDOM_PICKS if pool else 0):
                    cand = rng.choice(pool)
                    verdict = _acceptable(rel, me, cand, spec)
                    if verdict is not False:
                        picked = (cand, verdict)
                        break
                if picked is None and rel.probability < 1.0:
                    continue  # optional links are not worth a scan of every candidate
                if picked is None:
                    ok = [(c, v) for c in pool if (v := _acceptable(rel, me, c, spec)) is not False]
                    if not ok:
                        raise SamplingError(
                            f"{spec.source}: relations.{rel.name}: no {rel.target} can be linked to {me.entity_id} ({me.name}) "
                            f"under {[str(c) for c in rel.constraints]}; add {rel.target} entities or loosen the constraints"
                        )
                    picked = rng.choice(ok)
                cand, span = picked
                year = rng.randint(*span) if span else None
                me.links[rel.name] = [{"target": cand.entity_id, "year": year}]
                if rel.symmetric:
                    cand.links[rel.name] = [{"target": me.entity_id, "year": year}]
                    for f in rel.shared:
                        cand.attributes[f] = me.attributes[f]


def _alias(rule: str, name: str) -> str | None:
    words = name.split()
    if rule == "initial_surname" and len(words) >= 2:
        return f"{words[0][0]}. {' '.join(words[1:])}"
    if rule == "drop_last_word" and len(words) >= 2:
        return " ".join(words[:-1])
    return None


def sample_world(registry: TypeRegistry, counts: dict[str, int], seed: int) -> tuple[Entity, ...]:
    """Sample every entity and link; the result satisfies the specs' bounds and constraints."""
    styles = {k: v for s in registry.specs() for k, v in s.styles.items()}
    names = NameMaker(stream(seed, "names"), extra_styles=styles)
    drafts = _sample_entities(registry, counts, seed, names)
    _sample_links(registry, drafts, seed)
    entities = []
    for spec in registry.specs():
        for d in drafts[spec.name]:
            aliases = []
            for rule in spec.alias_rules:
                alias = _alias(rule, d.name)
                if alias and not names.is_taken(alias):
                    names.reserve(alias)
                    aliases.append(alias)
            links = {r.name: d.links.get(r.name, []) for r in spec.relations}
            entities.append(Entity(d.entity_id, d.entity_type, d.name, tuple(aliases), dict(d.attributes), links))
    return tuple(entities)
