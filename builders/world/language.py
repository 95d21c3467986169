"""English word forms for the templates, done by ``inflect`` (articles, plurals, ordinals, number words).

Registered as Jinja filters on every ``Templates`` environment: ``{{ occupation | a }}`` -> "an architect",
``{{ "novel" | plural(n) }}``, ``{{ 3 | ordinal }}`` -> "3rd", ``{{ 3 | words }}`` -> "three",
``{{ name | pos }}`` -> "Anna Berg's", ``{{ name | the }}`` -> "the University of X" for institution names.
inflect is imported on first use (it takes about 2 s) and every call is cached: the arguments come from
small vocabularies, so a world costs a few thousand calls at most.
"""

from __future__ import annotations

from functools import cache, lru_cache

# Last words of organisation names that are plural nouns: their possessive is a bare apostrophe.
PLURAL_SUFFIXES = frozenset({"Industries", "Works", "Holdings", "Laboratories", "Systems", "Instruments", "Partners", "Brothers"})


@cache
def _engine():
    """The inflect engine, imported without typeguard's instrumentation.

    inflect 7 decorates its methods with ``typeguard.typechecked``, which recompiles them at import (about 2 s)
    and checks argument types on every call; typeguard documents the decorator as a debugging aid that is a
    no-op under ``python -O``. We make it one here too, only while inflect is imported.
    """
    import typeguard

    checked = typeguard.typechecked
    typeguard.typechecked = lambda target=None, **_: target if target is not None else (lambda t: t)
    try:
        import inflect
    finally:
        typeguard.typechecked = checked
    return inflect.engine()


@lru_cache(maxsize=65536)
def article(phrase: str) -> str:
    """``"architect"`` -> ``"an architect"``; a number is read as words first ("an 18-year-old", "an 8th")."""
    head = phrase.split()[0] if phrase.split() else phrase
    if head[:1].isdigit():
        digits = "".join(c for c in head if c.isdigit())
        word = _engine().number_to_words(digits, andword="")
        return f"{_engine().a(word).split()[0]} {phrase}"
    return _engine().a(phrase)


@lru_cache(maxsize=65536)
def plural(noun: str, count: int | str | None = None) -> str:
    """``"novel"`` -> ``"novels"``; with a count of 1 the noun stays singular. Only for common nouns."""
    if count is not None and int(count) == 1:
        return noun
    words = noun.split()
    return " ".join(words[:-1] + [_engine().plural_noun(words[-1])]) if words else noun


@lru_cache(maxsize=4096)
def ordinal(n: int | str) -> str:
    return _engine().ordinal(int(n))


@lru_cache(maxsize=4096)
def words(n: int | str) -> str:
    """``3`` -> ``"three"`` (numbers up to ten as words, larger ones as digits, as style guides do)."""
    n = int(n)
    return _engine().number_to_words(n) if 0 <= n <= 10 else f"{n:,}"


def possessive(name: str) -> str:
    """``"Anna Berg"`` -> ``"Anna Berg's"``, ``"James"`` -> ``"James's"``, ``"Tarvo Industries"`` -> ``"Tarvo Industries'"``."""
    return name + "'" if name.split()[-1:] and name.split()[-1] in PLURAL_SUFFIXES else name + "'s"


def definite(name: str) -> str:
    """A proper name with the article it takes in running text: "the University of X", but "X College"."""
    first = name.split()[0] if name.split() else ""
    if first in ("the", "The"):
        return name
    if " of " in name and first in ("University", "Institute", "College", "Academy", "Order", "Bank"):
        return "the " + name
    return name


def capitalise(text: str) -> str:
    """First letter up, the rest untouched ("the Kessel Pavilion" -> "The Kessel Pavilion")."""
    return text[:1].upper() + text[1:]


FILTERS = {"a": article, "plural": plural, "ordinal": ordinal, "words": words, "pos": possessive, "the": definite, "cap": capitalise}
