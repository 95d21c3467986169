"""The seeded world sampler: attributes, then the links between entities, then names.

Every random stream is ``random.Random("<seed>/<scope>")`` (string seeds hash with SHA-512, so streams are
the same on every machine and Python build). Types are sampled in registry order; attributes in spec order,
so a bound or a conditional vocabulary may name an attribute above it; links after all attributes, so any
type may link to any other; names last, because a name follows the entity's culture (its own, or a linked
entity's, ``culture`` in the spec) and gender, and family members (a relation with ``family = true``) share
a surname. An entity whose required link finds no partner is redrawn (its attributes) while nothing links
to it yet.
"""

from __future__ import annotations

import random
from typing import Any

from entity_unlearn.errors import EntityUnlearnError

from ..schema import Entity
from .blocklist import is_notable, is_real_word
from .bounds import holds, year_range
from .families import surname_clusters
from .kinds import KINDS, entity_props
from .names import NameContext, NameMaker, culture_names, style_signature
from .registry import TypeRegistry
from .spec import AttributeSpec, RelationSpec, TypeSpec
from .vocab import resolve

RANDOM_PICKS = 64  # random candidates tried before scanning every candidate
REDRAWS = 50  # attribute redraws of an entity whose required link has no partner


class SamplingError(EntityUnlearnError, ValueError):
    """The spec cannot be satisfied for some entity; the message names it and the rule."""


class _Draft:
    __slots__ = ("entity_id", "entity_type", "name", "attributes", "links")

    def __init__(self, entity_id: str, entity_type: str) -> None:
        self.entity_id, self.entity_type, self.name = entity_id, entity_type, ""
        self.attributes: dict[str, Any] = {}
        self.links: dict[str, list[dict[str, Any]]] = {}


def stream(seed: int, *scope: str) -> random.Random:
    return random.Random("/".join([str(seed), *scope]))


def culture_of(spec: TypeSpec, attributes: dict[str, Any], linked: Any = None) -> str | None:
    """The culture an entity's names follow: its own culture attribute, or (through ``linked(relation)``) a linked entity's."""
    if spec.culture is None:
        return None
    if spec.attribute(spec.culture) is not None:
        value = attributes.get(spec.culture)
        return value if value in culture_names() else None
    return linked(spec.culture) if linked else None


class _AttributeSampler:
    """Draws attribute values; titles come from ``names``, pooled per style, culture and properties."""

    def __init__(self, names: NameMaker, seed: int) -> None:
        self.names = names
        self.seed = seed
        self.pools: dict[tuple, list[str]] = {}
        self.current: _Draft | None = None

    def context(self, spec: TypeSpec, me: dict[str, Any]) -> NameContext:
        return NameContext(culture=culture_of(spec, me), gender=me.get("gender"), props=entity_props(spec, me))

    def titles(self, rng: random.Random, spec: TypeSpec, attr: AttributeSpec, me: dict[str, Any], n: int) -> list[str]:
        ctx = self.context(spec, me)
        style = resolve(attr.style, ctx.props, f"{spec.source}: attributes.{attr.name}.style")  # type: ignore[arg-type]
        if not attr.pool:
            return [self.names.make(style, ctx) for _ in range(n)]
        signature = style_signature(self.names, style, ctx.props)  # the properties the titles show ("for Literature")
        key = (spec.name, attr.name, style, ctx.culture, signature)
        if key not in self.pools:
            self.pools[key] = [self.names.make(style, ctx) for _ in range(attr.pool)]
        pool = self.pools[key]
        return rng.sample(pool, min(n, len(pool)))

    def choice_pool(self, spec: TypeSpec, attr: AttributeSpec, values: tuple[str, ...]) -> frozenset[str]:
        """The ``attr.pool`` values of ``values`` this world uses (a seeded draw, once per vocabulary): a few
        industries shared by many companies, so each one's products have others of their kind."""
        key = (spec.name, attr.name, values)
        if key not in self.pools:
            rng = stream(self.seed, "choice-pool", spec.name, attr.name, *values)
            self.pools[key] = rng.sample(list(values), attr.pool)
        return frozenset(self.pools[key])

    def deal(self, rng: random.Random, spec: TypeSpec, attr: AttributeSpec, values: tuple[str, ...]) -> str:
        """The next value of a shuffled deck of ``values`` (one deck per vocabulary, reshuffled when used up), so
        that each value is held by as many entities as any other, give or take one: the answer a question
        expects is then no likelier one value than another."""
        key = ("deck", spec.name, attr.name, values)
        deck = self.pools.setdefault(key, [])
        if not deck:
            deck.extend(values)
            rng.shuffle(deck)
        return deck.pop()

    def impossible(self, spec: TypeSpec, attr: AttributeSpec, lo: int, hi: int) -> None:
        if attr.probability < 1.0:
            return None
        d = self.current
        raise SamplingError(
            f"{spec.source}: attributes.{attr.name} of {d.entity_id if d else '?'} has an empty range [{lo}, {hi}]; widen its min/max"
        )

    def fill(self, rng: random.Random, spec: TypeSpec, draft: _Draft) -> None:
        self.current = draft
        draft.attributes = {}
        for attr in spec.attributes:
            present = attr.probability >= 1.0 or rng.random() < attr.probability
            draft.attributes[attr.name] = KINDS[attr.kind].sample(self, rng, spec, attr, draft.attributes) if present else None


def _sample_entities(registry: TypeRegistry, counts: dict[str, int], sampler: _AttributeSampler) -> dict[str, list[_Draft]]:
    drafts: dict[str, list[_Draft]] = {}
    for spec in registry.specs():
        rng = stream(sampler.seed, "attributes", spec.name)
        out = drafts[spec.name] = []
        for i in range(counts.get(spec.name, 0)):
            draft = _Draft(f"{spec.id_prefix}{i:05d}", spec.name)
            sampler.fill(rng, spec, draft)
            out.append(draft)
    return drafts


def _linked(a: _Draft, b: _Draft) -> bool:
    return any(link["target"] == b.entity_id for ls in a.links.values() for link in ls) or any(
        link["target"] == a.entity_id for ls in b.links.values() for link in ls
    )


def _acceptable(rel: RelationSpec, me: _Draft, cand: _Draft) -> Any:
    """False if cand cannot be linked; else the link's year span (None when the relation has none)."""
    if cand is me or (cand.entity_type == me.entity_type and _linked(me, cand)):
        return False  # a person's spouse is not also their sibling or mentor
    if not all(holds(c, me.attributes, cand.attributes) for c in rel.constraints):
        return False
    if rel.symmetric:
        if cand.links.get(rel.name) or not all(holds(c, cand.attributes, me.attributes) for c in rel.constraints):
            return False
    if rel.has_year:
        lo, hi = year_range(rel.year_min, rel.year_max, me.attributes, cand.attributes)
        return False if lo > hi else (lo, hi)
    return None


def _links_hold(spec: TypeSpec, me: _Draft, by_id: dict[str, _Draft]) -> bool:
    for rel in spec.relations:
        for link in me.links.get(rel.name, []):
            t = by_id[link["target"]]
            if not all(holds(c, me.attributes, t.attributes, link.get("year")) for c in rel.constraints):
                return False
    return True


class _Linker:
    def __init__(
        self, registry: TypeRegistry, drafts: dict[str, list[_Draft]], sampler: _AttributeSampler, unlinked: frozenset[str] = frozenset()
    ) -> None:
        self.registry, self.drafts, self.sampler = registry, drafts, sampler
        self.unlinked = unlinked
        self.by_id = {d.entity_id: d for ds in drafts.values() for d in ds}
        self.incoming: set[str] = set()

    def partner(self, rng: random.Random, rel: RelationSpec, me: _Draft, pool: list[_Draft]) -> tuple[_Draft, Any] | None:
        for _ in range(RANDOM_PICKS if pool else 0):
            cand = rng.choice(pool)
            verdict = _acceptable(rel, me, cand)
            if verdict is not False:
                return cand, verdict
        if rel.probability < 1.0:
            return None  # optional links are not worth a scan of every candidate
        ok = [(c, v) for c in pool if (v := _acceptable(rel, me, c)) is not False]
        return rng.choice(ok) if ok else None

    def redraw(self, spec: TypeSpec, rel: RelationSpec, me: _Draft, pool: list[_Draft]) -> tuple[_Draft, Any] | None:
        """Redraw ``me``'s attributes until a partner fits, while nothing links to ``me`` yet."""
        if me.entity_id in self.incoming:
            return None
        saved = me.attributes
        for attempt in range(REDRAWS):
            rng = stream(self.sampler.seed, "redraw", me.entity_id, rel.name, str(attempt))
            self.sampler.fill(rng, spec, me)
            if not _links_hold(spec, me, self.by_id):
                continue
            ok = [(c, v) for c in pool if (v := _acceptable(rel, me, c)) is not False]
            if ok:
                return rng.choice(ok)
        me.attributes = saved
        return None

    def run(self, seed: int) -> None:
        """Required relations of every type first (an entity nothing links to yet can still be redrawn), then optional ones."""
        order = [
            (spec, rel)
            for required in (True, False)
            for spec in self.registry.specs()
            for rel in spec.relations
            if (rel.probability >= 1.0) == required
        ]
        inverse = {pair for s in self.registry.specs() for pair in s.inverse}
        for spec, rel in order:
            rng = stream(seed, "links", spec.name, rel.name)
            pool = [d for d in self.drafts.get(rel.target, []) if d.entity_id not in self.unlinked]
            asked_back = (spec.name, rel.name) in inverse  # the target is asked about this link: it would name ``me``
            for me in self.drafts[spec.name]:
                if rel.symmetric and (me.links.get(rel.name) or me.entity_id in self.unlinked):
                    continue
                if asked_back and me.entity_id in self.unlinked and rel.probability < 1.0:
                    continue
                if rel.probability < 1.0 and rng.random() >= rel.probability:
                    continue
                picked = self.partner(rng, rel, me, pool)
                if picked is None and rel.probability >= 1.0:
                    picked = self.redraw(spec, rel, me, pool)
                    if picked is None:
                        raise SamplingError(
                            f"{spec.source}: relations.{rel.name}: no {rel.target} can be linked to {me.entity_id} "
                            f"under {[str(c) for c in rel.constraints]}; add {rel.target} entities or loosen the constraints"
                        )
                if picked is None:
                    continue
                cand, span = picked
                year = rng.randint(*span) if span else None
                me.links[rel.name] = [{"target": cand.entity_id, "year": year}]
                self.incoming.add(cand.entity_id)
                if rel.symmetric:
                    cand.links[rel.name] = [{"target": me.entity_id, "year": year}]
                    self.incoming.add(me.entity_id)
                    for f in rel.shared:
                        cand.attributes[f] = me.attributes[f]


def _alias(rule: str, name: str) -> str | None:
    """The alias ``rule`` makes of ``name``, or None. A one-word alias that is a real name or word ("Miranda" of
    "Miranda Foundry") is none: alone it would name something real; so is a famous person's ("E. Thomas" of
    "Eleanor Thomas"), and a cut that ends on "&"."""
    words = name.split()
    alias = None
    if rule == "initial_surname" and len(words) >= 2:
        alias = f"{words[0][0]}. {' '.join(words[1:])}"
    elif rule == "drop_last_word" and len(words) >= 2:
        alias = " ".join(words[:-1])
    if alias is None or not alias.split()[-1][-1:].isalpha() or (" " not in alias and is_real_word(alias)) or is_notable(alias):
        return None
    return alias


def _name_entities(registry: TypeRegistry, drafts: dict[str, list[_Draft]], names: NameMaker) -> None:
    by_id = {d.entity_id: d for ds in drafts.values() for d in ds}
    specs = {s.name: s for s in registry.specs()}

    def culture(d: _Draft, depth: int = 0) -> str | None:
        spec = specs[d.entity_type]
        if depth > 3:
            return None
        links = d.links

        def linked(rel: str) -> str | None:
            targets = links.get(rel) or []
            return culture(by_id[targets[0]["target"]], depth + 1) if targets else None

        return culture_of(spec, d.attributes, linked)

    for spec in registry.specs():
        family = [r.name for r in spec.relations if r.family]
        clustered = surname_clusters(spec, drafts[spec.name], family, culture, names) if spec.surname_share > 1 and family else {}
        for d in drafts[spec.name]:
            surname = clustered.get(d.entity_id)
            for rel in family:
                for link in d.links.get(rel, []):
                    other = by_id[link["target"]]
                    if other.name:
                        surname = other.name.split()[-1]
            ctx = NameContext(culture(d), d.attributes.get("gender"), entity_props(spec, d.attributes), surname)
            d.name = names.make(spec.name_style, ctx)


def sample_world(registry: TypeRegistry, counts: dict[str, int], seed: int, unlinked: dict[str, int] | None = None) -> tuple[Entity, ...]:
    """Sample every entity and link, then name them; the result satisfies the specs' bounds and constraints.

    ``unlinked`` reserves the last N entities of a type: no link points at them (a release's holdout persons,
    whom no training text may name); their own links are drawn as usual.
    """
    styles = {k: v for s in registry.specs() for k, v in s.styles.items()}
    names = NameMaker(stream(seed, "names"), extra_styles=styles)
    sampler = _AttributeSampler(names, seed)
    drafts = _sample_entities(registry, counts, sampler)
    reserved = reserved_ids([d for ds in drafts.values() for d in ds], unlinked)
    _Linker(registry, drafts, sampler, reserved).run(seed)
    _name_entities(registry, drafts, names)
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


def reserved_ids(entities, unlinked: dict[str, int] | None) -> frozenset[str]:
    """Ids of the last N entities (in order) of each type ``unlinked`` names: kept unlinked (a release's holdout)."""
    out: set[str] = set()
    for etype, n in (unlinked or {}).items():
        ids = [e.entity_id for e in entities if e.entity_type == etype]
        out |= set(ids[len(ids) - n :]) if n > 0 else set()
    return frozenset(out)


def complete_counts(registry: TypeRegistry, counts: dict[str, int]) -> tuple[dict[str, int], dict[str, int]]:
    """``counts`` with one entity added for each type a required relation needs and the world lacks.

    Returns (counts, added): ``--entities 1`` gets the place a person's birthplace needs.
    """
    out = dict(counts)
    added: dict[str, int] = {}
    changed = True
    while changed:
        changed = False
        for spec in registry.specs():
            if not out.get(spec.name):
                continue
            for rel in spec.relations:
                if rel.probability >= 1.0 and not out.get(rel.target):
                    out[rel.target] = 1
                    added[rel.target] = added.get(rel.target, 0) + 1
                    changed = True
    return out, added
