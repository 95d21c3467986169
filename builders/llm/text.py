"""Text as the checks compare it: Unicode normalised, and the negation and hedge words they refuse.

``normalize`` is applied to every LLM answer before it is checked or stored: NFKC
(compatibility forms such as the no-break space or full-width letters become their
plain form), format characters (zero-width spaces and joiners, soft hyphens, bidi
marks: Unicode category Cf) removed, and every run of whitespace collapsed to one
space. An answer that reads like the truth then compares equal to it.

``negations`` finds the words of ``vocab/negations.txt`` (data, in the prompts'
language) in a text: an answer that states a fact must not deny or hedge it.
"""

from __future__ import annotations

import re
import unicodedata
from functools import cache
from pathlib import Path

NEGATIONS_FILE = Path(__file__).resolve().parents[1] / "vocab" / "negations.txt"


def normalize(text: str) -> str:
    """NFKC, format characters removed, whitespace collapsed and stripped."""
    text = unicodedata.normalize("NFKC", text)
    text = "".join(c for c in text if unicodedata.category(c) != "Cf")
    return " ".join(text.split())


def normalize_paragraphs(text: str) -> str:
    """``normalize`` within each paragraph (paragraphs are separated by a blank line, which is kept)."""
    return "\n\n".join(p for p in (normalize(p) for p in re.split(r"\n\s*\n", text)) if p)


def same(a: str, b: str) -> bool:
    """Whether two answers read the same: equal after ``normalize`` and case folding."""
    return normalize(a).casefold() == normalize(b).casefold()


@cache
def _negation_pattern(path: Path = NEGATIONS_FILE) -> re.Pattern:
    entries = [x.strip() for x in path.read_text(encoding="utf-8").splitlines() if x.strip() and not x.lstrip().startswith("#")]
    parts = []
    for entry in entries:
        body = r"\s+".join(re.escape(w).replace(r"\?", "?") for w in entry.split())
        parts.append(body if entry.startswith("n't") else rf"(?<![\w']){body}")
    return re.compile(rf"(?:{'|'.join(parts)})(?![\w'])", re.IGNORECASE)


def negations(text: str) -> list[str]:
    """The negation and hedge words of ``vocab/negations.txt`` that ``text`` contains, in order, each once."""
    found = [m.group().lower() for m in _negation_pattern().finditer(normalize(text).replace("’", "'"))]
    return list(dict.fromkeys(found))
