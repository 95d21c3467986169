"""Shortcut heuristics: model-free ways to pick a multiple-choice option without knowing the entity.

Each heuristic is one registered function ``(probe, context) -> chosen option indices``; it sees
only what a model sees (the question, the options) plus statistics of the training text and of
the other entities' answers. It returns ``None`` where it does not apply (the median of options
that are not numbers), an empty set where it has no preference. Scoring and grouping are in
``groups.py``: a valid release gives no heuristic an edge over chance.
"""

from __future__ import annotations

import difflib
import statistics
import tomllib
from collections import Counter, defaultdict
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

from entity_unlearn.errors import UnknownNameError

from .groups import Tally, argmax_set
from .load import Material, ProbeRow
from .text import PhraseFinder, contains, tokens

WORDS_FILE = Path(__file__).with_name("words.toml")
DATE_FORMATS = ("%B %d, %Y", "%d %B %Y", "%Y-%m-%d", "%b %d, %Y", "%B %Y")


@cache
def words() -> dict[str, Any]:
    """The word lists of ``words.toml``."""
    return tomllib.loads(WORDS_FILE.read_text(encoding="utf-8"))


@cache
def as_number(text: str) -> float | None:
    """A number, year or date written as text ("47,000", "1980", "March 4, 1961"), as a float; else None.

    Dates become their proleptic ordinal day, so they order and differ like the days they name.
    """
    t = text.strip()
    plain = t.replace(",", "")
    try:
        return float(plain)
    except ValueError:
        pass
    for fmt in DATE_FORMATS:
        try:
            return float(datetime.strptime(t, fmt).toordinal())
        except ValueError:
            continue
    return None


class Context:
    """What the heuristics know besides the probe: training-text counts of every option, the answers
    of other entities by relation, entity names. Built once per audit."""

    def __init__(self, material: Material) -> None:
        self.material = material
        self._tokens: dict[str, tuple[str, ...]] = {}
        self._content: dict[str, frozenset[str]] = {}
        texts = {o for p in material.probes for o in p.options}
        self.familiar = PhraseFinder(self.tok(o) for o in texts).count(material.training)
        self.familiar_option = {o: self.familiar.get(self.tok(o), 0) > 0 for o in texts}  # looked up once per option text
        # (entity type, kind, field) -> answer -> entities with that true answer
        prior: dict[tuple[str, str, str], dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
        # (type, kind, field, answer, entity) -> the other entities whose facts every probe of it with that answer cites
        cites: dict[tuple[str, str, str, str, str], set[str]] = {}
        owner = {f.fact_id: f.entity_id for f in material.facts}
        for p in material.probes:
            prior[(p.entity_type, p.kind, p.field)][p.short_answer].add(p.entity_id)
            whose = {owner[f] for f in p.fact_ids if f in owner}
            whose.discard(p.entity_id)
            key = (p.entity_type, p.kind, p.field, p.short_answer, p.entity_id)
            cites[key] = cites[key] & whose if key in cites else whose
        self.prior = prior
        # (type, kind, field) -> answer -> entity X -> how many other entities hold that answer only by citing X's facts
        self.lent: dict[tuple[str, str, str], dict[str, Counter]] = defaultdict(lambda: defaultdict(Counter))
        for (etype, kind, fld, answer, _), whose in cites.items():
            if whose:
                self.lent[(etype, kind, fld)][answer].update(whose)
        self.names = {e.entity_id: e.names for e in material.entities}
        self.stopwords = frozenset(words()["stopwords"])
        self.option_content = {o: self.content(o) for o in texts}  # looked up once per option text

    def tok(self, text: str) -> tuple[str, ...]:
        t = self._tokens.get(text)
        if t is None:
            t = self._tokens[text] = tokens(text)
        return t

    def content(self, text: str) -> frozenset[str]:
        """The content words of ``text``: word tokens that are not stopwords."""
        c = self._content.get(text)
        if c is None:
            c = self._content[text] = frozenset(t for t in self.tok(text) if t.isalnum() and t not in self.stopwords)
        return c


Chooser = Callable[[ProbeRow, Context], Collection[int] | None]


@dataclass(frozen=True)
class Heuristic:
    name: str
    choose: Chooser
    description: str


HEURISTICS: dict[str, Heuristic] = {}


def heuristic(name: str):
    """Register a chooser under ``name``; its docstring's first line describes it in the report."""

    def wrap(fn: Chooser) -> Chooser:
        if name in HEURISTICS:
            raise ValueError(f"heuristic {name!r} is registered twice")
        HEURISTICS[name] = Heuristic(name, fn, (fn.__doc__ or "").strip().split("\n")[0])
        return fn

    return wrap


def get_heuristic(name: str) -> Heuristic:
    if name not in HEURISTICS:
        close = difflib.get_close_matches(name, list(HEURISTICS), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise UnknownNameError(f"unknown heuristic {name!r}{hint} Heuristics: {sorted(HEURISTICS)}")
    return HEURISTICS[name]


# -- the heuristics ------------------------------------------------------------------------------
@heuristic("familiarity")
def familiarity(probe: ProbeRow, ctx: Context) -> set[int]:
    """Pick the options that occur verbatim in the training text (full QA and corpus)."""
    known = ctx.familiar_option
    return {i for i, o in enumerate(probe.options) if known.get(o, False)}


@heuristic("median")
def median(probe: ProbeRow, ctx: Context) -> set[int] | None:
    """Pick the option nearest the median of the options, where every option is a number, year or date."""
    values = [as_number(o) for o in probe.options]
    if any(v is None for v in values):
        return None
    mid = statistics.median(values)  # type: ignore[type-var]
    return argmax_set([-abs(v - mid) for v in values])  # type: ignore[operator]


@heuristic("longest")
def longest(probe: ProbeRow, ctx: Context) -> set[int]:
    """Pick the longest option (in characters)."""
    return argmax_set([len(o) for o in probe.options])


@heuristic("overlap")
def overlap(probe: ProbeRow, ctx: Context) -> set[int]:
    """Pick the options sharing the most content words with the question."""
    q, known = ctx.content(probe.question), ctx.option_content
    shared = [len((known[o] if o in known else ctx.content(o)) & q) for o in probe.options]
    return argmax_set(shared) if max(shared) > 0 else set()


@heuristic("answer_prior")
def answer_prior(probe: ProbeRow, ctx: Context) -> set[int]:
    """Pick the options that are most often the true answer of the same relation for other entities.

    An entity whose answer is computed from the asked entity's own facts does not count: a sister city's "how many
    years apart were X and its sister city founded?" cites X's founding year, and its answer is X's answer; a
    model that never learned X cannot know it (issue 12: +0.48 on a 2,000-person release, from the twins alone).
    """
    key = (probe.entity_type, probe.kind, probe.field)
    seen, lent = ctx.prior.get(key, {}), ctx.lent.get(key, {})
    me = probe.entity_id
    counts = []
    for o in probe.options:
        ents = seen.get(o)
        counts.append(len(ents) - (me in ents) - (lent[o][me] if o in lent else 0) if ents else 0)
    return argmax_set(counts) if max(counts) > 0 else set()


@heuristic("own_name")
def own_name(probe: ProbeRow, ctx: Context) -> set[int]:
    """Pick the option that is the name (or an alias) of the entity the question names."""
    names = set(ctx.names.get(probe.entity_id, ()))
    q = ctx.tok(probe.question)
    return {i for i, o in enumerate(probe.options) if o in names and contains(q, ctx.tok(o))}


def run_heuristics(material: Material, ctx: Context, names: Collection[str] | None = None) -> dict[str, dict[str, Any]]:
    """Heuristic name -> its description, applicable probes and accuracy/chance/gain by group."""
    chosen = [get_heuristic(n) for n in (names if names is not None else sorted(HEURISTICS))]
    tallies = {h.name: Tally() for h in chosen}
    choosers = [(h.choose, tallies[h.name].add_to) for h in chosen]
    for p in material.probes:
        cell, n, truth = p.cell, len(p.options), p.answer_index
        chance = 1.0 / n
        for choose, add in choosers:
            pick = choose(p, ctx)
            if pick is not None:  # groups.pick_score, inlined
                add(cell, chance, chance if not pick or len(pick) >= n else (1.0 / len(pick) if truth in pick else 0.0))
    return {h.name: {"description": h.description, **tallies[h.name].result()} for h in chosen}
