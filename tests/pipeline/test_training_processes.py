"""Training on many processes: ``inject`` and ``unlearn --num-processes 2`` (two CPU processes, gloo) take the steps of one.

Two processes see the global batches of one, each training on its shard; their step losses and saved weights equal
the one-process run's up to float rounding: sums in another order and products of other shapes (each shard is
padded to its own width) differ in the last bit of float32 (1.2e-7 relative). Measured on the 20-person release of
seed 1 (10 injection steps): step losses within 1.7e-7 relative, weights within 4e-6. Ranks that each took their own shard's mean (plain
DDP averaging, no scaling by the shard's share of the global batch's tokens) are off by 4e-5 at the first step's loss,
4e-4 by the tenth, and 2.4e-2 in the weights: ``LOSS_RTOL`` and ``WEIGHT_ATOL`` lie between. The runs are kept short
on purpose: training from scratch at lr 3e-3 amplifies the rounding differences, and over 180 steps (batches of 7, two
epochs) the two runs drifted apart to 2e-2 (measured).

Under FSDP (torch's FSDP2: each process holds half of every weight, its gradient and its AdamW moments) the processes
take the same steps. Measured on the lab release: injection (10 steps) gave DDP's step losses and weights bit for
bit, within 8e-8 relative and 2.1e-5 of one process's; npo_gd (3 epochs of 3 batches, gradients accumulated over 2,
a sharded reference model) within 3.7e-7 and 1.9e-6 (DDP: 1.7e-7 and 2.0e-6). An epoch checkpoint written by two
FSDP processes is the file one process writes (weights within 1.9e-6, AdamW moments within 6.6e-8, generator states
identical), and each resumes the other's.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from pipeline_fixtures import release  # noqa: F401  (fixture)

from entity_unlearn.cli import main
from entity_unlearn.eval.ranks import Ranks
from entity_unlearn.pipeline.finetune import IGNORE, EpochCheckpoint, TrainingError
from entity_unlearn.pipeline.processes import check, shard
from entity_unlearn.pipeline.unlearn import unlearning_data

TESTS = Path(__file__).resolve().parents[1]

LOSS_RTOL = 1e-5
WEIGHT_ATOL = 1e-4


def test_a_global_batch_is_cut_into_shards_with_their_shares():
    data = [([0] * 5, [IGNORE, IGNORE, 7, 7, 7]), ([0] * 4, [IGNORE, 7, 7, 7]), ([0] * 3, [IGNORE, IGNORE, 7])]  # 3, 3 and 1 answer tokens
    two = [shard([0, 1, 2], data, Ranks(r, 2)) for r in (0, 1)]
    assert [s.indices for s in two] == [[0, 2], [1]]
    assert [s.tokens for s in two] == [4 / 7, 3 / 7] and [s.rows for s in two] == [2 / 3, 1 / 3]
    alone = shard([2], data, Ranks(1, 2))  # a batch smaller than the processes: the empty shard runs one example at weight 0
    assert (alone.indices, alone.tokens, alone.rows) == ([2], 0.0, 0.0)
    assert shard([2, 0], data, Ranks()) == shard([2, 0], data, Ranks(0, 1)) and shard([2, 0], data, Ranks()).tokens == 1.0


FSDP2 = {"ACCELERATE_USE_FSDP": "true", "FSDP_VERSION": "2"}


@pytest.mark.parametrize(
    "env, message",
    [
        ({"ACCELERATE_USE_DEEPSPEED": "true"}, "asks for DeepSpeed .* or shard with FSDP2"),
        ({"ACCELERATE_USE_FSDP": "true"}, r"FSDP_VERSION=1 \(the accelerate config's fsdp_version\).*write fsdp_version: 2"),
        ({**FSDP2, "FSDP_CPU_RAM_EFFICIENT_LOADING": "true"}, "write fsdp_cpu_ram_efficient_loading: false"),
        ({**FSDP2, "FSDP_OFFLOAD_PARAMS": "true"}, "FSDP_OFFLOAD_PARAMS=true .* write fsdp_offload_params: false"),
        ({**FSDP2, "FSDP_ACTIVATION_CHECKPOINTING": "true"}, "write fsdp_activation_checkpointing: false"),
        ({**FSDP2, "FSDP_AUTO_WRAP_POLICY": "SIZE_BASED_WRAP"}, "SIZE_BASED_WRAP .* write TRANSFORMER_BASED_WRAP"),
        ({**FSDP2, "FSDP_STATE_DICT_TYPE": "SHARDED_STATE_DICT"}, "written whole by process 0; write FULL_STATE_DICT"),
        ({**FSDP2, "FSDP_RESHARD_AFTER_FORWARD": "FULL_SHARD"}, "FSDP2 takes true or false"),
    ],
)
def test_a_launcher_config_that_cannot_be_honoured_is_one_clear_error(env, message):
    with pytest.raises(TrainingError, match=message):
        check(Ranks(0, 2), env=env)
    check(Ranks(), env=env)  # one process: nothing is sharded or launched


def test_fsdp_options_it_honours_pass_and_lora_under_fsdp_is_refused():
    check(
        Ranks(0, 2),
        env={**FSDP2, "FSDP_RESHARD_AFTER_FORWARD": "false", "FSDP_CPU_RAM_EFFICIENT_LOADING": "false", "FSDP_SHARDING_STRATEGY": "FULL_SHARD"},
    )
    with pytest.raises(TrainingError, match="--lora-rank with FSDP"):
        check(Ranks(0, 2), lora=True, env=FSDP2)


def command(name: str, release: str, out: Path) -> list[str]:
    """``name`` (a command that trains) on the test release, written to ``out``; nothing is loaded before it launches."""
    given = {
        "inject": ["--data", release],
        "unlearn": ["--model", "m", "--data", release, "--method", "ga"],
        "attack": ["--model", "m", "--data", release, "--kind", "relearn"],
        "study": ["--data", release],
    }[name]
    return [name, *given, "--out", str(out)]


@pytest.mark.parametrize("name", ["inject", "unlearn", "attack", "study"])
def test_bad_fsdp_options_stop_before_the_processes_start(name, release, tmp_path, monkeypatch, capsys):
    import entity_unlearn.cli.pipeline as cli

    monkeypatch.setattr(cli, "launch", lambda *a: pytest.fail("processes started"))
    out = tmp_path / "m"
    assert main([*command(name, release, out), "--fsdp"]) == 2
    assert "--fsdp shards the model over processes: give --num-processes N" in capsys.readouterr().err
    monkeypatch.setenv("FSDP_OFFLOAD_PARAMS", "true")
    assert main([*command(name, release, out), "--fsdp", "--num-processes", "2"]) == 2
    assert capsys.readouterr().err.count("FSDP_OFFLOAD_PARAMS=true") == 1
    assert not out.exists()


@pytest.mark.parametrize(
    "name, runs", [("attack", "entity_unlearn.pipeline.robustness.run_attacks"), ("study", "entity_unlearn.pipeline.study.run_study")]
)
def test_fsdp_in_a_launched_process_shards_its_training_and_evaluates_whole(name, runs, release, tmp_path, monkeypatch):
    """Each process ``attack`` or ``study --fsdp --num-processes 2`` starts runs the command with the variables of an
    FSDP2 config: its training steps shard (and their records say so), its evaluations still load the whole model."""
    from entity_unlearn.eval.model import check_whole_model_loading
    from entity_unlearn.pipeline.processes import strategy

    for var, unset in (("ACCELERATE_USE_FSDP", "false"), ("FSDP_VERSION", "1"), ("WORLD_SIZE", "2")):
        monkeypatch.setenv(var, unset)  # restored after the test: the command sets the first two in this process
    seen = []

    def run(cfg):
        seen.append(strategy(Ranks(0, 2)))
        check_whole_model_loading(2)

    monkeypatch.setattr(runs, run)
    assert main([*command(name, release, tmp_path / "out"), "--fsdp"]) == 0
    assert seen == ["fsdp"]


def record(folder: Path, name: str) -> dict:
    return json.loads((folder / name).read_text(encoding="utf-8"))


def weights(folder: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(folder / "model.safetensors"))


def assert_same_training(one: Path, two: Path, name: str, exact_steps: int = 0, processes: int = 2) -> None:
    import torch

    a, b = record(one, name), record(two, name)
    assert a["processes"] == 1 and b["processes"] == processes
    assert len(a["loss_by_step"]) == len(b["loss_by_step"]) and len(a["loss_by_epoch"]) == len(b["loss_by_epoch"])
    assert a["loss_by_step"][:exact_steps] == b["loss_by_step"][:exact_steps]
    assert a["loss_by_step"] == pytest.approx(b["loss_by_step"], rel=LOSS_RTOL)
    assert a["loss_by_epoch"] == pytest.approx(b["loss_by_epoch"], rel=LOSS_RTOL)
    wa, wb = weights(one), weights(two)
    assert wa.keys() == wb.keys()
    for k in wa:
        torch.testing.assert_close(wa[k], wb[k], rtol=0, atol=WEIGHT_ATOL, msg=k)
    assert not (two / EpochCheckpoint.NAME).exists()


@pytest.fixture(scope="module")
def injected_twice(release, tmp_path_factory):
    """The tiny model injected by one process and by two: one epoch of batches of 64 (the last one shorter)."""
    root = tmp_path_factory.mktemp("ddp")
    common = ["inject", "--data", release, "--epochs", "1", "--batch-size", "64", "--quiet"]
    assert main(common + ["--out", str(root / "one")]) == 0
    assert main(common + ["--out", str(root / "two"), "--num-processes", "2"]) == 0
    return root / "one", root / "two"


def test_two_processes_inject_as_one(injected_twice):
    assert_same_training(*injected_twice, "injection.json")


ACCELERATE_FSDP2 = """\
compute_environment: LOCAL_MACHINE
distributed_type: FSDP
num_machines: 1
num_processes: 2
use_cpu: true
mixed_precision: "no"
fsdp_config:
  fsdp_version: 2
  fsdp_cpu_ram_efficient_loading: false
  fsdp_auto_wrap_policy: TRANSFORMER_BASED_WRAP
  fsdp_state_dict_type: FULL_STATE_DICT
  fsdp_reshard_after_forward: true
"""


def test_accelerate_launch_with_an_fsdp2_config_injects_as_one(release, injected_twice, tmp_path):
    """``accelerate launch --config_file`` sets the variables the processes read (the tests below use ``--fsdp``)."""
    pytest.importorskip("accelerate")
    (tmp_path / "fsdp2.yaml").write_text(ACCELERATE_FSDP2, encoding="utf-8")
    command = ["inject", "--data", release, "--epochs", "1", "--batch-size", "64", "--quiet", "--out", str(tmp_path / "fsdp")]
    launched = subprocess.run(
        [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(tmp_path / "fsdp2.yaml"), "-m", "entity_unlearn", *command],
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert launched.returncode == 0, launched.stderr[-3000:]
    held, total = (int(n.replace(",", "")) for n in re.search(r"process 0 holds ([\d,]+) of ([\d,]+) weights", launched.stdout).groups())
    assert total / 2 <= held < total / 2 * 1.01  # half of every weight (a row more where a weight's rows are odd)
    assert_same_training(injected_twice[0], tmp_path / "fsdp", "injection.json")
    assert record(tmp_path / "fsdp", "injection.json")["sharding"] == "fsdp"


@pytest.fixture(scope="module")
def npo_gd(release, injected_twice, tmp_path_factory):
    """npo_gd (a per-sequence mean and a token mean over another batch; gradients accumulated over two batches) run by
    one process, and the same run stopped after its first epoch: (command, uninterrupted run, stopped run's folder,
    batches per epoch)."""
    root = tmp_path_factory.mktemp("npo_gd")
    forget, _, _ = unlearning_data(release, "forget05")
    batch = (len(forget) - 1) // 2
    assert len(forget) % batch == 1  # an empty shard once an epoch
    common = ["unlearn", "--model", str(injected_twice[0]), "--data", release, "--method", "npo_gd", "--epochs", "3"]
    common += ["--batch-size", str(batch), "--grad-accum", "2", "--lr", "1e-3", "--quiet"]  # a step after batches 2 and 3
    assert main(common + ["--out", str(root / "one")]) == 0
    original = EpochCheckpoint.save

    def stop_after_the_first(self, done, *args):
        original(self, done, *args)
        if done == 1:
            raise KeyboardInterrupt

    with pytest.MonkeyPatch.context() as m:
        m.setattr(EpochCheckpoint, "save", stop_after_the_first)
        assert main(common + ["--out", str(root / "stopped")]) == 130
    return common, root / "one", root / "stopped", -(-len(forget) // batch)


@pytest.mark.parametrize("sharding", ["ddp", "fsdp"])
def test_two_processes_resume_unlearning_of_one_and_end_as_one(npo_gd, sharding, tmp_path, capfd):
    """The run stopped after epoch 1 by one process is resumed by two (DDP, or FSDP with a sharded reference model),
    and ends as the uninterrupted one-process run."""
    common, one, stopped, per_epoch = npo_gd
    shutil.copytree(stopped, tmp_path / "two")
    capfd.readouterr()
    assert main(common + ["--out", str(tmp_path / "two"), "--num-processes", "2"] + (["--fsdp"] if sharding == "fsdp" else [])) == 0
    assert capfd.readouterr().out.count("resuming at epoch 2") == 2  # both processes
    assert_same_training(one, tmp_path / "two", "unlearning.json", exact_steps=per_epoch)
    assert record(tmp_path / "two", "unlearning.json")["sharding"] == sharding


def test_two_fsdp_processes_write_the_checkpoint_of_one_and_one_process_resumes_it(npo_gd, tmp_path):
    """Two FSDP processes stopped after epoch 1 write the checkpoint one process writes; one process resumes it and
    ends as the uninterrupted run."""
    import torch
    from safetensors import safe_open
    from safetensors.torch import load_file

    common, one, stopped, _ = npo_gd
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(TESTS)}
    launched = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2", str(TESTS / "launched_stopped.py")]
        + common
        + ["--out", str(tmp_path / "fsdp"), "--fsdp"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert launched.returncode == 0, launched.stderr[-3000:]
    mine, theirs = (p / EpochCheckpoint.NAME for p in (tmp_path / "fsdp", stopped))
    a, b = load_file(str(mine)), load_file(str(theirs))
    assert a.keys() == b.keys() and any(k.startswith("optimizer/") for k in a)
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0 if k.startswith("rng/") else WEIGHT_ATOL, msg=k)
    with safe_open(str(mine), "pt") as f, safe_open(str(theirs), "pt") as g:
        ha, hb = (json.loads(h.metadata()["entity_unlearn"]) for h in (f, g))
    assert ha["key"] == hb["key"] and ha["epoch"] == hb["epoch"] == 1 and ha["step_losses"] == pytest.approx(hb["step_losses"], rel=LOSS_RTOL)
    assert main(common + ["--out", str(tmp_path / "fsdp")]) == 0
    assert_same_training(one, tmp_path / "fsdp", "unlearning.json", processes=1)
