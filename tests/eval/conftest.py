"""Shared by the eval tests: a 20-person release, tiny models trained on it, and their evaluations.

Session-scoped, so the golden-file test reads the same evaluations as the end-to-end tests at no extra cost.
Everything is built deterministically from seeds (the golden files depend on it).
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from entity_unlearn.cli import main
from entity_unlearn.eval import EvalConfig, evaluate
from entity_unlearn.pipeline.finetune import TrainConfig
from entity_unlearn.pipeline.inject import inject_tiny, release_texts
from entity_unlearn.pipeline.tiny import TinyConfig, train_tokenizer

EPOCHS = 25
SMALL = TinyConfig(vocab_size=1000, hidden_size=64, intermediate_size=192)


@pytest.fixture(scope="session")
def release(tmp_path_factory):
    out = tmp_path_factory.mktemp("release") / "entity-unlearn"
    assert main(["build", "--entities", "20", "--seed", "0", "--version", "1.0.0", "--out", str(out), "--quiet"]) == 0
    return str(out)


@pytest.fixture(scope="session")
def models(release, tmp_path_factory):
    """A model trained on everything, a reference without forget05, and a second reference with another seed."""
    tok = train_tokenizer(release_texts(release))
    d = tmp_path_factory.mktemp("models")
    return {
        "target": str(inject_tiny(release, d / "target", tokenizer=tok, tiny=SMALL, train=TrainConfig(epochs=EPOCHS))),
        "ref": str(inject_tiny(release, d / "ref", exclude="forget05", tokenizer=tok, tiny=SMALL, train=TrainConfig(epochs=EPOCHS))),
        "ref2": str(
            inject_tiny(release, d / "ref2", exclude="forget05", tokenizer=tok, tiny=replace(SMALL, seed=1), train=TrainConfig(epochs=EPOCHS, seed=1))
        ),
    }


@pytest.fixture(scope="session")
def results(release, models, tmp_path_factory):
    d = tmp_path_factory.mktemp("results")
    ref = evaluate(EvalConfig(models["ref"], release, "forget05", str(d / "ref"), progress=False))
    target = evaluate(EvalConfig(models["target"], release, "forget05", str(d / "target"), reference=str(d / "ref"), progress=False))
    ref2 = evaluate(EvalConfig(models["ref2"], release, "forget05", str(d / "ref2"), reference=str(d / "ref"), progress=False))
    return {"ref": ref, "target": target, "ref2": ref2, "dir": d}
