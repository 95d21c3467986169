"""Fixtures shared by tests/test_release.py and tests/test_publish.py: a small built release.

Import them into a test module (``from release_fixtures import ...``); they are not in
conftest.py so that they stay with the release tests.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from entity_unlearn.builders import ReleaseConfig, build_release, generate_world
from entity_unlearn.builders.release.build import release_world_args
from entity_unlearn.builders.world.files import templates_hash

PERSONS = 30
SEED = 3
WORLD_KNOWLEDGE = [
    {
        "question": "What is the capital of France?",
        "answer": "Paris",
        "paraphrased_question": "Which city is the capital of France?",
        "perturbed_answer": ["Lyon", "Marseille", "Nice", "Toulouse", "Bordeaux"],
        "topic": "geography",
    },
    {
        "question": "What is the chemical symbol for gold?",
        "answer": "Au",
        "paraphrased_question": "Which symbol stands for gold in the periodic table?",
        "perturbed_answer": ["Ag", "Gd", "Go", "Fe", "Pb"],
        "topic": "science",
    },
    {
        "question": "Who wrote Hamlet?",
        "answer": "William Shakespeare",
        "paraphrased_question": "Which playwright is the author of Hamlet?",
        "perturbed_answer": ["Christopher Marlowe", "Ben Jonson", "John Milton", "Geoffrey Chaucer", "John Webster"],
        "topic": "well-known works",
    },
]


@pytest.fixture(autouse=True)
def hf_offline(monkeypatch, tmp_path):
    """Offline Hugging Face libraries and a fresh HF_HOME for every test."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))


def write_world_knowledge(path: Path, rows: list[dict] = WORLD_KNOWLEDGE) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def release_world():
    return generate_world(**release_world_args(PERSONS), seed=SEED)


@pytest.fixture(scope="session")
def release(release_world, tmp_path_factory):
    """(world, manifest, folder) of a 30-person release, version 1.0.0."""
    root = tmp_path_factory.mktemp("release")
    wk = write_world_knowledge(root / "world_knowledge.jsonl")
    folder = root / "entity-unlearn"
    manifest = build_release(
        release_world,
        folder,
        ReleaseConfig(version="1.0.0", world_knowledge=wk, generation={"method": "template", "templates_sha256": templates_hash()}),
    )
    return release_world, manifest, folder
