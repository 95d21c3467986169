"""Plausible wrong answers that a model cannot tell from the true one by their look.

For a field of an entity, ``Perturber.wrong`` returns K distinct texts that are never a true value of that
entity (nor its own name):

- names and titles: true values of the same field for other entities whose titles follow the same style
  (the works of other novelists for a novelist), so each option is as familiar from training as the answer;
- choices: values other entities of the world hold (seen in training text), then the rest of the same
  vocabulary (the entity's own conditional vocabulary: other painting styles for a painter);
- links: other entities of the target type;
- dates, years, numbers: K nearby values placed so that the true value's rank among the K + 1 options is
  uniform (it is not the median more often than any other rank).

Where the world holds too few, new names of the same style are invented (never used in the world).
"""

from __future__ import annotations

import random
from collections import defaultdict

from entity_unlearn.errors import EntityUnlearnError

from ..schema import Entity
from .facts import display, value_text
from .kinds import KINDS, entity_props, round_sig
from .names import NameContext, NameMaker
from .registry import TypeRegistry
from .sampler import stream
from .templates import Templates
from .vocab import resolve


class PerturbError(EntityUnlearnError, ValueError):
    """Too few wrong answers can be found for a field; the message names it."""


class Perturber:
    def __init__(self, entities: tuple[Entity, ...], registry: TypeRegistry, templates: Templates, k: int, seed: int) -> None:
        self.registry, self.templates, self.k = registry, templates, k
        self.names_of_type: dict[str, list[str]] = defaultdict(list)
        values: dict[tuple[str, str, str], set[str]] = defaultdict(set)
        used: dict[tuple[str, str], set[str]] = defaultdict(set)
        for e in entities:
            self.names_of_type[e.entity_type].append(e.name)
            spec = registry.get(e.entity_type)
            for attr in spec.attributes:
                v = e.attributes.get(attr.name)
                if v is None or attr.hidden:
                    continue
                kind = KINDS[attr.kind]
                if kind.titled:
                    key = (e.entity_type, attr.name, self.style(e, attr.name))
                    values[key] |= {t for t, _ in kind.items(v)}
                elif attr.kind == "choice":
                    used[(e.entity_type, attr.name)].add(v)
        self.pool = {key: sorted(v) for key, v in values.items()}
        self.used = {key: v for key, v in used.items()}
        styles = {k: v for s in registry.specs() for k, v in s.styles.items()}
        self.inventor = NameMaker(stream(seed, "perturb-names"), extra_styles=styles)
        for e in entities:
            self.inventor.reserve(e.name)
        for v in self.pool.values():
            for x in v:
                self.inventor.reserve(x)
        self.invented: dict[tuple[str, tuple], list[str]] = defaultdict(list)

    def style(self, e: Entity, field: str) -> str:
        spec = self.registry.get(e.entity_type)
        attr = spec.attribute(field)
        return resolve(attr.style, entity_props(spec, e.attributes))  # type: ignore[union-attr, arg-type]

    def wrong(self, rng: random.Random, e: Entity, field: str, true: set[str], n: int | None = None) -> list[str]:
        """``n`` (default K) distinct wrong texts for ``field`` of entity ``e``."""
        n = self.k if n is None else n
        spec = self.registry.get(e.entity_type)
        where = f"{e.entity_type}.{field}"
        rel = spec.relation(field)
        if rel is not None:
            target = self.registry.get(rel.target)
            return self._sample(rng, self.names_of_type[rel.target], true | {e.name}, n, where, style=target.name_style)
        attr = spec.attribute(field)
        if attr is None:
            raise PerturbError(f"{e.entity_type} has no field {field!r}")
        kind = KINDS[attr.kind]
        if attr.kind == "choice":
            values = kind.values(spec, attr, entity_props(spec, e.attributes))  # type: ignore[attr-defined]
            texts = {v: value_text(self.templates, spec, attr, v, e.attributes) for v in values}
            seen = self.used.get((e.entity_type, field), set())
            familiar = [texts[v] for v in values if v in seen]
            rest = [texts[v] for v in values if v not in seen]
            bad = true | {e.name}
            first = self._sample(rng, familiar, bad, min(n, len([x for x in familiar if x not in bad])), where)
            return first + self._sample(rng, rest, bad | set(first), n - len(first), where)
        if kind.titled:
            style = self.style(e, field)
            pool = self.pool.get((e.entity_type, field, style), [])
            return self._sample(rng, pool, true | {e.name}, n, where, style=style, ctx=self._ctx(e))
        (value,) = true
        return self.numbers(rng, attr.kind, value, n)

    def _ctx(self, e: Entity) -> NameContext:
        spec = self.registry.get(e.entity_type)
        return NameContext(gender=e.attributes.get("gender"), props=entity_props(spec, e.attributes))

    def wrong_entities(self, rng: random.Random, etype: str, name: str) -> list[str]:
        """K names of other entities of ``etype`` (invented ones where the world has too few)."""
        style = self.registry.get(etype).name_style
        return self._sample(rng, self.names_of_type[etype], {name}, self.k, f"{etype} names", style=style)

    def numbers(self, rng: random.Random, kind: str, text: str, n: int | None = None) -> list[str]:
        """Wrong dates, years, ints, ages or counts near the true ``text``; its rank among the options is uniform."""
        n = self.k if n is None else n
        below = rng.randint(0, n)
        if kind == "count" or kind == "age":
            below = min(below, int(text))  # no negative counts or ages
        out: list[str] = []
        seen = {text}
        for side, want in ((-1, below), (1, n - below)):
            got, step = 0, 0
            while got < want:
                step += 1
                if step > 2000:
                    raise PerturbError(f"could not find {n} wrong values near {text!r} ({kind})")
                cand = self._near(rng, kind, text, side, step)
                if cand is not None and cand not in seen:
                    seen.add(cand)
                    out.append(cand)
                    got += 1
        rng.shuffle(out)
        return out

    def _near(self, rng: random.Random, kind: str, text: str, side: int, step: int) -> str | None:
        if kind == "date":
            y = int(text[-4:]) + side * rng.randint(1, 4 + step // 5)
            return display(self.templates, "date", f"{y:04d}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}")
        if kind == "int":
            base = int(text.replace(",", ""))
            factor = rng.uniform(1.15, 2.5 + step / 50)
            value = round_sig(base * factor if side > 0 else base / factor, 2)
            return display(self.templates, "int", value) if value > 0 else None
        value = int(text) + side * rng.randint(1, (3 if kind == "count" else 6) + step // 10)
        return str(value) if value >= 0 else None

    def _sample(
        self, rng: random.Random, pool: list[str], true: set[str], n: int, where: str, style: str | None = None, ctx: NameContext | None = None
    ) -> list[str]:
        if n <= 0:
            return []
        if len(pool) - len(true) >= 2 * n:  # plenty: draw and reject, without scanning the pool
            out: list[str] = []
            seen = set(true)
            while len(out) < n:
                x = pool[rng.randrange(len(pool))]
                if x not in seen:
                    seen.add(x)
                    out.append(x)
            return out
        cands = [x for x in pool if x not in true]
        if len(cands) >= n:
            return rng.sample(cands, n)
        if style is None:
            raise PerturbError(f"{where}: only {len(cands)} wrong values exist but {n} are needed; add vocabulary or lower K")
        return cands + rng.sample(self.invent(style, n - len(cands), ctx), n - len(cands))

    def invent(self, style: str, n: int, ctx: NameContext | None = None) -> list[str]:
        """At least ``n`` names of ``style`` that no entity of the world uses."""
        ctx = ctx or NameContext()
        key = (style, tuple(sorted((a, p, v) for a, ps in ctx.props.items() for p, v in ps.items() if isinstance(v, str))))
        invented = self.invented[key]
        while len(invented) < n:
            invented.append(self.inventor.make(style, ctx))
        return invented

    def wrong_lists(self, rng: random.Random, e: Entity, field: str, true: set[str], size: int) -> list[list[str]]:
        """K distinct sorted lists of ``size`` wrong values, for a question about a whole list."""
        style = self.style(e, field)
        pool = [x for x in self.pool.get((e.entity_type, field, style), []) if x not in true]
        if len(pool) < size + self.k:  # C(size + k, size) > k distinct lists exist
            pool += self.invent(style, size + self.k - len(pool), self._ctx(e))[: size + self.k - len(pool)]
        out: list[list[str]] = []
        while len(out) < self.k:
            pick = sorted(rng.sample(pool, size))
            if pick not in out:
                out.append(pick)
        return out
