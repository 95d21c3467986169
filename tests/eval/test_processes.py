"""Many processes, one result: ``eval --num-processes 2`` (two CPU processes, gloo) writes the results of one process."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from entity_unlearn.cli import main
from entity_unlearn.eval import read_result
from entity_unlearn.pipeline.inject import release_texts
from entity_unlearn.pipeline.tiny import TinyConfig, build_model, save, train_tokenizer


@pytest.fixture(scope="module")
def release_and_model(release, tmp_path_factory):
    root = tmp_path_factory.mktemp("procs")
    tok = train_tokenizer(release_texts(release), 600)
    return release, str(save(build_model(tok, TinyConfig(vocab_size=600, hidden_size=32, intermediate_size=64)), tok, root / "untrained"))


def without_timings(result: dict) -> dict:
    for stats in result["spec"]["passes"].values():
        stats.pop("seconds")
    result["spec"].pop("processes", None)
    result["spec"].pop("run")  # the date and the command line (--out, --num-processes) differ by design
    return result


def test_two_processes_write_the_results_of_one(release_and_model, tmp_path):
    """Also with two models in the command: the processes evaluate them in turn, each result as one process's."""
    release, model = release_and_model
    copy = shutil.copytree(model, tmp_path / "copy")
    common = ["eval", "--model", model, "--data", release, "--max-new-tokens", "6", "--quiet"]
    assert main(common + ["--out", str(tmp_path / "one")]) == 0
    assert main(common + ["--model", str(copy), "--out", str(tmp_path / "two"), "--num-processes", "2"]) == 0
    one = without_timings(read_result(tmp_path / "one", "one"))
    for name in (Path(model).name, "copy"):
        two = read_result(tmp_path / "two" / name, "two")
        assert two["spec"]["processes"] == 2
        assert two["spec"]["passes"]["score"]["computed"] == one["spec"]["passes"]["score"]["computed"] == one["spec"]["plan"]["continuations_unique"]
        two = without_timings(two)
        if name == "copy":  # another folder of the same files: only its path differs
            assert two["spec"]["model"]["path"] == str(copy)
            two["spec"]["model"]["path"] = model
        assert two == one
        for cache in ("score", "generate"):  # both processes did a share of each pass
            assert (tmp_path / "two" / name / "cache" / f"{cache}.jsonl").stat().st_size > 0
            assert (tmp_path / "two" / name / "cache" / f"{cache}.rank1.jsonl").stat().st_size > 0


def test_an_fsdp_config_that_loads_weights_in_process_0_alone_is_refused(release_and_model, tmp_path, monkeypatch, capsys):
    """accelerate's default FSDP loading leaves every process but 0 with empty weights; eval holds the whole model in
    each process, so it refuses, in one message, before any process starts (and in each launched process)."""
    from entity_unlearn.eval.model import ModelLoadError, check_whole_model_loading

    release, model = release_and_model
    monkeypatch.setenv("ACCELERATE_USE_FSDP", "true")
    monkeypatch.setenv("FSDP_CPU_RAM_EFFICIENT_LOADING", "true")
    assert main(["eval", "--model", model, "--data", release, "--out", str(tmp_path / "x"), "--num-processes", "2", "--quiet"]) != 0
    err = capsys.readouterr().err
    assert err.count("fsdp_cpu_ram_efficient_loading: false") == 1 and not (tmp_path / "x").exists()
    with pytest.raises(ModelLoadError, match="FSDP_CPU_RAM_EFFICIENT_LOADING=true"):
        check_whole_model_loading(2)
    check_whole_model_loading(1)  # one process loads the whole model whatever the config says
    monkeypatch.setenv("FSDP_CPU_RAM_EFFICIENT_LOADING", "false")
    check_whole_model_loading(2)


@pytest.mark.parametrize(
    "value, on",
    [("1", True), ("true", True), ("TRUE", True), ("Yes", True), (None, False), ("", False), ("0", False), ("false", False), ("on", False)],
)
def test_a_launcher_switch_is_on_for_1_true_or_yes_in_any_case(value, on):
    """``eval.ranks.switched_on``: the one reader of ACCELERATE_USE_FSDP, FSDP_CPU_RAM_EFFICIENT_LOADING and the like,
    for eval and for the training processes."""
    from entity_unlearn.eval.ranks import switched_on

    assert switched_on("ACCELERATE_USE_FSDP", {} if value is None else {"ACCELERATE_USE_FSDP": value}) is on
