"""Fixtures shared by the pipeline tests (tests/pipeline/): a 20-person release and a tiny model injected with it.

Import them into a test module (``from pipeline_fixtures import release, injected``); session-scoped, so every
pipeline test module reuses the same release and model.
"""

from __future__ import annotations

import pytest

from entity_unlearn.cli import main
from entity_unlearn.pipeline.finetune import TrainConfig
from entity_unlearn.pipeline.inject import inject_tiny, release_texts
from entity_unlearn.pipeline.tiny import TinyConfig, train_tokenizer

SMALL = TinyConfig(vocab_size=1000, hidden_size=64, intermediate_size=192)
# The tiny preset (lr 3e-4, 5 epochs) is sized for the default release's 10 forget persons (55 steps);
# the test release's 2 forget persons give 15 steps, so the test takes a larger step.
FAST_UNLEARN = {"lr": 1e-3}


@pytest.fixture(scope="session")
def release(tmp_path_factory):
    out = tmp_path_factory.mktemp("release") / "entity-unlearn"
    assert main(["build", "--entities", "20", "--seed", "1", "--version", "1.0.0", "--out", str(out), "--quiet"]) == 0
    return str(out)


@pytest.fixture(scope="session")
def injected(release, tmp_path_factory):
    tok = train_tokenizer(release_texts(release))
    return str(inject_tiny(release, tmp_path_factory.mktemp("models") / "target", tokenizer=tok, tiny=SMALL, train=TrainConfig(epochs=25)))
