"""Which names are real: the block lists a generated name is checked against.

- ``real_names.txt`` (kept by hand) and ``real_words.txt`` (every Faker given name, surname, city and
  country): a *constructed* word (a place, country, organisation or title word) may not be one of them.
- ``notable_hashes.txt``: hashes of the names of Pantheon 1.0's famous people (full names, first + last
  words, mononyms) and their birth cities; no full person name and no constructed word may hash into it.

Names are compared after ``normalise`` (accents stripped, case folded, spaces collapsed). This module has
no package imports so that ``scripts/extract_names.py`` shares its normalisation and hash.
"""

from __future__ import annotations

import hashlib
import unicodedata
from functools import cache
from pathlib import Path

VOCAB_DIR = Path(__file__).resolve().parents[1] / "vocab"


def normalise(name: str) -> str:
    """``"Émile  Zola"`` -> ``"emile zola"``: NFKD without combining marks, case-folded, single spaces."""
    text = "".join(c for c in unicodedata.normalize("NFKD", name) if not unicodedata.combining(c))
    return " ".join(text.casefold().replace("-", " ").split())


def name_hash(name: str) -> str:
    """16 hex digits of BLAKE2b over the normalised name."""
    return hashlib.blake2b(normalise(name).encode("utf-8"), digest_size=8).hexdigest()


def _lines(name: str) -> list[str]:
    path = VOCAB_DIR / name
    if not path.is_file():
        return []
    return [x.strip() for x in path.read_text(encoding="utf-8").splitlines() if x.strip() and not x.startswith("#")]


@cache
def real_words() -> frozenset[str]:
    """Normalised real single words: the hand list plus every Faker name and place."""
    return frozenset(normalise(w) for w in _lines("real_names.txt")) | frozenset(_lines("real_words.txt"))


@cache
def notable_hashes() -> frozenset[str]:
    return frozenset(_lines("notable_hashes.txt"))


def is_real_word(word: str) -> bool:
    """True for a real name, place or famous mononym (``Tito``, ``Salford``, ``Homer``)."""
    w = normalise(word)
    return w in real_words() or name_hash(w) in notable_hashes()


def is_notable(full_name: str) -> bool:
    """True when a person's full name, or its first and last words, name a famous person (``Emma Stone``)."""
    words = normalise(full_name).split()
    if not words:
        return False
    if name_hash(" ".join(words)) in notable_hashes():
        return True
    return len(words) > 2 and name_hash(f"{words[0]} {words[-1]}") in notable_hashes()
