"""Shared test set-up: offline Hugging Face libraries with a fresh cache, small worlds, and how the suite is shared
out over processes (``make test`` runs ``pytest -n auto --dist loadgroup``, pytest-xdist).

A module's tests run in one process, so its module fixtures are built once; the modules that share a costly
session fixture (trained tiny models) form one group (``FAMILIES``) and run in one process too. Each process
keeps torch to one thread, so that two processes on two cores do not fight over them.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from entity_unlearn.builders import default_registry, generate_world

FIXTURES = Path(__file__).parent / "fixtures"
# Modules sharing trained models (session fixtures): one group each, so the models are trained once.
FAMILIES = {
    "tests/eval/test_eval.py": "eval-models",
    "tests/eval/test_golden.py": "eval-models",
    "tests/eval/test_identity.py": "eval-models",
    "tests/eval/test_result_file.py": "eval-models",
    "tests/eval/test_lmeval_export.py": "eval-models",
    "tests/pipeline/test_pipeline.py": "pipeline-models",
    "tests/pipeline/test_compat.py": "pipeline-models",
    "tests/pipeline/test_checkpoint_safety.py": "pipeline-models",
}
SMALL = {"person": 40, "organisation": 8, "place": 6}


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the groups
def pytest_collection_modifyitems(items) -> None:
    for item in items:
        if not item.get_closest_marker("xdist_group"):
            module = item.nodeid.split("::")[0]
            item.add_marker(pytest.mark.xdist_group(FAMILIES.get(module, module)))


def pytest_configure(config) -> None:
    if os.environ.get("PYTEST_XDIST_WORKER"):  # one of several processes: one torch thread each
        os.environ.setdefault("OMP_NUM_THREADS", "1")
        import torch

        torch.set_num_threads(1)


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
