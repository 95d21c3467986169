"""Real-world knowledge questions (``builders/vocab/world_knowledge.jsonl``).

One JSON object per line with the keys ``question``, ``answer`` (short),
``paraphrased_question``, ``perturbed_answer`` (a list of K short wrong answers)
and ``topic``, and optionally a unique ``id`` (it becomes the row's ``probe_id``). They measure that general knowledge survives unlearning; the
release exports them as the ``world`` config.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from entity_unlearn.errors import EntityUnlearnError

WORLD_KNOWLEDGE_FILE = Path(__file__).resolve().parents[1] / "vocab" / "world_knowledge.jsonl"
KEYS = ("answer", "paraphrased_question", "perturbed_answer", "question", "topic")
OPTIONAL = ("id",)


class WorldKnowledgeError(EntityUnlearnError, ValueError):
    """The world-knowledge file is missing or a line breaks the format; the message names file and line."""


@dataclass(frozen=True)
class WorldQuestion:
    question: str
    answer: str
    paraphrased_question: str
    perturbed_answer: tuple[str, ...]
    topic: str
    item_id: str | None = None


def read_world_knowledge(path: str | Path = WORLD_KNOWLEDGE_FILE, k: int = 5) -> tuple[WorldQuestion, ...]:
    """Every question of ``path``, validated.

    Contract: keys ``KEYS`` plus optionally ``OPTIONAL``; ids unique; every text non-empty; ``k`` wrong answers,
    distinct from each other and from the answer (case-insensitive); questions
    unique. Raises WorldKnowledgeError naming the file and line otherwise.
    """
    path = Path(path)
    if not path.is_file():
        raise WorldKnowledgeError(
            f"{path}: world-knowledge file not found; write it (one JSON object per line with keys {', '.join(KEYS)}) or pass --world-knowledge FILE"
        )
    out, seen, ids = [], set(), set()
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        where = f"{path}:{n}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise WorldKnowledgeError(f"{where}: not JSON ({exc.msg})") from exc
        if not isinstance(row, dict) or tuple(sorted(k for k in row if k not in OPTIONAL)) != KEYS:
            raise WorldKnowledgeError(f"{where}: keys must be exactly {', '.join(KEYS)} (and optionally {', '.join(OPTIONAL)})")
        item_id = row.get("id")
        if item_id is not None and (not isinstance(item_id, str) or not item_id.strip() or item_id in ids):
            raise WorldKnowledgeError(f"{where}: id {item_id!r} must be a non-empty string used once")
        ids.add(item_id)
        texts = [row[k] for k in ("question", "answer", "paraphrased_question", "topic")]
        wrong = row["perturbed_answer"]
        if not all(isinstance(t, str) and t.strip() for t in texts):
            raise WorldKnowledgeError(f"{where}: question, answer, paraphrased_question and topic must be non-empty strings")
        if not isinstance(wrong, list) or len(wrong) != k or not all(isinstance(w, str) and w.strip() for w in wrong):
            raise WorldKnowledgeError(f"{where}: perturbed_answer must be a list of {k} non-empty strings")
        folded = [w.strip().casefold() for w in wrong]
        if len(set(folded)) != k or row["answer"].strip().casefold() in folded:
            raise WorldKnowledgeError(f"{where}: perturbed answers must differ from each other and from the answer {row['answer']!r}")
        if row["question"] in seen:
            raise WorldKnowledgeError(f"{where}: duplicate question {row['question']!r}")
        seen.add(row["question"])
        out.append(WorldQuestion(row["question"], row["answer"], row["paraphrased_question"], tuple(wrong), row["topic"], item_id))
    if not out:
        raise WorldKnowledgeError(f"{path}: no questions")
    return tuple(out)
