"""ROUGE-L recall of many (reference, generation) pairs: ``rouge_score``'s numbers, computed once per text.

TOFU's ROUGE is ``rouge_score.RougeScorer(["rougeL"], use_stemmer=True)``: both texts tokenised by its
``DefaultTokenizer`` (lower case, non-alphanumerics to spaces, Porter stems of words over three letters),
recall = |LCS(reference, generation)| / |reference tokens| (0 when either is empty). ``RougeScorer.score``
tokenises both texts on every call and fills an |r| x |g| table in Python; an evaluation asks for the same
generation against two references (answer and short answer), the same reference against many generations, and
a generation of 200 tokens costs 200 stems and a table of thousands of cells each time.

``Rouge`` tokenises each distinct text once with the same tokenizer (its stems memoised per word: the stemmer
is a pure function of the word) and takes the LCS length from the bit-parallel recurrence of Allison & Dix
(1986) in Hyyrö's form (2004, "Bit-parallel LCS-length computation revisited"): one big-integer step per
generation token instead of a table row. The length is an integer, so every recall is the same float
``rouge_score`` returns (``tests/eval/test_rouge.py`` compares them).
"""

from __future__ import annotations

from collections.abc import Sequence


class Rouge:
    """ROUGE-L recall as ``rouge_score`` computes it (stemming on), with tokenisations and stems memoised."""

    def __init__(self) -> None:
        from nltk.stem import porter
        from rouge_score import tokenize

        self._tokenize, self._stemmer = tokenize, porter.PorterStemmer()
        self._stems: dict[str, str] = {}
        self._tokens: dict[str, tuple[str, ...]] = {}
        self._masks: dict[str, dict[str, int]] = {}

    def tokens(self, text: str) -> tuple[str, ...]:
        """``rouge_score``'s tokens of ``text`` (``tokenize.tokenize`` with the Porter stemmer)."""
        found = self._tokens.get(text)
        if found is None:
            found = self._tokens[text] = tuple(self._tokenize.tokenize(text, self))
        return found

    def stem(self, word: str) -> str:
        """The stemmer ``tokenize`` calls, memoised (the tokenizer passes itself no other state)."""
        found = self._stems.get(word)
        if found is None:
            found = self._stems[word] = self._stemmer.stem(word)
        return found

    def recall(self, reference: str, generation: str) -> float:
        """|LCS| / |reference tokens|, or 0 when either text has no tokens (``rouge_score``'s ``_score_lcs``)."""
        ref, gen = self.tokens(reference), self.tokens(generation)
        if not ref or not gen:
            return 0  # rouge_score's own value: an int 0
        return lcs_length(ref, gen, self._positions(reference, ref)) / len(ref)

    def _positions(self, text: str, ref: Sequence[str]) -> dict[str, int]:
        masks = self._masks.get(text)
        if masks is None:
            masks = self._masks[text] = {}
            for j, token in enumerate(ref):
                masks[token] = masks.get(token, 0) | (1 << j)
        return masks


def lcs_length(ref: Sequence[str], gen: Sequence[str], masks: dict[str, int] | None = None) -> int:
    """Length of the longest common subsequence of two token sequences (bit-parallel, Hyyrö 2004).

    Bit j of ``v`` is 0 where row ``j`` of the LCS table grows; for each token ``c`` of ``gen`` with ``m`` the
    positions of ``c`` in ``ref``: u = v & m, v = (v + u) | (v - u). The length is the count of zero bits
    among the |ref| low bits. ``masks``: token -> bitmask of its positions in ``ref`` (computed when None)."""
    if masks is None:
        masks = {}
        for j, token in enumerate(ref):
            masks[token] = masks.get(token, 0) | (1 << j)
    full = (1 << len(ref)) - 1
    v = full
    for token in gen:
        m = masks.get(token)
        if m:
            u = v & m
            v = ((v + u) | (v - u)) & full
    return len(ref) - v.bit_count()
