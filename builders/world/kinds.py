"""Attribute kinds, one object each: what a spec must give, how a value is sampled, written, checked and faked.

``KINDS`` is the one table of kinds; the spec parser, the sampler, facts, wrong answers, invariants and the
LLM verification all ask the kind instead of testing its name. A new kind is one class here.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .bounds import year_of, year_range
from .vocab import read_vocab, refs, resolve, vocab_props

if TYPE_CHECKING:
    from .spec import AttributeSpec, TypeSpec


def round_sig(value: float, digits: int) -> int:
    if digits <= 0 or value <= 0:
        return int(round(value))
    scale = 10 ** (int(math.floor(math.log10(value))) - digits + 1)
    return int(round(value / scale) * scale)


def entity_props(spec: TypeSpec, attributes: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Choice attribute -> the properties of the entity's value in its (resolved) vocabulary (cached on the spec)."""
    cache = spec.__dict__.get("_props_cache")
    if cache is None:
        cache = {}
        object.__setattr__(spec, "_props_cache", cache)
    key = tuple(attributes.get(a.name) for a in spec.attributes if a.kind == "choice")
    if key not in cache:
        cache[key] = _entity_props(spec, attributes)
    return cache[key]


def _entity_props(spec: TypeSpec, attributes: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    props: dict[str, dict[str, Any]] = {}
    for a in spec.attributes:
        if a.kind == "choice" and a.vocab and attributes.get(a.name) is not None:
            vocab = resolve(a.vocab, props, f"{spec.source}: attributes.{a.name}.vocab")
            props[a.name] = vocab_props(vocab, spec.search_dir).get(attributes[a.name], {})
    return props


class Kind:
    """The behaviour shared by every kind; subclasses override what differs."""

    name = ""
    is_list = False  # the value is a list of items, one fact each
    whole_list = False  # one d1 question asks for the whole list
    numeric = False  # bounded by min/max; wrong answers are nearby numbers
    titled = False  # values are generated names of a style
    answer_kind = "name"  # what LLM-written wrong answers must look like (builders/llm/verify.py)

    def validate(self, raw: Mapping[str, Any], where: str) -> str | None:
        """A problem with the spec's table for this kind, or None."""
        return None

    def sample(self, ctx: Any, rng: random.Random, spec: TypeSpec, attr: AttributeSpec, me: Mapping[str, Any]) -> Any:
        raise NotImplementedError

    def items(self, value: Any) -> list[tuple[str, int | None]]:
        """(canonical value, year) of each fact the value makes."""
        return [(str(value), None)]

    def text(self, templates: Any, attr: AttributeSpec, value: str, props: Mapping[str, Any]) -> str:
        """How a canonical item is written in every text."""
        return str(value)

    def check(self, attr: AttributeSpec, value: Any, me: Mapping[str, Any], spec: TypeSpec) -> list[str]:
        """Broken rules of one value, as phrases (the caller names the entity)."""
        return []


class _Numeric(Kind):
    numeric = True

    def validate(self, raw, where):
        if not (raw.get("min") and raw.get("max")):
            return f"{where}: a '{self.name}' attribute needs 'min' and 'max' bounds"
        return None

    def sample(self, ctx, rng, spec, attr, me):
        lo, hi = year_range(attr.min, attr.max, me)
        if lo > hi:
            return ctx.impossible(spec, attr, lo, hi)
        return self.draw(rng, attr, lo, hi)

    def check(self, attr, value, me, spec):
        lo, hi = year_range(attr.min, attr.max, me)
        y = value if self.name == "int" else year_of(value)
        if not lo <= y <= hi:  # type: ignore[operator]
            return [
                f"rule 'dates in order': {attr.name}={value} is outside [{lo}, {hi}] from {[str(x) for x in attr.min]} / {[str(x) for x in attr.max]}"
            ]
        return []


class DateKind(_Numeric):
    name, answer_kind = "date", "date"

    def draw(self, rng, attr, lo, hi):
        return f"{rng.randint(lo, hi):04d}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"

    def text(self, templates, attr, value, props):
        return templates.render("values.j2", "date", value=value)


class YearKind(_Numeric):
    name, answer_kind = "year", "year"

    def draw(self, rng, attr, lo, hi):
        return rng.randint(lo, hi)


class IntKind(_Numeric):
    name, answer_kind = "int", "int"

    def draw(self, rng, attr, lo, hi):
        value = math.exp(rng.uniform(math.log(lo), math.log(hi))) if attr.log else rng.uniform(lo, hi)
        return min(max(round_sig(value, attr.round), lo), hi)

    def text(self, templates, attr, value, props):
        return templates.render("values.j2", "int", value=value)


class ChoiceKind(Kind):
    """A value of a vocabulary (fixed ``values``, or ``vocab``, which may depend on an earlier choice)."""

    name, answer_kind = "choice", "choice"

    def validate(self, raw, where):
        if not (raw.get("values") or raw.get("vocab")):
            return f"{where}: a 'choice' attribute needs 'values' or 'vocab'"
        return None

    def values(self, spec: TypeSpec, attr: AttributeSpec, props: Mapping[str, Any]) -> tuple[str, ...]:
        if attr.values:
            return attr.values
        return read_vocab(resolve(attr.vocab, props, f"{spec.source}: attributes.{attr.name}.vocab"), spec.search_dir)  # type: ignore[arg-type]

    def sample(self, ctx, rng, spec, attr, me):
        values = self.values(spec, attr, entity_props(spec, me))
        weights = attr.weights or None
        if attr.pool and attr.pool < len(values):  # the world uses ``pool`` values of the vocabulary, drawn once
            used = ctx.choice_pool(spec, attr, values)
            weights = [w for v, w in zip(values, weights) if v in used] if weights else None
            values = tuple(v for v in values if v in used)
        if attr.spread:  # dealt in turn from a shuffled deck: the values are used evenly
            return ctx.deal(rng, spec, attr, values)
        return rng.choices(values, weights=weights)[0]

    def text(self, templates, attr, value, props):
        if attr.form:  # the vocabulary's form of the value, e.g. a mother's "fisherwoman"
            return str(props.get(attr.form, value))
        return str(value)

    def form_props(self, spec: TypeSpec, attr: AttributeSpec, props: Mapping[str, Any], value: str) -> dict[str, Any]:
        if not attr.vocab:
            return {}
        vocab = resolve(attr.vocab, props, f"{spec.source}: attributes.{attr.name}.vocab")
        return vocab_props(vocab, spec.search_dir).get(value, {})

    def check(self, attr, value, me, spec):
        props = entity_props(spec, me)
        allowed = self.values(spec, attr, props)
        if value not in allowed:
            source = attr.vocab if not attr.values else "values"
            return [f"rule 'conditional vocabulary': {attr.name}={value!r} is not in {resolve(source, props)!r} (from {source})"]
        return []


class _Named(Kind):
    titled = True

    def validate(self, raw, where):
        if not raw.get("style"):
            return f"{where}: a '{self.name}' attribute needs a name 'style'"
        return None

    def titles(self, ctx, rng, spec, attr, me, n: int) -> list[str]:
        return ctx.titles(rng, spec, attr, me, n)


class NameKind(_Named):
    name = "name"

    def sample(self, ctx, rng, spec, attr, me):
        return self.titles(ctx, rng, spec, attr, me, 1)[0]


class NamesKind(_Named):
    """A set of names without years (products, landmarks); one question asks for all of them."""

    name, is_list, whole_list, answer_kind = "names", True, True, "list"

    def sample(self, ctx, rng, spec, attr, me):
        return sorted(self.titles(ctx, rng, spec, attr, me, rng.randint(*attr.count)))

    def items(self, value):
        return [(str(v), None) for v in value]


class TitledEventsKind(_Named):
    """Named events with distinct years (works, awards, a degree): "the work of YEAR" names one."""

    name, is_list = "titled_events", True

    def sample(self, ctx, rng, spec, attr, me):
        n = rng.randint(*attr.count)
        lo, hi = year_range(attr.min, attr.max, me)
        if lo > hi:
            return ctx.impossible(spec, attr, lo, hi) if attr.count[0] > 0 else []
        years = sorted(rng.sample(range(lo, hi + 1), min(n, hi - lo + 1)))
        return [{"value": t, "year": y} for t, y in zip(self.titles(ctx, rng, spec, attr, me, len(years)), years)]

    def items(self, value):
        return [(str(i["value"]), i["year"]) for i in value]

    def check(self, attr, value, me, spec):
        lo, hi = year_range(attr.min, attr.max, me)
        years = [i["year"] for i in value]
        out = []
        if len(set(years)) != len(years):
            out.append(f"rule 'one {attr.name} per year': years {years} repeat, so 'the {attr.name} of YEAR' is ambiguous")
        for i in value:
            if not lo <= i["year"] <= hi:
                out.append(f"rule 'dates in order': {attr.name} {i['value']!r} in {i['year']} is outside [{lo}, {hi}]")
        return out


KINDS: dict[str, Kind] = {k.name: k for k in (DateKind(), YearKind(), IntKind(), ChoiceKind(), NameKind(), NamesKind(), TitledEventsKind())}


def style_refs(style: str | None) -> list[tuple[str, str]]:
    """The ``{attr.prop}`` references of a style (or vocab) string."""
    return refs(style)
