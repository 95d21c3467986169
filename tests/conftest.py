"""Shared test set-up: offline Hugging Face libraries with a fresh cache, and small worlds."""

from __future__ import annotations

from pathlib import Path

import pytest

from entity_unlearn.builders import default_registry, generate_world

FIXTURES = Path(__file__).parent / "fixtures"
SMALL = {"person": 40, "organisation": 8, "place": 6}


@pytest.fixture(autouse=True)
def offline_hf(monkeypatch, tmp_path_factory):
    """No test may reach the Hub or reuse a stale cache (Hugging Face's or our file-hash cache)."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path_factory.mktemp("hf_home")))
    monkeypatch.setenv("ENTITY_UNLEARN_CACHE", str(tmp_path_factory.mktemp("eu_cache")))


@pytest.fixture(scope="session")
def small_world():
    return generate_world(SMALL, seed=0)


@pytest.fixture(scope="session")
def band_registry():
    return default_registry((FIXTURES / "band" / "band.toml",))


@pytest.fixture(scope="session")
def tiny_release(tmp_path_factory) -> Path:
    """The smallest release (10 training persons), built once for every test that only needs one to exist."""
    from entity_unlearn.cli import main

    folder = tmp_path_factory.mktemp("tiny_release") / "release"
    assert main(["build", "--entities", "10", "--seed", "0", "--version", "1.0.0", "--out", str(folder), "--quiet"]) == 0
    return folder


@pytest.fixture(scope="session")
def tiny_model(tiny_release, tmp_path_factory) -> Path:
    """An untrained 2-layer model (hidden 32) with a tokenizer trained on ``tiny_release``: loads and scores in a blink."""
    from entity_unlearn.pipeline.inject import release_texts
    from entity_unlearn.pipeline.tiny import TinyConfig, build_model, save, train_tokenizer

    tok = train_tokenizer(release_texts(str(tiny_release)), 300)
    return save(
        build_model(tok, TinyConfig(vocab_size=300, hidden_size=32, intermediate_size=64)), tok, tmp_path_factory.mktemp("tiny_model") / "model"
    )
