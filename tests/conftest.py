"""Shared test set-up: offline Hugging Face libraries with a fresh cache, small worlds, and how the suite is shared
out over processes (``make test`` runs ``pytest -n auto --dist loadgroup``, pytest-xdist).

A module's tests run in one process, so its module fixtures are built once; the modules that share a costly
session fixture (evaluations of trained tiny models) form one group (``FAMILIES``) and run in one process too.
The trained models themselves are built once per run whichever process asks (``lab_models``, tests/built_once.py).
Groups are handed out costliest first (``COSTLIEST``), so that the short ones fill in at the end and the processes
finish together. Each process keeps torch to one thread, so that two processes on two cores do not fight over them.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import lab_recipe
import pytest
from built_once import build_once, shared_root

from entity_unlearn.builders import default_registry, generate_world

FIXTURES = Path(__file__).parent / "fixtures"
# Modules sharing evaluations of the lab's models (the session fixture ``results``): one group, so they run once.
FAMILIES = {
    "tests/eval/test_eval.py": "eval-models",
    "tests/eval/test_golden.py": "eval-models",
    "tests/eval/test_result_file.py": "eval-models",
    "tests/eval/test_lmeval_export.py": "eval-models",
}
# The costliest groups, costliest first (module set-ups and studies of 150-515 s each on a loaded 2-core machine).
COSTLIEST = (
    "tests/pipeline/test_attack.py",
    "eval-models",
    "tests/pipeline/test_pipeline.py",
    "tests/eval/hub/test_queue.py",
)
SMALL = {"person": 40, "organisation": 8, "place": 6}


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the groups
def pytest_collection_modifyitems(items) -> None:
    groups = {}
    for item in items:
        if not item.get_closest_marker("xdist_group"):
            module = item.nodeid.split("::")[0]
            item.add_marker(pytest.mark.xdist_group(FAMILIES.get(module, module)))
        marker = item.get_closest_marker("xdist_group")
        groups[item.nodeid] = marker.args[0] if marker.args else marker.kwargs["name"]
    rank = {group: i for i, group in enumerate(COSTLIEST)}
    items.sort(key=lambda item: rank.get(groups[item.nodeid], len(rank)))  # stable: each module keeps its order


def pytest_configure(config) -> None:
    if hasattr(config.option, "loadscopereorder"):
        config.option.loadscopereorder = False  # pytest-xdist would hand out the groups with the most tests first
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
    """The smallest release (10 training persons), built once in this run for every test that only needs one to exist."""
    from entity_unlearn.cli import main

    def build(folder: Path) -> None:
        assert main(["build", "--entities", "10", "--seed", "0", "--version", "1.0.0", "--out", str(folder / "release"), "--quiet"]) == 0

    return build_once(shared_root(tmp_path_factory), {"tiny_release": build})["tiny_release"] / "release"


@pytest.fixture(scope="session")
def lab_release(tmp_path_factory) -> str:
    """The release the eval, pipeline and attack tests share (tests/lab_recipe.py), built once in this run."""
    folder = build_once(shared_root(tmp_path_factory), {"release": lab_recipe.build_release})["release"]
    return str(folder / lab_recipe.RELEASE)


@pytest.fixture(scope="session")
def lab_models(lab_release, tmp_path_factory):
    """``lab_models("target", "ref")`` -> {name: model folder}: tiny models trained on ``lab_release`` (tests/lab_recipe.py),
    each trained once in this run by whichever process asks first."""
    root = shared_root(tmp_path_factory)
    builds = {name: functools.partial(lab_recipe.build_model, lab_release, name) for name in lab_recipe.MODELS}
    return lambda *names: {name: str(folder) for name, folder in build_once(root, {n: builds[n] for n in names}).items()}


@pytest.fixture(scope="session")
def tiny_model(tiny_release, tmp_path_factory) -> Path:
    """An untrained 2-layer model (hidden 32) with a tokenizer trained on ``tiny_release``: loads and scores in a blink."""
    from entity_unlearn.pipeline.inject import release_texts
    from entity_unlearn.pipeline.tiny import TinyConfig, build_model, save, train_tokenizer

    tok = train_tokenizer(release_texts(str(tiny_release)), 300)
    return save(
        build_model(tok, TinyConfig(vocab_size=300, hidden_size=32, intermediate_size=64)), tok, tmp_path_factory.mktemp("tiny_model") / "model"
    )
