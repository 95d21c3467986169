"""``eval`` on transformers 4.x: OpenUnlearning pins 4.45.1, and a lab that evaluates with both runs ours in that stack.

``make test`` installs transformers 4.45.1, the Hub client and tokenizers it needs into ``.transformers4`` (a folder of
packages, no torch); ``TRANSFORMERS4_PATH`` points the test at it. The command runs in a process with that folder first
on ``PYTHONPATH``, so it imports the older transformers beside this environment's torch, and its results must be what
the installed transformers gives: every aggregate, every item's log-probabilities and its generated answer.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from entity_unlearn.cli import main
from entity_unlearn.eval import read_result

ROOT = Path(__file__).resolve().parents[2]
OLD = "4.45.1"


def transformers4_path() -> str | None:
    path = os.environ.get("TRANSFORMERS4_PATH") or str(ROOT / ".transformers4")
    return path if (Path(path) / "transformers").is_dir() else None


def test_eval_on_transformers_4_gives_the_results_of_the_installed_transformers(lab_models, lab_release, tmp_path):
    path = transformers4_path()
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{ROOT / '.transformers4'} is missing: CI must run `make test`, which creates it")
        pytest.skip("no transformers 4.x folder: run `make test` (creates .transformers4) or set TRANSFORMERS4_PATH")
    model = lab_models("target")["target"]
    common = ["eval", "--model", model, "--data", lab_release, "--forget", "forget05", "--quiet"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([path, os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    old = subprocess.run(
        [sys.executable, "-m", "entity_unlearn", *common, "--out", str(tmp_path / "old")], env=env, capture_output=True, text=True, timeout=600
    )
    assert old.returncode == 0, old.stderr[-3000:]
    assert main([*common, "--out", str(tmp_path / "new")]) == 0
    results = {name: read_result(tmp_path / name, name) for name in ("old", "new")}
    assert results["old"]["spec"]["package"]["transformers"] == OLD
    assert results["new"]["spec"]["package"]["transformers"] != OLD

    key = lambda a: (a["metric"], a["set"], a["depth"], a["attack"])  # noqa: E731
    old_values, new_values = ({key(a): a["value"] for a in results[n]["aggregates"]} for n in ("old", "new"))
    assert old_values.keys() == new_values.keys() and len(old_values) > 100
    for k, value in new_values.items():
        assert old_values[k] == pytest.approx(value, abs=1e-6), k

    rows = {name: results[name]["rows"] for name in ("old", "new")}
    assert len(rows["old"]) == len(rows["new"]) == results["old"]["rows_count"] > 500
    generated = 0
    for a, b in zip(rows["old"], rows["new"]):
        assert a["item_id"] == b["item_id"]
        assert a["generation"] == b["generation"], a["item_id"]  # greedy decoding: the same answer, cut at the same token
        generated += bool(b["generation"])
        for field in ("logp_answer", "logp_paraphrase"):
            if b[field] is not None:
                assert a[field] == pytest.approx(b[field], abs=1e-4), (a["item_id"], field)
        assert a["token_logp"] == pytest.approx(b["token_logp"], abs=1e-4), a["item_id"]
    assert generated > 200
