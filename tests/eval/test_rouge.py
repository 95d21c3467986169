"""ROUGE-L recall equals rouge_score's on every pair, memoised tokenisation and bit-parallel LCS alike."""

from __future__ import annotations

import random

import pytest
from rouge_score import rouge_scorer
from rouge_score.rouge_scorer import _lcs_table

from entity_unlearn.eval.rouge import Rouge, lcs_length

WORDS = ["the", "author", "was", "born", "in", "Lisbon", "Lisbon's", "running", "runs", "1984", "novels", "wrote", "a", "of", "Élodie", "-", "\n"]


def _text(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


def test_lcs_length_equals_the_table_on_random_sequences():
    rng = random.Random(0)
    for _ in range(2000):
        a = [rng.choice("abcde") for _ in range(rng.randint(0, 30))]
        b = [rng.choice("abcdef") for _ in range(rng.randint(0, 90))]
        expected = _lcs_table(a, b)[-1][-1] if a and b else 0
        assert lcs_length(a, b) == expected, (a, b)


@pytest.mark.parametrize(
    "reference,generation",
    [
        ("Lisbon", "She was born in Lisbon."),
        ("The author was born in Lisbon in 1984.", "The author was born in Porto in 1984, and wrote novels."),
        ("running", "runs"),  # equal after stemming
        ("", "anything"),
        ("something", ""),
        ("!!!", "???"),
        ("Élodie wrote novels", "élodie WROTE\nnovels"),
    ],
)
def test_recall_equals_rouge_score(reference, generation):
    expected = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True).score(reference, generation)["rougeL"].recall
    got = Rouge().recall(reference, generation)
    assert got == expected and type(got) is type(expected)


def test_recall_equals_rouge_score_on_random_texts_with_shared_memo():
    rng = random.Random(1)
    scorer, rouge = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True), Rouge()
    refs = [_text(rng, rng.randint(0, 15)) for _ in range(30)]
    for _ in range(600):
        ref, gen = rng.choice(refs), _text(rng, rng.randint(0, 200))
        assert rouge.recall(ref, gen) == scorer.score(ref, gen)["rougeL"].recall
