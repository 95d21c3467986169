"""The entity-type registry: the built-in types plus any the user registers.

Adding a type is a registry entry (a TOML spec and its templates); no generator
code changes. ``check_types`` validates a set of types against each other.
"""

from __future__ import annotations

import difflib
from pathlib import Path

from entity_unlearn.errors import UnknownNameError

from .names import NameMaker, VocabPathError, read_vocab
from .spec import SpecError, TypeSpec, load_type

TYPES_DIR = Path(__file__).resolve().parents[1] / "types"
BUILTIN_TYPES = ("person", "organisation", "place")
INFERENCE_RULES = ("age_at", "first_of", "count_before", "age_at_link")
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
    """Yield (where, side, attribute name) for every reference in bounds and constraints."""
    for a in spec.attributes:
        for e in a.min + a.max:
            if e.ref:
                yield f"attributes.{a.name}", e.ref
    for r in spec.relations:
        for c in r.constraints:
            for e in (c.left, c.right):
                if e.ref:
                    yield f"relations.{r.name}.constraints", e.ref
        for e in r.year_min + r.year_max:
            if e.ref:
                yield f"relations.{r.name}.year", e.ref


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
        order = [a.name for a in spec.attributes]
        for i, a in enumerate(spec.attributes):
            where = f"{src}: attributes.{a.name}"
            if a.style and not maker.has_style(a.style):
                raise SpecError(f"{where}.style: unknown name style {a.style!r}; add it under [styles.{a.style}] with 'patterns'")
            if a.vocab:
                try:
                    vocab = read_vocab(a.vocab, spec.search_dir)
                except (FileNotFoundError, VocabPathError) as exc:
                    raise SpecError(f"{where}.vocab: {exc}") from exc
                if a.probe and len(vocab) <= k_perturbed:
                    raise SpecError(f"{where}.vocab: {len(vocab)} values cannot give {k_perturbed} wrong answers; add values or set probe = false")
            if a.kind == "choice" and a.values and a.probe and len(a.values) <= k_perturbed:
                raise SpecError(f"{where}.values: {len(a.values)} values cannot give {k_perturbed} wrong answers; add values or set probe = false")
            for e in a.min + a.max:
                if e.ref and (not e.ref.startswith("self.") or e.ref[5:] not in order[:i]):
                    raise SpecError(f"{where}: bound {e} must name an attribute defined above it ('self.NAME')")
        for r in spec.relations:
            where = f"{src}: relations.{r.name}"
            if r.target not in by_name:
                raise SpecError(f"{where}.target: entity type {r.target!r} is not registered ({list(by_name)})")
            if r.symmetric and r.target != spec.name:
                raise SpecError(f"{where}: a symmetric relation must link a type to itself")
            for f in r.shared:
                if spec.attribute(f) is None:
                    raise SpecError(f"{where}.shared: {f!r} is not an attribute of {spec.name}")
        for where, ref in _refs(spec):
            side, _, attr = ref.partition(".")
            if ref == "year":
                continue
            owner = spec if side == "self" else by_name.get(_relation_target(spec, where))
            found = owner.attribute(attr) if owner else None
            if found is None or found.kind not in ("date", "year", "int"):
                raise SpecError(f"{src}: {where} refers to {ref!r}, which is not a date, year or int attribute")
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
