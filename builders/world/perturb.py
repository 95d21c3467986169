"""Wrong answers that a model which never learned the entity cannot tell from the true one.

A probe's K wrong options are drawn from the answers the same question has for the *other* entities a model is
trained on (``answers``: the true values of the relation, each counted once per entity holding it), so that a
wrong option is, on average, as familiar from the training text, as often a true answer, as long and as
"typical" a string as the truth (issue 12's shortcut heuristics find nothing to pick):

- names, titles, choices: drawn as often as other entities hold them (a popular mentor is a wrong option as often
  as a right one; a small vocabulary by ``draws.balanced``, so that no option is likelier the truth), all from the
  answer's class: its vocabulary (other painting styles for a painter), titles of its style and visible
  properties (awards "for Literature"), the family's surname for a family relation ("Who is Ada Berg's
  sibling?"). Where the world holds too few of the class, all options come from the next wider class (titles of
  the style, then any answer of the question), never mixed, so the truth's class is never the most common among
  them; a world too small for any falls back to the class's unheld values and invented names;
- lists (products, landmarks, "whom did X mentor?"): other entities' whole lists of the same length first,
  as they occur verbatim in training text;
- dates, years, numbers: the other entities' values near the truth (``draws.nearest``), with the number below it
  drawn uniformly from 0..K, so the truth's rank among the options is uniform (it is not the median more often
  than any rank); generated nearby values fill in where the world has too few;
- counts ("how many novels before 1990?"): every value 0..K; the question asks each count equally often.

Entities listed as ``unlinked`` (a release's holdout persons, never trained on) give no wrong answers: their
values occur in no training text. Every draw is reproducible from the probe's random stream.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from collections.abc import Iterable
from datetime import date

from entity_unlearn.errors import EntityUnlearnError

from ..schema import Entity, Fact
from .draws import Bag, balanced, nearest, pick
from .facts import display, value_text
from .kinds import KINDS, entity_props, round_sig
from .names import NameContext, NameMaker, style_signature
from .registry import TypeRegistry
from .sampler import stream
from .templates import Templates
from .vocab import resolve

BALANCED_UP_TO = 64  # vocabularies of up to this many held values are drawn from by ``balanced``


class PerturbError(EntityUnlearnError, ValueError):
    """Too few wrong answers can be found for a field; the message names it."""


class Perturber:
    """Wrong answers for every probe of one world (see the module docstring)."""

    def __init__(
        self,
        entities: tuple[Entity, ...],
        facts: dict[str, list[Fact]],
        registry: TypeRegistry,
        templates: Templates,
        k: int,
        seed: int,
        unlinked: frozenset[str] = frozenset(),
    ) -> None:
        self.registry, self.templates, self.k = registry, templates, k
        self.entities = {e.entity_id: e for e in entities}
        known = [e for e in entities if e.entity_id not in unlinked]
        self.names_of_type: dict[str, list[str]] = defaultdict(list)
        for e in known:
            self.names_of_type[e.entity_type].append(e.name)
        styles = {k: v for s in registry.specs() for k, v in s.styles.items()}
        self.inventor = NameMaker(stream(seed, "perturb-names"), extra_styles=styles)
        answers: dict[tuple[str, str], list[str]] = defaultdict(list)
        numeric: dict[tuple[str, str], list[tuple[float, str]]] = defaultdict(list)
        lists: dict[tuple[str, str], list[tuple[str, ...]]] = defaultdict(list)
        titles: dict[tuple, set[str]] = defaultdict(set)
        self.value_of: dict[str, float] = {}  # text of a numeric fact -> its value, for the nearest wrong values
        for e in entities:
            self.inventor.reserve(e.name)
            for f in facts[e.entity_id]:
                if self.is_numeric(e.entity_type, f.relation):
                    self.value_of[f.text] = _number(f.value)
        for e in known:
            spec = registry.get(e.entity_type)
            mine = _by_field(facts[e.entity_id])
            for field, fs in mine.items():
                self._collect(answers, numeric, (e.entity_type, field), e.entity_type, field, fs)
                attr = spec.attribute(field)
                if attr is not None and KINDS[attr.kind].titled:
                    cls = self.title_class(e, field)
                    titles[(e.entity_type, field) + cls] |= {f.text for f in fs}
                    titles[(e.entity_type, field, cls[0])] |= {f.text for f in fs}
                if attr is not None and KINDS[attr.kind].whole_list:
                    lists[(e.entity_type, field)].append(tuple(f.text for f in fs))
            for via, then in spec.hops:
                reached = [f for link in mine.get(via, []) for f in facts[link.target_id] if f.relation == then]  # type: ignore[index]
                target_type = spec.relation(via).target  # type: ignore[union-attr]
                self._collect(answers, numeric, (e.entity_type, f"{via}__{then}"), target_type, then, reached)
        incoming: dict[tuple[str, str, str], list[Fact]] = defaultdict(list)
        self.linked: Counter = Counter()  # name -> links of trained entities that point at it (how often others name it)
        for e in known:
            for f in facts[e.entity_id]:
                if f.target_id is not None:
                    incoming[(f.target_id, e.entity_type, f.relation)].append(f)
                    self.linked[self.entities[f.target_id].name] += 1
        for e in known:
            for other, rel in registry.get(e.entity_type).inverse:
                links = sorted(incoming.get((e.entity_id, other, rel), []), key=lambda f: (f.year or 0, f.entity_id))
                if links:
                    names = tuple(self.entities[f.entity_id].name for f in links)
                    lists[(e.entity_type, f"{rel}_of")].append(names)
                    if len(names) == 1:
                        answers[(e.entity_type, f"{rel}_of")].append(names[0])
        for v in titles.values():
            for x in v:
                self.inventor.reserve(x)
        self.answers = {key: Bag(v) for key, v in answers.items()}
        self.numeric = {key: _sorted_counted(v) for key, v in numeric.items()}
        self.lists = {key: Bag(_list_key(x) for x in v) for key, v in lists.items()}
        self.titles = {key: sorted(v) for key, v in titles.items()}
        self.invented: dict[tuple[str, tuple], list[str]] = defaultdict(list)
        self._bags: dict[tuple, Bag] = {}

    def _collect(self, answers, numeric, key: tuple[str, str], owner_type: str, field: str, fs: list[Fact]) -> None:
        texts = list(dict.fromkeys(f.text for f in fs))
        answers[key] += texts
        if fs and self.is_numeric(owner_type, field):
            numeric[key] += [(self.value_of[t], t) for t in texts]

    def is_numeric(self, etype: str, field: str) -> bool:
        attr = self.registry.get(etype).attribute(field)
        return attr is not None and KINDS[attr.kind].numeric

    # -- classes ------------------------------------------------------------------------------
    def style(self, e: Entity, field: str) -> str:
        spec = self.registry.get(e.entity_type)
        attr = spec.attribute(field)
        return resolve(attr.style, entity_props(spec, e.attributes))  # type: ignore[union-attr, arg-type]

    def title_class(self, e: Entity, field: str) -> tuple[str, tuple[str, ...]]:
        """(style, the values of the properties its patterns name): titles of one class look alike ("for Drama")."""
        style = self.style(e, field)
        return style, style_signature(self.inventor, style, entity_props(self.registry.get(e.entity_type), e.attributes))

    def _bag(self, key: tuple, build) -> Bag:
        bag = self._bags.get(key)
        if bag is None:
            bag = self._bags[key] = Bag(build())
        return bag

    def _ctx(self, e: Entity) -> NameContext:
        spec = self.registry.get(e.entity_type)
        return NameContext(gender=e.attributes.get("gender"), props=entity_props(spec, e.attributes))

    # -- wrong answers ------------------------------------------------------------------------
    def wrong(
        self,
        rng: random.Random,
        e: Entity,
        field: str,
        true: set[str],
        n: int | None = None,
        asked: tuple[str, str] | None = None,
        truth: str | None = None,
    ) -> list[str]:
        """``n`` (default K) distinct wrong texts for ``field`` of entity ``e``, drawn by the answers to ``asked``
        ((entity type, relation) of the probe; default ``e``'s own field); ``truth`` is the probe's answer (among
        ``true``, every true value)."""
        n = self.k if n is None else n
        asked = asked or (e.entity_type, field)
        answers = self.answers.get(asked, Bag())
        spec = self.registry.get(e.entity_type)
        where = f"{e.entity_type}.{field}"
        bad = set(true) | {e.name}
        rel = spec.relation(field)
        if rel is not None:
            names = self.names_of_type[rel.target]
            style = self.registry.get(rel.target).name_style
            if rel.family:  # the family's surname is in the question: every option shares it
                surname = e.name.split()[-1]
                same = lambda x: x.split()[-1] == surname  # noqa: E731
                tiers = [  # weighted by how often other entities name them, as the truth is named by its family
                    self._bag(("family-linked", rel.target, surname), lambda: [x for x in names if same(x) for _ in range(self.linked[x])]),
                    self._bag(("family-all", rel.target, surname), lambda: [x for x in names if same(x)]),
                ]
                out = pick(rng, n, tiers, bad)
                ctx = NameContext(gender=None, surname=surname)
                if len(out) < n:
                    out += self._invented(rng, style, n - len(out), bad, ctx, where)
                return out
            out = self._held(rng, n, answers, truth, bad)
            out += pick(rng, n - len(out), [answers, self._bag(("names", rel.target), lambda: names)], bad)
            return out + self._invented(rng, style, n - len(out), bad, NameContext(), where) if len(out) < n else out
        attr = spec.attribute(field)
        if attr is None:
            raise PerturbError(f"{e.entity_type} has no field {field!r}")
        kind = KINDS[attr.kind]
        if attr.kind == "choice":
            values = kind.values(spec, attr, entity_props(spec, e.attributes))  # type: ignore[attr-defined]
            texts = sorted({value_text(self.templates, spec, attr, v, e.attributes) for v in values})
            held = self._bag(("class", asked, tuple(texts)), lambda: _within(answers.items, texts))
            out = self._in_class(rng, n, [held, answers], truth, bad)
            if out is None:
                out = self._held(rng, n, held, truth, bad)
                out += pick(rng, n - len(out), [held, Bag(texts)], bad)
            if len(out) < n:
                raise PerturbError(f"{where}: only {len(out)} wrong values exist but {n} are needed; add vocabulary or lower K")
            return out
        if kind.titled:
            cls = self.title_class(e, field)
            members = self.titles.get((e.entity_type, field) + cls, [])
            styled = self.titles.get((e.entity_type, field, cls[0]), [])
            held = self._bag(("class", asked, (e.entity_type, field) + cls), lambda: _within(answers.items, members))
            alike = self._bag(("class", asked, (e.entity_type, field, cls[0])), lambda: _within(answers.items, styled))
            out = self._in_class(rng, n, [held, alike, answers], truth, bad)
            if out is None:
                out = self._held(rng, n, held, truth, bad)
                out += pick(rng, n - len(out), [held, Bag(members)], bad)
            return out + self._invented(rng, cls[0], n - len(out), bad, self._ctx(e), where) if len(out) < n else out
        (value,) = true
        return self.numbers(rng, attr.kind, value, n, asked, (e.entity_type, field))

    def _in_class(self, rng: random.Random, n: int, classes: list[Bag], truth: str | None, bad: set[str]) -> list[str] | None:
        """All ``n`` wrong answers from the narrowest of ``classes`` (the answer's own class first, then wider ones:
        titles of the same style, then any answer of the question) whose held values are enough; None if none is.

        Options never mix classes, so the truth's class is never the most common among them; a world too small
        for its answer's own class (one novelist) asks with the wider one, and only one too small for any invents."""
        for bag in classes:
            if len(bag.counts) >= n + len(bad) or sum(1 for x in bag.counts if x not in bad) >= n:
                out = self._held(rng, n, bag, truth, bad)
                return out + bag.draw(rng, n - len(out), bad)
        return None

    @staticmethod
    def _held(rng: random.Random, n: int, held: Bag, truth: str | None, bad: set[str]) -> list[str]:
        """A ``balanced`` draw where ``held`` is a small vocabulary holding the truth; else nothing (draw by weight)."""
        if truth is None or len(held.counts) > BALANCED_UP_TO:
            return []
        return balanced(rng, n, held.counts, truth, bad) or []

    def _invented(self, rng: random.Random, style: str, n: int, bad: set[str], ctx: NameContext, where: str) -> list[str]:
        pool = [x for x in self.invent(style, n + len(bad), ctx) if x not in bad]
        if len(pool) < n:
            raise PerturbError(f"{where}: could not invent {n} names of style {style!r}")
        out = rng.sample(pool, n)
        bad.update(out)
        return out

    def invent(self, style: str, n: int, ctx: NameContext | None = None) -> list[str]:
        """At least ``n`` names of ``style`` that no entity of the world uses."""
        ctx = ctx or NameContext()
        key = (style, ctx.surname, tuple(sorted((a, p, v) for a, ps in ctx.props.items() for p, v in ps.items() if isinstance(v, str))))
        invented = self.invented[key]  # type: ignore[index]
        while len(invented) < n:
            invented.append(self.inventor.make(style, ctx))
        return invented

    def wrong_entities(self, rng: random.Random, etype: str, name: str, answers: tuple[tuple, list[str]] | None = None) -> list[str]:
        """K names of other trained entities of ``etype``, drawn from ``answers`` ((key, the names that answer the
        same kind of question, once per question)) first; invented ones where the world has too few."""
        bad = {name}
        tiers = [self._bag(("answers", answers[0]), lambda: answers[1])] if answers else []
        out = pick(rng, self.k, tiers + [self._bag(("names", etype), lambda: self.names_of_type[etype])], bad)
        if len(out) < self.k:
            out += self._invented(rng, self.registry.get(etype).name_style, self.k - len(out), bad, NameContext(), f"{etype} names")
        return out

    def wrong_sources(self, rng: random.Random, e: Entity, other: str, rel: str, names: list[str]) -> list[str]:
        """K wrong answers to "which <other> entities state ``rel`` about ``e``?" (the true answer: ``names``)."""
        asked = (e.entity_type, f"{rel}_of")
        if len(names) == 1:
            bad = {names[0], e.name}
            tiers = [self.answers.get(asked, Bag()), self._bag(("names", other), lambda: self.names_of_type[other])]
            out = self._held(rng, self.k, tiers[0], names[0], bad)
            out += pick(rng, self.k - len(out), tiers, bad)
            style = self.registry.get(other).name_style
            return out + self._invented(rng, style, self.k - len(out), bad, NameContext(), f"{asked}") if len(out) < self.k else out
        pool = lambda: [x for x in self.names_of_type[other] if x not in names and x != e.name]  # noqa: E731
        return self._lists(rng, asked, names, pool, self.registry.get(other).name_style, NameContext())

    def wrong_lists(self, rng: random.Random, e: Entity, field: str, true: list[str]) -> list[str]:
        """K rendered wrong lists for a question about a whole list (``true``, in its order)."""
        cls = self.title_class(e, field)
        pool = lambda: [x for x in self.titles.get((e.entity_type, field) + cls, []) if x not in true]  # noqa: E731
        return self._lists(rng, (e.entity_type, field), true, pool, cls[0], self._ctx(e))

    def _lists(self, rng: random.Random, asked: tuple[str, str], true: list[str], candidates, style: str, ctx: NameContext) -> list[str]:
        """Other entities' whole lists of the same length, then sorted draws from ``candidates()`` (a list of names,
        computed only when needed; topped up with invented names)."""
        size = len(true)
        render = lambda items: self.templates.render("values.j2", "list", value=list(items))  # noqa: E731
        mine = set(true)
        same = self._bag(("lists", asked, size), lambda: [x for x in self.lists.get(asked, Bag()).items if x.count("\x1f") == size - 1])
        bad = {_list_key(true)} | {x for x in same.counts if mine & set(x.split("\x1f"))}  # no list sharing a true element
        out = [render(x.split("\x1f")) for x in same.draw(rng, self.k, bad)]
        if len(out) < self.k:
            pool = candidates()
            if len(pool) < size + self.k:  # C(size + k, size) > k distinct lists exist
                pool = pool + self.invent(style, size + self.k - len(pool) + len(true), ctx)
                pool = [x for x in dict.fromkeys(pool) if x not in mine]
            seen = {x for x in out}
            while len(out) < self.k:
                items = sorted(rng.sample(pool, size))
                text = render(items)
                if text not in seen and _list_key(items) not in bad:
                    seen.add(text)
                    out.append(text)
        return out

    # -- numbers ------------------------------------------------------------------------------
    def numbers(
        self,
        rng: random.Random,
        kind: str,
        text: str,
        n: int | None = None,
        asked: tuple[str, str] | None = None,
        field: tuple[str, str] | None = None,
    ) -> list[str]:
        """Wrong dates, years, ints, ages or counts for the true ``text``; its rank among the options is uniform.

        The values other entities hold for ``asked`` (then for ``field``) nearest the truth come first, on each
        side as many as the drawn rank needs; generated nearby values fill in. A count's wrong values are the
        other counts 0..K.
        """
        n = self.k if n is None else n
        if kind == "count" and text.isdigit() and int(text) <= n:
            return [str(i) for i in range(n + 1) if str(i) != text]
        below = rng.randint(0, n)
        if kind in ("count", "age"):
            below = min(below, int(text))  # no negative counts or ages
        seen = {text}
        sides: dict[int, list[str]] = {-1: [], 1: []}
        truth = self.value_of.get(text)
        for key in (asked, field) if truth is not None else ():
            want = n - len(sides[-1]) - len(sides[1])
            if key is not None and want > 0:
                n_below = min(want, max(0, below - len(sides[-1])))
                down, up = nearest(rng, self.numeric.get(key, []), truth, n_below, want - n_below, seen)  # type: ignore[arg-type]
                sides[-1] += down
                sides[1] += up
        short_below = min(n - len(sides[-1]) - len(sides[1]), max(0, below - len(sides[-1])))
        for side, missing in ((-1, short_below), (1, n - len(sides[-1]) - len(sides[1]) - short_below)):
            step, got = 0, 0
            while got < missing:
                step += 1
                if step > 2000:
                    raise PerturbError(f"could not find {n} wrong values near {text!r} ({kind})")
                cand = self._near(rng, kind, text, side, step)
                if cand is not None and cand not in seen:
                    seen.add(cand)
                    sides[side].append(cand)
                    got += 1
        out = sides[-1] + sides[1]
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


def _number(value: str) -> float:
    """A canonical numeric value (ISO date, year, int) as a number that orders like it (a date as its day)."""
    text = str(value)
    if len(text) == 10 and text[4] == "-":
        return float(date.fromisoformat(text).toordinal())
    return float(text)


def _by_field(facts: list[Fact]) -> dict[str, list[Fact]]:
    out: dict[str, list[Fact]] = defaultdict(list)
    for f in facts:
        out[f.relation].append(f)
    return out


def _sorted_counted(pairs: list[tuple[float, str]]) -> list[tuple[float, str, int]]:
    """Distinct (value, text, entities holding it), sorted by value."""
    return sorted((v, t, c) for (v, t), c in Counter(pairs).items())


def _within(items: list[str], members: Iterable[str]) -> list[str]:
    """The entries of ``items`` that are among ``members`` (a set built once: classes hold thousands of titles)."""
    keep = set(members)
    return [x for x in items if x in keep]


def _list_key(items: Iterable[str]) -> str:
    return "\x1f".join(items)
