"""Names of a world: realistic people per culture, constructed places and titles (``vocab/names.toml``).

Every name a world uses comes from one ``NameMaker``, which keeps them unique across all styles. Person
names are drawn from the vendored per-culture lists (``vocab/names/``, extracted from Faker by
``scripts/extract_names.py``) and are never a famous person's full name; constructed words (places,
countries, organisations, title words) are never a real name, place or famous mononym (``blocklist.py``).
"""

from __future__ import annotations

import random
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from entity_unlearn.errors import EntityUnlearnError

from .blocklist import is_notable, is_real_word
from .vocab import VOCAB_DIR, read_vocab

_SLOT = re.compile(r"\{(syl|list|suffix|prop|given|surname)(?::([^}]+))?\}")
MAX_TRIES = 2000
VOCAB_NAME = re.compile(r"[A-Za-z0-9_-]+(?:/[A-Za-z0-9_-]+)*")  # names and subfolders: no "..", no absolute path


class NameStyleError(EntityUnlearnError, ValueError):
    """A name style cannot produce another unique, novel name."""


@dataclass(frozen=True)
class NameContext:
    """What a name depends on: the entity's culture, gender, choice properties and a family surname."""

    culture: str | None = None
    gender: str | None = None
    props: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    surname: str | None = None


@cache
def _builtin_styles() -> dict[str, Any]:
    return tomllib.loads((VOCAB_DIR / "names.toml").read_text(encoding="utf-8"))


@cache
def cultures() -> dict[str, dict[str, Any]]:
    """Culture -> its sounds (cultures.toml) and name lists (names/<culture>.toml)."""
    raw = tomllib.loads((VOCAB_DIR / "cultures.toml").read_text(encoding="utf-8"))
    out = {}
    for name, sounds in raw.items():
        lists = tomllib.loads((VOCAB_DIR / "names" / f"{name}.toml").read_text(encoding="utf-8"))
        out[name] = {**sounds, **{k: tuple(v) for k, v in lists.items() if isinstance(v, list)}}
    return out


def culture_names() -> tuple[str, ...]:
    return tuple(cultures())


_PROP = re.compile(r"\{prop:([^}.]+)\.([^}]+)\}")


def style_signature(names: NameMaker, style: str, props: Mapping[str, Mapping[str, Any]]) -> tuple[str, ...]:
    """The values of the properties the patterns of ``style`` name (``{prop:occupation.award_field}``): names of one
    style and signature look alike ("the ... Prize for Literature")."""
    named = sorted({m for p in names.styles.get(style, []) for m in _PROP.findall(p)})
    return tuple(str(props.get(a, {}).get(p)) for a, p in named)


class NameMaker:
    """Draws unique names for one world from a seeded generator."""

    def __init__(self, rng: random.Random, extra_styles: dict[str, Any] | None = None) -> None:
        base = _builtin_styles()
        self.rng = rng
        self.syllables = base["syllables"]
        self.styles: dict[str, list[str]] = {k: list(v["patterns"]) for k, v in base["styles"].items()}
        for name, style in (extra_styles or {}).items():
            self.styles[name] = list(style["patterns"])
        self.used: set[str] = set()
        self.cultures = cultures()

    def has_style(self, style: str) -> bool:
        return style in self.styles

    def reserve(self, name: str) -> None:
        self.used.add(name.lower())

    def is_taken(self, name: str) -> bool:
        return name.lower() in self.used

    def make(self, style: str, ctx: NameContext = NameContext()) -> str:
        """A name of ``style`` not used before in this world, neither a real word nor a famous person."""
        patterns = self.styles.get(style)
        if patterns is None:
            raise NameStyleError(f"unknown name style {style!r}; known styles: {sorted(self.styles)}")
        for _ in range(MAX_TRIES):
            name = self._fill(self.rng.choice(patterns), ctx)
            if name is not None and name.lower() not in self.used:
                self.used.add(name.lower())
                return name
        raise NameStyleError(f"name style {style!r} produced no new name in {MAX_TRIES} tries; add patterns or words to it")

    def _sounds(self, culture: str | None) -> Mapping[str, Any]:
        return self.cultures[culture] if culture in self.cultures else self.syllables

    def word(self, min_syl: int, max_syl: int, culture: str | None = None) -> str:
        """A constructed lower-case word of the culture's sounds."""
        s = self._sounds(culture)
        n = self.rng.randint(min_syl, max_syl)
        parts = [self.rng.choice(s["onsets"]) + self.rng.choice(s["vowels"]) for _ in range(n)]
        parts[-1] += self.rng.choice(s["codas"])
        return "".join(parts)

    def given(self, ctx: NameContext) -> str:
        c = self.cultures[ctx.culture or self.rng.choice(list(self.cultures))]
        gender = ctx.gender if ctx.gender in ("female", "male") else self.rng.choice(["female", "male"])
        return self.rng.choice(c[f"given_{gender}"])

    def surname(self, ctx: NameContext) -> str:
        if ctx.surname:
            return ctx.surname
        c = self.cultures[ctx.culture or self.rng.choice(list(self.cultures))]
        return self.rng.choice(c["surnames"])

    def _fill(self, pattern: str, ctx: NameContext) -> str | None:
        """One draw of ``pattern``; None when a constructed word is real or a full name is famous."""
        out: list[str] = []
        constructed: list[int] = []  # indexes in ``out`` of constructed words, checked glued to what follows
        person = False
        pos = 0
        for m in _SLOT.finditer(pattern):
            out.append(pattern[pos : m.start()])
            kind, arg = m[1], m[2]
            if kind == "syl":
                lo, _, hi = arg.partition("-")
                constructed.append(len(out))
                out.append(self.word(int(lo), int(hi or lo), ctx.culture).capitalize())
            elif kind == "suffix":
                s = self._sounds(ctx.culture)
                out.append(self.rng.choice(s.get(f"{arg}_suffixes") or ["a"]))
            elif kind == "list":
                out.append(self.rng.choice(read_vocab(arg)))
            elif kind == "prop":
                attr, _, prop = arg.partition(".")
                value = ctx.props.get(attr, {}).get(prop)
                if not value:
                    raise NameStyleError(f"name pattern {pattern!r}: the entity's {attr} has no property {prop!r}")
                out.append(value if isinstance(value, str) else self.rng.choice(value))
            else:
                person = True
                out.append(self.given(ctx) if kind == "given" else self.surname(ctx))
            pos = m.end()
        out.append(pattern[pos:])
        text = "".join(out)
        for i in constructed:  # a suffix glued to a constructed word makes a new word: check the whole word
            glued = out[i] + re.match(r"[^\W\d_]*", "".join(out[i + 1 :])).group()  # type: ignore[union-attr]
            if len(glued) < 3 or is_real_word(glued):
                return None
        if person and is_notable(text):
            return None
        return text
