"""Training on many processes: ``inject`` and ``unlearn --num-processes 2`` (two CPU processes, gloo) take the steps of one.

Two processes see the global batches of one, each training on its shard; their step losses and saved weights equal
the one-process run's up to float rounding: sums in another order and products of other shapes (each shard is
padded to its own width) differ in the last bit of float32 (1.2e-7 relative). Measured on the 20-person release of
seed 1 (10 injection steps): step losses within 1.7e-7 relative, weights within 4e-6. Ranks that each took their own shard's mean (plain
DDP averaging, no scaling by the shard's share of the global batch's tokens) are off by 4e-5 at the first step's loss,
4e-4 by the tenth, and 2.4e-2 in the weights: ``LOSS_RTOL`` and ``WEIGHT_ATOL`` lie between. The runs are kept short
on purpose: training from scratch at lr 3e-3 amplifies the rounding differences, and over 180 steps (batches of 7, two
epochs) the two runs drifted apart to 2e-2 (measured).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pipeline_fixtures import release  # noqa: F401  (fixture)

from entity_unlearn.cli import main
from entity_unlearn.eval.ranks import Ranks
from entity_unlearn.pipeline.finetune import IGNORE, EpochCheckpoint, TrainingError
from entity_unlearn.pipeline.processes import shard, wrap
from entity_unlearn.pipeline.unlearn import unlearning_data

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


@pytest.mark.parametrize("var", ["ACCELERATE_USE_FSDP", "ACCELERATE_USE_DEEPSPEED"])
def test_fsdp_or_deepspeed_asked_by_accelerate_is_one_clear_error(var, monkeypatch):
    monkeypatch.setenv(var, "true")
    with pytest.raises(TrainingError, match="train with DDP"):
        wrap(None, Ranks(0, 2))


def record(folder: Path, name: str) -> dict:
    return json.loads((folder / name).read_text(encoding="utf-8"))


def weights(folder: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(folder / "model.safetensors"))


def assert_same_training(one: Path, two: Path, name: str, exact_steps: int = 0) -> None:
    import torch

    a, b = record(one, name), record(two, name)
    assert a["processes"] == 1 and b["processes"] == 2
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


def test_two_processes_resume_unlearning_of_one_and_end_as_one(release, injected_twice, tmp_path, monkeypatch, capfd):
    """npo_gd (a per-sequence mean and a token mean over another batch): the run stopped after epoch 1 by one
    process is resumed by two, and ends as the uninterrupted one-process run."""
    forget, _, _ = unlearning_data(release, "forget05")
    batch = (len(forget) - 1) // 2
    assert len(forget) % batch == 1  # an empty shard once an epoch
    common = ["unlearn", "--model", str(injected_twice[0]), "--data", release, "--method", "npo_gd", "--epochs", "3"]
    common += ["--batch-size", str(batch), "--lr", "1e-3", "--quiet"]
    assert main(common + ["--out", str(tmp_path / "one")]) == 0
    original = EpochCheckpoint.save

    def stop_after_the_first(self, done, *args):
        original(self, done, *args)
        if done == 1:
            raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(EpochCheckpoint, "save", stop_after_the_first)
        assert main(common + ["--out", str(tmp_path / "two")]) == 130
    capfd.readouterr()
    assert main(common + ["--out", str(tmp_path / "two"), "--num-processes", "2"]) == 0
    assert capfd.readouterr().out.count("resuming at epoch 2") == 2  # both processes
    per_epoch = -(-len(forget) // batch)
    assert_same_training(tmp_path / "one", tmp_path / "two", "unlearning.json", exact_steps=per_epoch)
