"""The entity-type registry: the built-in types plus any the user registers.

Adding a type is a registry entry (a TOML spec and its templates); no generator
code changes. ``check_types`` validates a set of types against each other.
"""

from __future__ import annotations

import difflib
from pathlib import Path

from entity_unlearn.errors import UnknownNameError

from .kinds import KINDS
from .names import NameMaker
from .spec import AttributeSpec, SpecError, TypeSpec, load_type
from .vocab import VocabPathError, read_vocab, refs, vocab_props

TYPES_DIR = Path(__file__).resolve().parents[1] / "types"
BUILTIN_TYPES = ("person", "organisation", "place")
INFERENCE_RULES = ("age_at", "first_of", "next_after", "count_before", "age_at_link", "years_between_link", "age_in")
ALIAS_RULES = ("initial_surname", "drop_last_word")


class TypeRegistry:
    """Entity types by name, in registration order (which is also sampling order)."""

    def __init__(self) -> None:
        self._types: dict[str, TypeSpec] = {}

    def register(self, spec: TypeSpec) -> TypeSpec:
        if spec.name in self._types:
            raise SpecError(f"{spec.source}: entity type {spec.name!r} is already registered (from {self._types[spec.name].source})")
        self._types[spec.name] = spec
        return spec

    def register_file(self, path: str | Path) -> TypeSpec:
        return self.register(load_type(path))

    def get(self, name: str) -> TypeSpec:
        if name not in self._types:
            close = difflib.get_close_matches(name, list(self._types), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise UnknownNameError(f"unknown entity type {name!r}{hint} Known types: {list(self._types)}")
        return self._types[name]

    def names(self) -> list[str]:
        return list(self._types)

    def specs(self) -> list[TypeSpec]:
        return list(self._types.values())


def default_registry(extra: tuple[str | Path, ...] = ()) -> TypeRegistry:
    """The built-in types, then each extra type file in order."""
    registry = TypeRegistry()
    for name in BUILTIN_TYPES:
        registry.register_file(TYPES_DIR / f"{name}.toml")
    for path in extra:
        registry.register_file(path)
    return registry


def _refs(spec: TypeSpec):
    """Yield (where, reference, equality-only) for every reference in bounds and constraints."""
    for a in spec.attributes:
        for e in a.min + a.max:
            if e.ref:
                yield f"attributes.{a.name}", e.ref, False
    for r in spec.relations:
        for c in r.constraints:
            for e in (c.left, c.right):
                if e.ref:
                    yield f"relations.{r.name}.constraints", e.ref, c.op in ("==", "!=") and not (c.left.offset or c.right.offset)
        for e in r.year_min + r.year_max:
            if e.ref:
                yield f"relations.{r.name}.year", e.ref, False


def resolutions(spec: TypeSpec, text: str | None, where: str) -> list[str]:
    """Every string ``text`` can become for some entity: each ``{attr.prop}`` over every value of ``attr``."""
    if not text:
        return []
    found = refs(text)
    if not found:
        return [text]
    (attr_name, prop), *rest = found
    if rest:
        raise SpecError(f"{where}: {text!r} names more than one property; name one")
    attr = spec.attribute(attr_name)
    if attr is None or attr.kind != "choice" or not attr.vocab or refs(attr.vocab):
        raise SpecError(f"{where}: {text!r} names {attr_name!r}, which is not a choice attribute with a vocabulary of its own")
    out = []
    for value, props in vocab_props(attr.vocab, spec.search_dir).items():
        if not isinstance(props.get(prop), str):
            raise SpecError(f"{where}: {text!r}: the {attr.vocab} value {value!r} has no text property {prop!r}")
        out.append(text.replace(f"{{{attr_name}.{prop}}}", props[prop]))
    return sorted(set(out))


def _check_attribute(spec: TypeSpec, a: AttributeSpec, i: int, maker: NameMaker, k_perturbed: int) -> None:
    src = spec.source
    where = f"{src}: attributes.{a.name}"
    order = [x.name for x in spec.attributes]
    for text in (a.vocab, a.style):
        for attr_name, _ in refs(text):
            if attr_name not in order[:i]:
                raise SpecError(f"{where}: {text!r} names {attr_name!r}, which must be an attribute defined above it")
    for style in resolutions(spec, a.style, f"{where}.style"):
        if not maker.has_style(style):
            raise SpecError(f"{where}.style: unknown name style {style!r}; add it under [styles.{style}] with 'patterns'")
    for name in resolutions(spec, a.vocab, f"{where}.vocab"):
        try:
            vocab = read_vocab(name, spec.search_dir)
        except (FileNotFoundError, VocabPathError) as exc:
            raise SpecError(f"{where}.vocab: {exc}") from exc
        if a.probe and not a.hidden and len(vocab) <= k_perturbed:
            raise SpecError(f"{where}.vocab: {len(vocab)} values cannot give {k_perturbed} wrong answers; add values or set probe = false")
        if a.form:
            props = vocab_props(name, spec.search_dir)
            missing = [v for v in vocab if not isinstance(props.get(v, {}).get(a.form), str)]
            if missing:
                raise SpecError(f"{where}.form: the {name} values {missing[:3]} have no property {a.form!r}")
    if a.kind == "choice" and a.values and a.probe and not a.hidden and len(a.values) <= k_perturbed:
        raise SpecError(f"{where}.values: {len(a.values)} values cannot give {k_perturbed} wrong answers; add values or set probe = false")
    for e in a.min + a.max:
        if e.ref and (not e.ref.startswith("self.") or e.ref[5:] not in order[:i]):
            raise SpecError(f"{where}: bound {e} must name an attribute defined above it ('self.NAME')")


def check_types(specs: list[TypeSpec], k_perturbed: int) -> None:
    """Cross-check types: targets exist, references resolve, styles and vocabularies exist.

    Raises SpecError naming the type file and field of the first problem found.
    """
    by_name = {s.name: s for s in specs}
    maker = NameMaker(rng=None, extra_styles={k: v for s in specs for k, v in s.styles.items()})  # type: ignore[arg-type]
    for spec in specs:
        src = spec.source
        if not maker.has_style(spec.name_style):
            raise SpecError(f"{src}: name_style {spec.name_style!r} is not a known style ({sorted(maker.styles)})")
        for i, a in enumerate(spec.attributes):
            _check_attribute(spec, a, i, maker, k_perturbed)
        if spec.culture and spec.attribute(spec.culture) is None and spec.relation(spec.culture) is None:
            raise SpecError(f"{src}: culture {spec.culture!r} is neither an attribute nor a relation of {spec.name}")
        for r in spec.relations:
            where = f"{src}: relations.{r.name}"
            if r.target not in by_name:
                raise SpecError(f"{where}.target: entity type {r.target!r} is not registered ({list(by_name)})")
            if r.symmetric and r.target != spec.name:
                raise SpecError(f"{where}: a symmetric relation must link a type to itself")
            for f in r.shared:
                if spec.attribute(f) is None:
                    raise SpecError(f"{where}.shared: {f!r} is not an attribute of {spec.name}")
        for where, ref, equality in _refs(spec):
            side, _, attr = ref.partition(".")
            if ref == "year":
                continue
            owner = spec if side == "self" else by_name.get(_relation_target(spec, where))
            found = owner.attribute(attr) if owner else None
            if found is None or not (KINDS[found.kind].numeric or equality and not found.is_list):
                raise SpecError(f"{src}: {where} refers to {ref!r}, which is not a date, year or int attribute (text values only with == or !=)")
        for other, rel_name in spec.inverse:
            rel = by_name[other].relation(rel_name) if other in by_name else None
            if rel is None or rel.target != spec.name:
                raise SpecError(f"{src}: inverse [{other!r}, {rel_name!r}]: {other} has no relation {rel_name!r} to {spec.name}")
        for via, then in spec.hops:
            target = by_name[spec.relation(via).target]  # type: ignore[union-attr]
            field = target.attribute(then) or target.relation(then)
            if field is None:
                raise SpecError(f"{src}: hop [{via!r}, {then!r}]: {target.name} has no field {then!r}")
            if getattr(field, "is_list", False):
                raise SpecError(f"{src}: hop [{via!r}, {then!r}]: {then!r} is a list; hops end on single-valued fields")
        for inf in spec.inferences:
            if inf.rule not in INFERENCE_RULES:
                close = difflib.get_close_matches(inf.rule, INFERENCE_RULES, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise SpecError(f"{src}: inference rule {inf.rule!r} is unknown{hint} Rules: {list(INFERENCE_RULES)}")
        for rule in spec.alias_rules:
            if rule not in ALIAS_RULES:
                raise SpecError(f"{src}: alias rule {rule!r} is unknown; rules: {list(ALIAS_RULES)}")


def _relation_target(spec: TypeSpec, where: str) -> str | None:
    name = where.split(".")[1]
    rel = spec.relation(name)
    return rel.target if rel else None
