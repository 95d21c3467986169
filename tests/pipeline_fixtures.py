"""Fixtures shared by the pipeline tests (tests/pipeline/): the lab's 20-person release and its tiny model injected
with everything (tests/lab_recipe.py, the eval tests' ``target``), trained once in the whole run.

Import them into a test module (``from pipeline_fixtures import release, injected``).
"""

from __future__ import annotations

import pytest
from lab_recipe import SMALL  # noqa: F401  (the tiny size the pipeline tests train at)

# The tiny preset (lr 3e-4, 5 epochs) is sized for the default release's 10 forget persons (55 steps);
# the test release's 2 forget persons give 15 steps, so the test takes a larger step.
FAST_UNLEARN = {"lr": 1e-3}


@pytest.fixture(scope="session")
def release(lab_release):
    return lab_release


@pytest.fixture(scope="session")
def injected(lab_models):
    return lab_models("target")["target"]
