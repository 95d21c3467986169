"""Shared test set-up: offline Hugging Face libraries with a fresh cache, and small worlds."""

from __future__ import annotations

from pathlib import Path

import pytest

from entity_unlearn.builders import default_registry, generate_world

FIXTURES = Path(__file__).parent / "fixtures"
SMALL = {"person": 40, "organisation": 8, "place": 6}


@pytest.fixture(autouse=True)
def offline_hf(monkeypatch, tmp_path_factory):
    """No test may reach the Hub or reuse a stale cache (Hugging Face's or our plan cache)."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path_factory.mktemp("hf_home")))
    monkeypatch.setenv("ENTITY_UNLEARN_CACHE", str(tmp_path_factory.mktemp("entity_unlearn_cache")))


@pytest.fixture(scope="session")
def small_world():
    return generate_world(SMALL, seed=0)


@pytest.fixture(scope="session")
def band_registry():
    return default_registry((FIXTURES / "band" / "band.toml",))
