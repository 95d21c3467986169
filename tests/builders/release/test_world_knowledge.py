"""Sanity checks for the world-knowledge retention set (builders/vocab/world_knowledge.jsonl)."""

import json
from collections import Counter
from pathlib import Path

import pytest

import entity_unlearn.builders

WK_PATH = Path(entity_unlearn.builders.__file__).parent / "vocab" / "world_knowledge.jsonl"
KEYS = ["id", "topic", "question", "paraphrased_question", "answer", "perturbed_answer"]
STRING_KEYS = ["id", "topic", "question", "paraphrased_question", "answer"]
TOPICS = {"geography", "science", "history", "works", "general"}


def _norm(s: str) -> str:
    return s.strip().casefold()


@pytest.fixture(scope="module")
def rows():
    assert WK_PATH.is_file(), f"missing {WK_PATH}"
    out = []
    with WK_PATH.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            row = json.loads(line)
            assert isinstance(row, dict), f"line {lineno} is not a JSON object"
            out.append(row)
    return out


def test_row_count(rows):
    assert len(rows) >= 150


def test_keys_and_string_fields(rows):
    for row in rows:
        assert list(row) == KEYS, f"{row.get('id')}: keys {list(row)}"
        for key in STRING_KEYS:
            value = row[key]
            assert isinstance(value, str) and value.strip(), f"{row.get('id')}: empty {key}"


def test_ids_unique(rows):
    dupes = [k for k, n in Counter(r["id"] for r in rows).items() if n > 1]
    assert not dupes, f"duplicate ids: {dupes}"


def test_questions_unique(rows):
    dupes = [k for k, n in Counter(_norm(r["question"]) for r in rows).items() if n > 1]
    assert not dupes, f"duplicate questions: {dupes}"


def test_perturbed_answers(rows):
    for row in rows:
        wrong = row["perturbed_answer"]
        assert isinstance(wrong, list) and len(wrong) == 5, f"{row['id']}: need exactly 5 perturbed answers"
        for w in wrong:
            assert isinstance(w, str) and w.strip(), f"{row['id']}: empty perturbed answer"
        normed = [_norm(w) for w in wrong]
        assert len(set(normed)) == 5, f"{row['id']}: perturbed answers not distinct"
        assert _norm(row["answer"]) not in normed, f"{row['id']}: answer among perturbed answers"


def test_answer_not_in_question(rows):
    for row in rows:
        answer = _norm(row["answer"])
        assert answer not in row["question"].casefold(), f"{row['id']}: answer leaks into question"
        assert answer not in row["paraphrased_question"].casefold(), f"{row['id']}: answer leaks into paraphrased question"


def test_topics(rows):
    counts = Counter(r["topic"] for r in rows)
    assert set(counts) <= TOPICS, f"unknown topics: {set(counts) - TOPICS}"
    for topic in TOPICS:
        assert counts[topic] >= 20, f"topic {topic} has only {counts[topic]} rows"
