"""Novel names from syllable and vocabulary rules (``vocab/names.toml``).

Every name a world uses comes from one ``NameMaker``, which keeps them unique
across all styles and rejects any novel word found in ``vocab/real_names.txt``.
"""

from __future__ import annotations

import random
import re
import tomllib
from functools import cache
from pathlib import Path
from typing import Any

from entity_unlearn.errors import EntityUnlearnError

VOCAB_DIR = Path(__file__).resolve().parents[1] / "vocab"
_SLOT = re.compile(r"\{(syl|list):([^}]+)\}")
MAX_TRIES = 2000
VOCAB_NAME = re.compile(r"[A-Za-z0-9_-]+(?:/[A-Za-z0-9_-]+)*")  # names and subfolders: no "..", no absolute path


class NameStyleError(EntityUnlearnError, ValueError):
    """A name style cannot produce another unique, novel name."""


class VocabPathError(EntityUnlearnError, ValueError):
    """A vocabulary is named by a path that leaves the type file's folder and the built-in vocabularies."""


@cache
def real_names() -> frozenset[str]:
    lines = (VOCAB_DIR / "real_names.txt").read_text(encoding="utf-8").splitlines()
    return frozenset(x.strip().lower() for x in lines if x.strip() and not x.startswith("#"))


@cache
def _builtin_styles() -> dict[str, Any]:
    return tomllib.loads((VOCAB_DIR / "names.toml").read_text(encoding="utf-8"))


@cache
def _title_words() -> dict[str, tuple[str, ...]]:
    raw = tomllib.loads((VOCAB_DIR / "title_words.toml").read_text(encoding="utf-8"))
    return {k: tuple(v) for k, v in raw.items()}


@cache
def read_vocab(name: str, search_dir: Path | None = None) -> tuple[str, ...]:
    """A vocabulary list: ``<search_dir>/<name>.txt`` first, then the built-in ``vocab/<name>.txt``.

    ``name`` is a name (``music_genres``, or ``lists/music_genres`` in a subfolder), never a path out of
    those folders: an absolute path, ``..`` or a link leading elsewhere is refused (VocabPathError), so a
    type file cannot copy an arbitrary file of the machine into a published dataset."""
    if not isinstance(name, str) or not VOCAB_NAME.fullmatch(name):
        raise VocabPathError(
            f"vocabulary {name!r} is not a vocabulary name; write a name such as 'music_genres' for music_genres.txt "
            f"next to the type file or in {VOCAB_DIR} (paths outside those folders are refused)"
        )
    for folder in (search_dir, VOCAB_DIR):
        if folder is not None and (folder / f"{name}.txt").is_file():
            path = (folder / f"{name}.txt").resolve()
            if not path.is_relative_to(Path(folder).resolve()):
                raise VocabPathError(f"vocabulary {name!r}: {folder / f'{name}.txt'} leads outside {folder} (a link?); copy the list into the folder")
            lines = path.read_text(encoding="utf-8").splitlines()
            return tuple(x.strip() for x in lines if x.strip() and not x.startswith("#"))
    if name in _title_words():
        return _title_words()[name]
    raise FileNotFoundError(f"vocabulary {name!r} not found: add {name}.txt next to the type file or to {VOCAB_DIR}")


class NameMaker:
    """Draws unique novel names for one world from a seeded generator."""

    def __init__(self, rng: random.Random, extra_styles: dict[str, Any] | None = None) -> None:
        base = _builtin_styles()
        self.rng = rng
        self.syllables = base["syllables"]
        self.styles: dict[str, list[str]] = {k: list(v["patterns"]) for k, v in base["styles"].items()}
        for name, style in (extra_styles or {}).items():
            self.styles[name] = list(style["patterns"])
        self.used: set[str] = set()
        self.real = real_names()

    def has_style(self, style: str) -> bool:
        return style in self.styles

    def reserve(self, name: str) -> None:
        self.used.add(name.lower())

    def is_taken(self, name: str) -> bool:
        return name.lower() in self.used

    def make(self, style: str) -> str:
        """A name of ``style`` not used before in this world and not a real name."""
        patterns = self.styles.get(style)
        if patterns is None:
            raise NameStyleError(f"unknown name style {style!r}; known styles: {sorted(self.styles)}")
        for _ in range(MAX_TRIES):
            name = self._fill(self.rng.choice(patterns))
            if name.lower() not in self.used:
                self.used.add(name.lower())
                return name
        raise NameStyleError(f"name style {style!r} produced no new name in {MAX_TRIES} tries; add patterns or words to it")

    def word(self, min_syl: int, max_syl: int) -> str:
        """A novel capitalised word; words that match a real name are redrawn."""
        s = self.syllables
        while True:
            n = self.rng.randint(min_syl, max_syl)
            parts = [self.rng.choice(s["onsets"]) + self.rng.choice(s["vowels"]) for _ in range(n)]
            parts[-1] += self.rng.choice(s["codas"])
            word = "".join(parts)
            if len(word) >= 3 and word not in self.real:
                return word.capitalize()

    def _fill(self, pattern: str) -> str:
        while True:
            out, spans, pos = [], [], 0
            for m in _SLOT.finditer(pattern):
                out.append(pattern[pos : m.start()])
                if m[1] == "syl":
                    lo, _, hi = m[2].partition("-")
                    start = sum(map(len, out))
                    out.append(self.word(int(lo), int(hi or lo)))
                    spans.append((start, start + len(out[-1])))
                else:
                    out.append(self.rng.choice(read_vocab(m[2])))
                pos = m.end()
            out.append(pattern[pos:])
            text = "".join(out)
            # A suffix glued to a novel word ("{syl:2}mar") makes a new word: check the whole word.
            if not any(self._glued(text, a, b).lower() in self.real for a, b in spans):
                return text

    @staticmethod
    def _glued(text: str, start: int, end: int) -> str:
        while start > 0 and text[start - 1].isalpha():
            start -= 1
        while end < len(text) and text[end].isalpha():
            end += 1
        return text[start:end]
