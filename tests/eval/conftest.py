"""Shared by the eval tests: the lab's release and tiny models (tests/lab_recipe.py) and their evaluations.

Session-scoped, so the golden-file test reads the same evaluations as the end-to-end tests at no extra cost.
Everything is built deterministically from seeds (the golden files depend on it).
"""

from __future__ import annotations

import pytest

from entity_unlearn.eval import EvalConfig, evaluate


@pytest.fixture(scope="session")
def release(lab_release):
    return lab_release


@pytest.fixture(scope="session")
def models(lab_models):
    """A model trained on everything, a reference without forget05, and a second reference with another seed."""
    return lab_models("target", "ref", "ref2")


@pytest.fixture(scope="session")
def results(release, models, tmp_path_factory):
    d = tmp_path_factory.mktemp("results")
    ref = evaluate(EvalConfig(models["ref"], release, "forget05", str(d / "ref"), progress=False))
    target = evaluate(EvalConfig(models["target"], release, "forget05", str(d / "target"), reference=str(d / "ref"), progress=False))
    ref2 = evaluate(EvalConfig(models["ref2"], release, "forget05", str(d / "ref2"), reference=str(d / "ref"), progress=False))
    return {"ref": ref, "target": target, "ref2": ref2, "dir": d}
