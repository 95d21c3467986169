"""Text helpers the checks share: tokens, whole-token phrase search, masking of fact values.

A phrase "occurs" in a text when its lower-cased tokens (runs of word characters, and single
punctuation marks) appear there contiguously: "1945" occurs in "October 16, 1945" but not in
"19450", "Port Sautis" not in "Port Sautisville".
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from functools import lru_cache
from itertools import compress, count

TOKEN = re.compile(r"\w+|[^\w\s]")
DIGITS = re.compile(r"\d[\d,.]*\d|\d")
SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"'(])")


@lru_cache(maxsize=1 << 18)
def tokens(text: str) -> tuple[str, ...]:
    """Lower-cased word and punctuation tokens (cached: the checks tokenise the same texts many times)."""
    return tuple(TOKEN.findall(text.lower()))


def contains(haystack: tuple[str, ...], needle: tuple[str, ...]) -> bool:
    """``needle`` occurs contiguously in ``haystack`` (both token tuples)."""
    n = len(needle)
    if n == 0 or n > len(haystack):
        return False
    first, last = needle[0], len(haystack) - n + 1
    i = -1
    while True:  # each occurrence of the first token, found by tuple.index in C
        try:
            i = haystack.index(first, i + 1, last)
        except ValueError:
            return False
        if haystack[i : i + n] == needle:
            return True


class PhraseFinder:
    """Finds which of a fixed set of phrases occur in token sequences, in one pass per sequence.

    Phrases are indexed by first token and length, so a scan costs a dictionary look-up per
    token plus one slice per candidate length: fast enough for every option of a release
    against all of its training text.
    """

    def __init__(self, phrases: Iterable[tuple[str, ...]]) -> None:
        self.phrases = {p for p in phrases if p}
        lengths: dict[str, set[int]] = defaultdict(set)
        for p in self.phrases:
            lengths[p[0]].add(len(p))
        self.lengths = {k: sorted(v) for k, v in lengths.items()}

    def scan(self, toks: tuple[str, ...]) -> Iterator[tuple[str, ...]]:
        """Every occurrence (with repeats) of a phrase in ``toks``."""
        lengths, phrases = self.lengths, self.phrases
        for i in compress(count(), map(lengths.__contains__, toks)):  # positions where a phrase may start, found in C
            for n in lengths[toks[i]]:
                cand = toks[i : i + n]
                if cand in phrases:
                    yield cand

    def count(self, texts: Iterable[str]) -> Counter:
        """Phrase -> number of occurrences over ``texts``."""
        out: Counter = Counter()
        for text in texts:
            out.update(self.scan(tokens(text)))
        return out


def mask(text: str, values: Iterable[str], placeholder: str = "<V>") -> str:
    """``text`` with each of ``values`` (longest first) replaced by ``placeholder`` and numbers by ``<N>``.

    Two sentences that differ only in names, fact values and numbers mask to the same form.
    """
    for v in sorted({v for v in values if v}, key=len, reverse=True):
        text = text.replace(v, placeholder)
    return DIGITS.sub("<N>", text)


def sentences(text: str) -> list[str]:
    """A text cut into sentences at ``.``, ``!`` or ``?`` followed by space and a capital or quote."""
    return [s.strip() for s in SENTENCE_END.split(text.strip()) if s.strip()]
