"""Plausible wrong answers of the same type, drawn from the world.

For a field of an entity type, ``Perturber.wrong`` returns K distinct texts that
are never a true value of that entity: other entities' values of the same
attribute, other entities of the linked type, other vocabulary words, nearby
dates, years and numbers. Where the world holds too few, it invents new names of
the same style (never used in the world).
"""

from __future__ import annotations

import random
from collections import defaultdict

from entity_unlearn.errors import EntityUnlearnError

from ..schema import Entity
from .facts import display
from .names import NameMaker, read_vocab
from .registry import TypeRegistry
from .sampler import _round_sig, stream
from .templates import Templates


class PerturbError(EntityUnlearnError, ValueError):
    """Too few wrong answers can be found for a field; the message names it."""


class Perturber:
    def __init__(self, entities: tuple[Entity, ...], registry: TypeRegistry, templates: Templates, k: int, seed: int) -> None:
        self.registry, self.templates, self.k = registry, templates, k
        self.names_of_type: dict[str, list[str]] = defaultdict(list)
        values: dict[tuple[str, str], set[str]] = defaultdict(set)
        for e in entities:
            self.names_of_type[e.entity_type].append(e.name)
            spec = registry.get(e.entity_type)
            for attr in spec.attributes:
                v = e.attributes.get(attr.name)
                if v is None or attr.kind not in ("name", "names", "titled_events"):
                    continue
                for item in v if attr.is_list else [v]:
                    values[(e.entity_type, attr.name)].add(item["value"] if isinstance(item, dict) else item)
        self.pool = {key: sorted(v) for key, v in values.items()}
        styles = {k: v for s in registry.specs() for k, v in s.styles.items()}
        self.inventor = NameMaker(stream(seed, "perturb-names"), extra_styles=styles)
        for e in entities:
            self.inventor.reserve(e.name)
        for v in self.pool.values():
            for x in v:
                self.inventor.reserve(x)
        self.invented: dict[str, list[str]] = defaultdict(list)

    def wrong(self, rng: random.Random, etype: str, field: str, true: set[str], n: int | None = None) -> list[str]:
        """``n`` (default K) distinct wrong texts for ``field`` of an ``etype`` entity."""
        n = self.k if n is None else n
        spec = self.registry.get(etype)
        rel = spec.relation(field)
        if rel is not None:
            return self._sample(rng, self.names_of_type[rel.target], true, n, f"{etype}.{field}", style=self.registry.get(rel.target).name_style)
        attr = spec.attribute(field)
        if attr is None:
            raise PerturbError(f"{etype} has no field {field!r}")
        where = f"{etype}.{field}"
        if attr.kind == "choice":
            return self._sample(rng, list(attr.values or read_vocab(attr.vocab, spec.search_dir)), true, n, where)  # type: ignore[arg-type]
        if attr.kind in ("name", "names", "titled_events"):
            return self._sample(rng, self.pool.get((etype, field), []), true, n, where, style=attr.style)
        (value,) = true
        return self.numbers(rng, attr.kind, value, n)

    def wrong_entities(self, rng: random.Random, etype: str, name: str) -> list[str]:
        """K names of other entities of ``etype`` (invented ones where the world has too few)."""
        style = self.registry.get(etype).name_style
        return self._sample(rng, self.names_of_type[etype], {name}, self.k, f"{etype} names", style=style)

    def numbers(self, rng: random.Random, kind: str, text: str, n: int | None = None) -> list[str]:
        """Wrong dates, years, ints or small counts near the true ``text``."""
        n = self.k if n is None else n
        out: list[str] = []
        seen = {text}
        for _ in range(1000):
            if len(out) == n:
                return out
            if kind == "date":
                y = int(text[-4:]) + rng.choice([-1, 1]) * rng.randint(1, 8)
                cand = display(self.templates, "date", f"{y:04d}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}")
            elif kind == "int":
                base = int(text.replace(",", ""))
                cand = display(self.templates, "int", _round_sig(base * rng.uniform(0.3, 3.0), 2))
            elif kind == "count":
                cand = str(rng.randint(0, int(text) + n + 2))
            else:  # a year or an age: a nearby integer
                cand = str(max(0, int(text) + rng.choice([-1, 1]) * rng.randint(1, 12)))
            if cand not in seen:
                seen.add(cand)
                out.append(cand)
        raise PerturbError(f"could not find {n} wrong values near {text!r} ({kind})")

    def _sample(self, rng: random.Random, pool: list[str], true: set[str], n: int, where: str, style: str | None = None) -> list[str]:
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
        return cands + rng.sample(self._invent(style, n - len(cands)), n - len(cands))

    def _invent(self, style: str, n: int) -> list[str]:
        """At least ``n`` names of ``style`` that no entity of the world uses."""
        invented = self.invented[style]
        while len(invented) < n:
            invented.append(self.inventor.make(style))
        return invented

    def wrong_lists(self, rng: random.Random, etype: str, field: str, true: set[str], size: int) -> list[list[str]]:
        """K distinct sorted lists of ``size`` wrong values, for a question about a whole list."""
        attr = self.registry.get(etype).attribute(field)
        pool = [x for x in self.pool.get((etype, field), []) if x not in true]
        if len(pool) < size + self.k:  # C(size + k, size) > k distinct lists exist
            pool += self._invent(attr.style, size + self.k - len(pool))[: size + self.k - len(pool)]  # type: ignore[union-attr, arg-type]
        out: list[list[str]] = []
        while len(out) < self.k:
            pick = sorted(rng.sample(pool, size))
            if pick not in out:
                out.append(pick)
        return out
