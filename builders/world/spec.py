"""Entity type specifications: attribute and relation schemas read from TOML.

A type is data: ``builders/types/<name>.toml`` (or a user file) plus the
templates under ``prompts/<templates>/``. This module parses and validates the
TOML; nothing here knows any particular type.

Bounds and constraints use a tiny expression form, ``REF [+|- INT]`` where REF is
an integer literal, ``self.<attribute>``, ``target.<attribute>`` or ``year`` (a
link's year). A date attribute stands for its year. Constraints compare two such
expressions with one of ``< <= > >= ==``.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from entity_unlearn.errors import EntityUnlearnError

from .kinds import KINDS
from .vocab import VOCAB_NAME, refs_removed

ATTRIBUTE_KINDS = tuple(KINDS)

_EXPR = re.compile(r"^\s*(?:(?P<int>-?\d+)|(?P<ref>(?:self|target)\.[a-z_][a-z0-9_]*|year))\s*(?:(?P<sign>[+-])\s*(?P<off>\d+))?\s*$")
_CONSTRAINT = re.compile(r"^(?P<left>.+?)\s*(?P<op><=|>=|==|!=|<|>)\s*(?P<right>.+)$")


class SpecError(EntityUnlearnError, ValueError):
    """A type specification is malformed; the message names the file and field."""


@dataclass(frozen=True)
class Expr:
    """``ref + offset`` or a literal ``offset`` when ``ref`` is None."""

    ref: str | None
    offset: int

    def __str__(self) -> str:
        if self.ref is None:
            return str(self.offset)
        return self.ref if self.offset == 0 else f"{self.ref} {'+' if self.offset > 0 else '-'} {abs(self.offset)}"


@dataclass(frozen=True)
class Constraint:
    left: Expr
    op: str
    right: Expr

    def __str__(self) -> str:
        return f"{self.left} {self.op} {self.right}"


@dataclass(frozen=True)
class AttributeSpec:
    name: str
    kind: str
    probability: float = 1.0
    probe: bool = True
    values: tuple[str, ...] = ()
    weights: tuple[float, ...] = ()
    vocab: str | None = None
    style: str | None = None
    pool: int = 0
    unique: bool = False
    count: tuple[int, int] = (1, 1)
    min: tuple[Expr, ...] = ()
    max: tuple[Expr, ...] = ()
    log: bool = False
    round: int = 0
    form: str | None = None
    hidden: bool = False
    spread: bool = False

    @property
    def is_list(self) -> bool:
        return KINDS[self.kind].is_list


@dataclass(frozen=True)
class RelationSpec:
    name: str
    target: str
    probability: float = 1.0
    symmetric: bool = False
    constraints: tuple[Constraint, ...] = ()
    shared: tuple[str, ...] = ()
    year_min: tuple[Expr, ...] = ()
    year_max: tuple[Expr, ...] = ()
    probe: bool = True
    family: bool = False

    @property
    def has_year(self) -> bool:
        return bool(self.year_min or self.year_max)


@dataclass(frozen=True)
class InferenceSpec:
    rule: str
    params: dict[str, str]


@dataclass(frozen=True)
class TypeSpec:
    name: str
    id_prefix: str
    name_style: str
    template_dir: str
    paragraphs: tuple[tuple[str, ...], ...]
    attributes: tuple[AttributeSpec, ...]
    relations: tuple[RelationSpec, ...]
    reverse: tuple[tuple[str, ...], ...] = ()
    inverse: tuple[tuple[str, str], ...] = ()
    hops: tuple[tuple[str, str], ...] = ()
    inferences: tuple[InferenceSpec, ...] = ()
    alias_rules: tuple[str, ...] = ()
    styles: dict[str, Any] = field(default_factory=dict)
    culture: str | None = None
    surname_share: int = 1
    source: str = "<memory>"
    search_dir: Path | None = None
    sha256: str = ""

    def attribute(self, name: str) -> AttributeSpec | None:
        return next((a for a in self.attributes if a.name == name), None)

    def relation(self, name: str) -> RelationSpec | None:
        return next((r for r in self.relations if r.name == name), None)

    def fields(self) -> tuple[str, ...]:
        """Every field that makes facts: the attributes that are not hidden, then the relations."""
        return tuple(a.name for a in self.attributes if not a.hidden) + tuple(r.name for r in self.relations)


def parse_expr(text: Any, where: str) -> Expr:
    m = _EXPR.match(str(text))
    if not m:
        raise SpecError(f"{where}: cannot read bound {text!r}; write an integer, 'self.ATTR', 'target.ATTR' or 'year', optionally '+ N' or '- N'")
    if m["int"] is not None:
        return Expr(None, int(m["int"]))
    off = int(m["off"] or 0) * (-1 if m["sign"] == "-" else 1)
    return Expr(m["ref"], off)


def parse_constraint(text: str, where: str) -> Constraint:
    m = _CONSTRAINT.match(str(text))
    if not m:
        raise SpecError(f"{where}: cannot read constraint {text!r}; write e.g. 'target.founding_year < self.birth_date'")
    return Constraint(parse_expr(m["left"], where), m["op"], parse_expr(m["right"], where))


_ATTR_KEYS = {
    "kind",
    "probability",
    "probe",
    "values",
    "weights",
    "vocab",
    "style",
    "pool",
    "unique",
    "count",
    "min",
    "max",
    "log",
    "round",
    "form",
    "hidden",
    "spread",
}
_REL_KEYS = {"target", "probability", "symmetric", "constraints", "shared", "year", "probe", "family"}
_TOP_KEYS = {
    "name",
    "id_prefix",
    "name_style",
    "templates",
    "paragraphs",
    "reverse",
    "inverse",
    "hops",
    "inferences",
    "alias_rules",
    "attributes",
    "relations",
    "styles",
    "culture",
    "surname_share",
}


def _check_keys(table: dict, allowed: set[str], where: str) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise SpecError(f"{where}: unknown key(s) {unknown}; allowed keys are {sorted(allowed)}")


def _attribute(name: str, raw: dict, where: str) -> AttributeSpec:
    _check_keys(raw, _ATTR_KEYS, where)
    kind = raw.get("kind")
    if kind not in ATTRIBUTE_KINDS:
        raise SpecError(f"{where}.kind: {kind!r} is not a known kind; use one of {list(ATTRIBUTE_KINDS)}")
    count = tuple(raw.get("count", (1, 1)))
    if len(count) != 2 or not 0 <= count[0] <= count[1]:
        raise SpecError(f"{where}.count: give [min, max] with 0 <= min <= max, got {raw.get('count')!r}")
    problem = KINDS[kind].validate(raw, where)
    if problem:
        raise SpecError(problem)
    vocab = raw.get("vocab")
    if vocab is not None and (not isinstance(vocab, str) or not VOCAB_NAME.fullmatch(refs_removed(vocab))):
        raise SpecError(
            f"{where}.vocab: {vocab!r} is not a vocabulary name; write a name such as 'music_genres' for music_genres.txt "
            "next to the type file (or a built-in vocabulary); paths outside those folders are refused"
        )
    weights = tuple(float(w) for w in raw.get("weights", ()))
    if weights and len(weights) != len(raw.get("values", ())):
        raise SpecError(f"{where}.weights: {len(weights)} weights for {len(raw.get('values', ()))} values")
    if raw.get("spread") and (kind != "choice" or weights):
        raise SpecError(f"{where}.spread: only a 'choice' attribute without weights can deal its values evenly")
    return AttributeSpec(
        name=name,
        kind=kind,
        probability=float(raw.get("probability", 1.0)),
        probe=bool(raw.get("probe", True)),
        values=tuple(raw.get("values", ())),
        weights=weights,
        vocab=raw.get("vocab"),
        style=raw.get("style"),
        pool=int(raw.get("pool", 0)),
        unique=bool(raw.get("unique", False)),
        count=count,  # type: ignore[arg-type]
        min=tuple(parse_expr(x, f"{where}.min") for x in raw.get("min", ())),
        max=tuple(parse_expr(x, f"{where}.max") for x in raw.get("max", ())),
        log=bool(raw.get("log", False)),
        round=int(raw.get("round", 0)),
        form=raw.get("form"),
        hidden=bool(raw.get("hidden", False)),
        spread=bool(raw.get("spread", False)),
    )


def _relation(name: str, raw: dict, where: str) -> RelationSpec:
    _check_keys(raw, _REL_KEYS, where)
    if "target" not in raw:
        raise SpecError(f"{where}: a relation needs a 'target' entity type")
    year = raw.get("year", {})
    _check_keys(year, {"min", "max"}, f"{where}.year")
    return RelationSpec(
        name=name,
        target=raw["target"],
        probability=float(raw.get("probability", 1.0)),
        symmetric=bool(raw.get("symmetric", False)),
        constraints=tuple(parse_constraint(c, f"{where}.constraints") for c in raw.get("constraints", ())),
        shared=tuple(raw.get("shared", ())),
        year_min=tuple(parse_expr(x, f"{where}.year.min") for x in year.get("min", ())),
        year_max=tuple(parse_expr(x, f"{where}.year.max") for x in year.get("max", ())),
        probe=bool(raw.get("probe", True)),
        family=bool(raw.get("family", False)),
    )


def parse_type(raw: dict, source: str = "<memory>", search_dir: Path | None = None, sha256: str = "") -> TypeSpec:
    """Build a TypeSpec from a parsed TOML table; every problem names ``source`` and the field."""
    _check_keys(raw, _TOP_KEYS, source)
    for key in ("name", "id_prefix", "name_style"):
        if not isinstance(raw.get(key), str) or not raw[key]:
            raise SpecError(f"{source}: missing or empty '{key}'")
    attributes = tuple(_attribute(n, a, f"{source}: attributes.{n}") for n, a in raw.get("attributes", {}).items())
    relations = tuple(_relation(n, r, f"{source}: relations.{n}") for n, r in raw.get("relations", {}).items())
    known = {a.name for a in attributes if not a.hidden} | {r.name for r in relations}
    if len({a.name for a in attributes} | {r.name for r in relations}) != len(attributes) + len(relations):
        raise SpecError(f"{source}: an attribute and a relation share a name")
    paragraphs = tuple(tuple(p) for p in raw.get("paragraphs", ()))
    placed = [f for p in paragraphs for f in p]
    for f in placed:
        if f not in known:
            raise SpecError(f"{source}: paragraphs name {f!r}, which is neither an attribute nor a relation")
    missing = sorted(known - set(placed))
    if missing:
        raise SpecError(f"{source}: paragraphs leave out {missing}; every fact must appear in the biography")
    reverse = tuple(tuple(r) for r in raw.get("reverse", ()))
    for entry in reverse:
        for f in entry:
            if f not in known:
                raise SpecError(f"{source}: reverse names unknown field {f!r}")
    hops = tuple((h[0], h[1]) for h in raw.get("hops", ()))
    for via, _ in hops:
        if via not in {r.name for r in relations}:
            raise SpecError(f"{source}: hops start at {via!r}, which is not a relation of {raw['name']}")
    share = raw.get("surname_share", 1)
    if not isinstance(share, int) or isinstance(share, bool) or share < 1:
        raise SpecError(f"{source}: surname_share must be a whole number of at least 1 (persons per surname), got {share!r}")
    inferences = []
    for i, inf in enumerate(raw.get("inferences", ())):
        if "rule" not in inf:
            raise SpecError(f"{source}: inferences[{i}] needs a 'rule'")
        inferences.append(InferenceSpec(rule=inf["rule"], params={k: str(v) for k, v in inf.items() if k != "rule"}))
    return TypeSpec(
        name=raw["name"],
        id_prefix=raw["id_prefix"],
        name_style=raw["name_style"],
        template_dir=raw.get("templates", raw["name"]),
        paragraphs=paragraphs,
        attributes=attributes,
        relations=relations,
        reverse=reverse,
        inverse=tuple((str(x[0]), str(x[1])) for x in raw.get("inverse", ())),
        hops=hops,
        inferences=tuple(inferences),
        alias_rules=tuple(raw.get("alias_rules", ())),
        styles=dict(raw.get("styles", {})),
        culture=raw.get("culture"),
        surname_share=share,
        source=source,
        search_dir=search_dir,
        sha256=sha256,
    )


def load_type(path: str | Path) -> TypeSpec:
    """Read and validate one type specification file."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SpecError(f"{path}: cannot read type specification ({exc.strerror})") from exc
    try:
        raw = tomllib.loads(data.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SpecError(f"{path}: not valid TOML: {exc}") from exc
    return parse_type(raw, source=str(path), search_dir=path.parent, sha256=hashlib.sha256(data).hexdigest())
