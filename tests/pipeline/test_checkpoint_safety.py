"""Epoch checkpoints are untrusted input: a file planted in --out never runs code (issue 19, item 1).

The payload is a pickle whose loading writes a marker file. It is planted as the old ``checkpoint.pt``
(which earlier versions unpickled before checking its key) and as ``checkpoint.safetensors`` (the name read
now), in the output folder of inject, unlearn and a study's first model step. Each command must run to the
end without creating the marker.
"""

from __future__ import annotations

import functools
import json
import pickle
from pathlib import Path

from pipeline_fixtures import SMALL, release  # noqa: F401  (fixtures)

from entity_unlearn.cli import main
from entity_unlearn.pipeline.finetune import EpochCheckpoint, TrainConfig


class Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').write('pwned')",))


def plant(folder: Path, marker: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    blob = pickle.dumps({"key": "anything", "model": Payload(marker)})
    (folder / EpochCheckpoint.LEGACY).write_bytes(blob)
    (folder / EpochCheckpoint.NAME).write_bytes(blob)


def test_the_payload_runs_when_unpickled(tmp_path):
    """The test's own check: loading the planted file the old way does run the payload."""
    plant(tmp_path / "m", tmp_path / "marker")
    pickle.loads((tmp_path / "m" / "checkpoint.pt").read_bytes())
    assert (tmp_path / "marker").read_text() == "pwned"


def test_inject_and_unlearn_never_unpickle_a_planted_checkpoint(release, tmp_path, capsys):
    marker = tmp_path / "marker"
    plant(tmp_path / "inj", marker)
    assert main(["inject", "--data", release, "--out", str(tmp_path / "inj"), "--epochs", "1", "--quiet"]) == 0
    plant(tmp_path / "unl", marker)
    assert (
        main(
            [
                "unlearn",
                "--model",
                str(tmp_path / "inj"),
                "--data",
                release,
                "--method",
                "ga",
                "--epochs",
                "1",
                "--out",
                str(tmp_path / "unl"),
                "--quiet",
            ]
        )
        == 0
    )
    assert not marker.exists()
    out = capsys.readouterr().out
    assert out.count("never loaded") == 2 and out.count("not a readable checkpoint") == 2 and "resuming" not in out
    assert json.loads((tmp_path / "inj" / "injection.json").read_text())["loss_by_epoch"]  # trained from the start
    assert not (tmp_path / "unl" / EpochCheckpoint.NAME).exists()  # replaced by a real one, then dropped at the end


def test_study_never_unpickles_a_planted_checkpoint(release, tmp_path, monkeypatch, capsys):
    import entity_unlearn.pipeline.study as S

    marker = tmp_path / "marker"
    study = tmp_path / "s"
    for step in ("target.partial", "reference.partial", "gd.partial"):
        plant(study / "models" / step, marker)
    small = functools.partial(S.StudyConfig, unlearn_overrides={"epochs": 1}, tiny=SMALL, inject_train=TrainConfig(epochs=1, batch_size=32))
    monkeypatch.setattr(S, "StudyConfig", small)
    argv = ["study", "--data", release, "--out", str(study), "--methods", "gd", "--coverage-methods", "none", "--deep-method", "none", "--quiet"]
    assert main([*argv, "--max-new-tokens", "4"]) == 0  # its evaluations only need to run
    assert not marker.exists() and (study / "study.json").is_file()
    assert capsys.readouterr().out.count("never loaded") == 3


def test_a_checkpoint_holds_no_pickle(release, tmp_path, monkeypatch):
    """What is written is safetensors: tensors plus JSON in the header, loadable with no unpickler at all."""
    from safetensors import safe_open

    from entity_unlearn.pipeline.inject import InjectConfig, inject

    original = EpochCheckpoint.save

    def stop(self, done, *args):
        original(self, done, *args)
        raise KeyboardInterrupt

    monkeypatch.setattr(EpochCheckpoint, "save", stop)
    try:
        inject(release, tmp_path / "m", InjectConfig(tiny=SMALL, train=TrainConfig(epochs=2), world=False))
    except KeyboardInterrupt:
        pass
    with safe_open(str(tmp_path / "m" / EpochCheckpoint.NAME), framework="pt") as f:
        header = json.loads(f.metadata()["entity_unlearn"])
        names = set(f.keys())
    assert header["epoch"] == 1 and len(header["history"]) == 1 and header["key"]
    assert "rng/generator" in names and any(n.startswith("model/") for n in names) and any(n.startswith("optimizer/") for n in names)
