"""``study`` and ``attack`` under a launcher (two CPU processes, gloo): every process takes its share of each training
run and evaluation, process 0 writes the models, marks and reports, and the outputs are one process's.

Training on two processes equals one process's up to float rounding (tests/pipeline/test_training_processes.py);
evaluations and quantisation are exact. So quantised and evaluated numbers are compared exactly, and those
downstream of training within ``RTOL``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from launched_study import config
from pipeline_fixtures import injected, release  # noqa: F401  (fixtures)

from entity_unlearn.cli import main
from entity_unlearn.eval import read_result
from entity_unlearn.pipeline.study import run_study

RTOL = 1e-4
TESTS = Path(__file__).resolve().parents[1]


ATTACK = ["attack", "--kind", "relearn", "--epochs", "1", "--max-new-tokens", "2", "--quiet"]


@pytest.fixture(scope="module")
def attacked_by_one(release, injected, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("attack") / "one"
    assert main([*ATTACK, "--model", injected, "--data", release, "--out", str(out)]) == 0
    return out


@pytest.mark.parametrize("sharding", ["ddp", "fsdp"])
def test_two_processes_attack_as_one(release, injected, attacked_by_one, sharding, tmp_path, capfd):
    """Relearning trains on both processes, DDP or sharded (``--fsdp``); a quantised model, made by process 0 alone:
    the study's test below."""
    capfd.readouterr()
    fsdp = ["--fsdp"] if sharding == "fsdp" else []
    assert main([*ATTACK, "--model", injected, "--data", release, "--out", str(tmp_path / "two"), "--num-processes", "2", *fsdp]) == 0
    out = capfd.readouterr().out
    assert out.count("written to") == 1  # process 0 reports
    assert out.count("FSDP2: ") == (1 if fsdp else 0)  # process 0 says what it holds of the sharded model
    one, two = (json.loads((d / "robustness.json").read_text()) for d in (attacked_by_one, tmp_path / "two"))
    assert two["attacked_models"]["relearn"]["processes"] == 2 and two["attacked_models"]["relearn"]["sharding"] == sharding
    assert two["attacked_models"]["relearn"]["loss_by_epoch"] == pytest.approx(one["attacked_models"]["relearn"]["loss_by_epoch"], rel=RTOL)
    assert two["forget_metrics"]["unlearned"] == one["forget_metrics"]["unlearned"]
    assert two["forget_metrics"]["attacked:relearn"] == pytest.approx(one["forget_metrics"]["attacked:relearn"], rel=RTOL)
    for name in ("unlearned", "relearn"):
        assert read_result(tmp_path / "two" / "evals" / name, name, rows=False)["spec"]["processes"] == 2


def test_a_study_of_one_process_resumed_by_two_ends_as_the_study_of_one(tiny_release, tmp_path):
    """The study's last steps (ga, its evaluation, its 4-bit attack and that evaluation) undone and rerun by a
    launcher's two processes: they train ga on a share of each batch, share the evaluations, process 0 alone
    quantises, and the report is the one-process study's."""
    one = run_study(config(str(tiny_release), str(tmp_path / "one")))
    shutil.copytree(tmp_path / "one", tmp_path / "two")
    redo = ["ga", "eval_ga", "ga_quant4", "eval_ga_quant4"]
    for name in redo:
        (tmp_path / "two" / "steps" / f"{name}.json").unlink()
        shutil.rmtree(tmp_path / "two" / ("evals" if name.startswith("eval_") else "models") / name)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(TESTS)}
    launched = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2", str(TESTS / "launched_study.py")]
        + [str(tiny_release), str(tmp_path / "two")],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert launched.returncode == 0, launched.stderr[-3000:]
    assert [launched.stdout.count(f"[study] {s} done") for s in redo] == [1] * len(redo)  # process 0 reports each step once
    assert "[study] target" not in launched.stdout  # finished steps are kept
    two = json.loads((tmp_path / "two" / "study.json").read_text())
    assert sorted(two["steps"]) == sorted(one["steps"]) and not list((tmp_path / "two" / "models").glob("*.partial"))
    assert json.loads((tmp_path / "two" / "models" / "ga" / "unlearning.json").read_text())["processes"] == 2
    assert read_result(tmp_path / "two" / "evals" / "eval_ga", "ga", rows=False)["spec"]["processes"] == 2
    assert [r["model"] for r in two["table"]] == [r["model"] for r in one["table"]] == ["reference", "target", "ga"]
    assert two["table"][:2] == json.loads(json.dumps(one["table"][:2]))  # read from the same evaluations
    assert two["table"][2] == pytest.approx(one["table"][2], rel=RTOL, abs=1e-6)
    assert two["robustness"]["ga"]["surviving_entity_share"] == pytest.approx(one["robustness"]["ga"]["surviving_entity_share"])


def test_bad_options_stop_before_the_processes_start(release, tmp_path, capsys):
    """One message, not one per process: the options are checked before the command starts its copies."""
    assert main(["study", "--data", release, "--out", str(tmp_path / "s"), "--coverage", "half", "--num-processes", "2"]) == 2
    assert capsys.readouterr().err.count("--coverage 'half'") == 1
    assert main(["study", "--data", release, "--out", str(tmp_path / "s"), "--methods", "ga,gax", "--num-processes", "2"]) == 2
    assert capsys.readouterr().err.count("gax") == 1
    assert main(["attack", "--model", "m", "--data", release, "--kind", "quant3", "--out", str(tmp_path / "a"), "--num-processes", "2"]) == 2
    assert capsys.readouterr().err.count("--kind quant3: not an attack") == 1
    assert not (tmp_path / "s").exists() and not (tmp_path / "a").exists()
