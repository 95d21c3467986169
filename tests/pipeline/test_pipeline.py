"""The reference pipeline on a tiny release and tiny models: inject, unlearn (every method), coverage, study."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from pipeline_fixtures import FAST_UNLEARN, SMALL, injected, release  # noqa: F401  (fixtures)

from entity_unlearn.cli import main
from entity_unlearn.eval import CausalLM, Formatter
from entity_unlearn.pipeline.finetune import EpochCheckpoint, TrainConfig, collate, encode_pairs
from entity_unlearn.pipeline.inject import InjectConfig, inject, release_texts
from entity_unlearn.pipeline.study import StudyConfig, StudyError, run_study
from entity_unlearn.pipeline.tiny import TinyConfig, build_model, save, train_tokenizer
from entity_unlearn.pipeline.unlearn import METHODS, run_unlearning, sequence_logp, unlearning_data


def mean_prob(model_dir: str, pairs) -> float:
    """Mean per-token probability of each answer given its question, as the evaluator formats them."""
    import torch

    lm = CausalLM(model_dir)
    enc = encode_pairs(Formatter(lm.tokenizer), pairs)
    with torch.no_grad():
        lp, _, keep = sequence_logp(lm.model, *collate(enc, lm.tokenizer.pad_token_id))
    return (lp / keep.sum(-1)).exp().mean().item()


@pytest.mark.parametrize("method", sorted(METHODS))
def test_each_method_lowers_forget_probability_more_than_retain(release, injected, method, tmp_path):
    forget, retain, _ = unlearning_data(release, "forget05")
    retain = retain[::5]
    before_f, before_r = mean_prob(injected, forget), mean_prob(injected, retain)
    assert before_f > 0.5 and before_r > 0.5
    out = run_unlearning(injected, release, "forget05", method, tmp_path / method, overrides=FAST_UNLEARN)
    after_f, after_r = mean_prob(str(out), forget), mean_prob(str(out), retain)
    assert after_f < before_f - 0.1, (method, before_f, after_f)
    assert before_f - after_f > before_r - after_r, (method, before_f, after_f, before_r, after_r)
    record = json.loads((out / "unlearning.json").read_text())
    assert record["method"] == method and record["preset"] == "tiny" and record["config"]["epochs"] == 5
    assert sorted(p.name for p in out.glob("*.safetensors")) == ["model.safetensors"] and not list(out.glob("*.bin"))
    assert not (out / "checkpoint.safetensors").exists()  # dropped once the model is saved


def test_coverage_sets_train_only_on_the_facts_they_cover(release, injected, tmp_path):
    from datasets import load_dataset

    manifest = json.loads((Path(release) / "manifest.json").read_text())
    full, _, info_full = unlearning_data(release, "forget05")
    for level in (25, 50, 75):
        pairs, _, info = unlearning_data(release, "forget05", level)
        rows = load_dataset(release, f"forget05_cov{level}", split="train")
        assert pairs == [(r["question"], r["answer"]) for r in rows]
        assert set(pairs) < set(full) and info["config"] == f"forget05_cov{level}"
        covered = manifest["coverage"][f"forget05_cov{level}"]
        assert len(pairs) == covered["facts_covered"] and 0.1 < len(pairs) / len(full) < 0.9
        per_entity = {}
        for r in rows:
            per_entity[r["entity_id"]] = per_entity.get(r["entity_id"], 0) + 1
        assert per_entity == {e: c[0] for e, c in covered["per_entity"].items() if c[0]}
    out = run_unlearning(injected, release, "forget05", "ga", tmp_path / "cov", coverage=25, overrides={"epochs": 1})
    record = json.loads((out / "unlearning.json").read_text())
    assert record["data_info"]["forget_pairs"] == manifest["coverage"]["forget05_cov25"]["facts_covered"] < info_full["forget_pairs"]


def test_cli_inject_and_unlearn(release, injected, tmp_path, capsys):
    out = tmp_path / "tiny"
    assert main(["inject", "--data", release, "--base", "tiny", "--out", str(out), "--epochs", "1", "--quiet"]) == 0
    record = json.loads((out / "injection.json").read_text())
    assert record["train"]["epochs"] == 1 and record["config"]["base"] == "tiny" and (out / "model.safetensors").is_file()
    assert "injected" in capsys.readouterr().out
    ref = tmp_path / "ref"
    assert main(["inject", "--data", release, "--out", str(ref), "--exclude", "forget05", "--epochs", "1", "--quiet"]) == 0
    assert json.loads((ref / "injection.json").read_text())["pairs"] < record["pairs"]
    assert (
        main(
            [
                "unlearn",
                "--model",
                injected,
                "--data",
                release,
                "--method",
                "npo_gd",
                "--coverage",
                "50",
                "--epochs",
                "1",
                "--out",
                str(tmp_path / "u"),
                "--quiet",
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "npo_gd:" in printed and "forget05_cov50" in printed and "retain95" in printed


def test_a_model_folder_as_base_trains_in_mixed_precision(release, injected, tmp_path):
    """The Hub path (any causal LM folder) on CPU: float32 weights, bfloat16 autocast, saved in bfloat16."""
    import torch
    from transformers import AutoModelForCausalLM

    out = tmp_path / "hub"
    assert (
        main(
            [
                "inject",
                "--data",
                release,
                "--base",
                injected,
                "--out",
                str(out),
                "--epochs",
                "1",
                "--batch-size",
                "8",
                "--grad-accum",
                "2",
                "--dtype",
                "bfloat16",
                "--quiet",
            ]
        )
        == 0
    )
    record = json.loads((out / "injection.json").read_text())
    assert record["autocast"] == "bfloat16" and record["train"]["lr"] == 1e-5 and record["train"]["grad_accum"] == 2
    assert AutoModelForCausalLM.from_pretrained(out).dtype == torch.bfloat16
    before = AutoModelForCausalLM.from_pretrained(injected).state_dict()
    after = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32).state_dict()
    assert any(not torch.equal(before[k].to(torch.bfloat16).float(), after[k]) for k in before)  # the updates were not rounded away
    assert (
        main(
            [
                "unlearn",
                "--model",
                str(out),
                "--data",
                release,
                "--method",
                "gd",
                "--epochs",
                "1",
                "--dtype",
                "bfloat16",
                "--out",
                str(tmp_path / "hub-gd"),
                "--quiet",
            ]
        )
        == 0
    )
    record = json.loads((tmp_path / "hub-gd" / "unlearning.json").read_text())
    assert record["preset"] == "literature" and record["config"]["lr"] == 1e-5 and record["autocast"] == "bfloat16"


@pytest.mark.parametrize("command", ["inject", "unlearn"])
def test_lora_trains_only_the_attention_projections_and_saves_merged_weights(release, injected, command, tmp_path):
    """--lora-rank: adapters on q/k/v/o, merged into a plain checkpoint; every other weight is untouched."""
    import torch
    from transformers import AutoModelForCausalLM

    out = tmp_path / "lora"
    source = ["--base", injected] if command == "inject" else ["--model", injected, "--method", "kl"]  # kl: a frozen reference beside the adapters
    assert main([command, "--data", release, *source, "--out", str(out), "--epochs", "2", "--lr", "1e-2", "--lora-rank", "4", "--quiet"]) == 0
    before = AutoModelForCausalLM.from_pretrained(injected).state_dict()
    after = AutoModelForCausalLM.from_pretrained(out).state_dict()
    assert set(after) == set(before)  # merged: no adapter keys left
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(k.endswith(("q_proj.weight", "k_proj.weight", "v_proj.weight", "o_proj.weight")) for k in changed)
    record = json.loads((out / ("injection.json" if command == "inject" else "unlearning.json")).read_text())
    assert record["config"]["lora_rank"] == 4


def test_bad_pipeline_input_gets_one_clear_error(release, injected, tmp_path, capsys):
    def error(*argv):
        assert main(list(argv)) == 2
        return capsys.readouterr().err

    base = ["unlearn", "--model", injected, "--data", release, "--out", str(tmp_path / "x")]
    assert "--method gd_x" in (e := error(*base, "--method", "gd_x")) and "did you mean 'gd'" in e and "npo_gd" in e
    assert "--forget forget07" in (e := error(*base, "--method", "ga", "--forget", "forget07")) and "forget05" in e
    assert "--coverage 30" in (e := error(*base, "--method", "ga", "--coverage", "30")) and "[25, 50, 75, 100]" in e
    empty = tmp_path / "no-weights"
    tok = train_tokenizer(["a b c"] * 10, 300)
    save(build_model(tok, TinyConfig(hidden_size=16, intermediate_size=32)), tok, empty)
    (empty / "model.safetensors").unlink()
    assert "no weights" in error("unlearn", "--model", str(empty), "--data", release, "--method", "ga", "--out", str(tmp_path / "y"))
    assert "no weights" in error("inject", "--data", release, "--base", str(empty), "--out", str(tmp_path / "z"))
    assert "--lora-rank" in (e := error("inject", "--data", release, "--out", str(tmp_path / "t"), "--lora-rank", "8")) and "pretrained --base" in e
    assert "--method gax" in error("study", "--data", release, "--out", str(tmp_path / "s"), "--methods", "ga,gax")
    assert "--coverage" in error("study", "--data", release, "--out", str(tmp_path / "s"), "--coverage", "half")
    assert not (tmp_path / "s" / "models").exists()  # checked before any training


def test_study_resumes_and_reports(release, tmp_path, monkeypatch, capsys):
    cfg = StudyConfig(
        data=release,
        out=str(tmp_path / "study"),
        methods=("npo_gd",),
        coverage_methods=("npo_gd",),
        coverage=(50,),
        deep_method="npo_gd",
        progress=False,
        unlearn_overrides={"epochs": 2},
        tiny=SMALL,
        # 4 epochs, as the robustness study's: forget prob of target 0.042 > reference 0.024, npo_gd 0.035 with
        # efficacy_d1 0.17 > 0 (8 epochs: 0.166, 0.068, 0.126, 0.24; the three injections 36 s -> 19 s)
        inject_train=TrainConfig(epochs=4, batch_size=32),
        attacks=(),  # the robustness matrix: tests/pipeline/test_attack.py
        max_new_tokens=4,  # nothing here reads ROUGE
    )
    original = EpochCheckpoint.save

    def crash_in_deep_unlearning(self, done, *args):
        original(self, done, *args)
        if "deep_npo_gd" in str(self.path) and done == 1:
            raise KeyboardInterrupt  # Ctrl-C in the middle of a step, after its first epoch

    with monkeypatch.context() as m:
        m.setattr(EpochCheckpoint, "save", crash_in_deep_unlearning)
        with pytest.raises(KeyboardInterrupt):
            run_study(cfg)
    out = tmp_path / "study"
    done = sorted(p.stem for p in (out / "steps").glob("*.json"))
    assert done == sorted(
        ["target", "reference", "eval_reference", "eval_target", "npo_gd", "eval_npo_gd", "npo_gd_cov50", "eval_npo_gd_cov50", "deep", "eval_deep"]
    )
    assert not (out / "models" / "deep_npo_gd").exists()  # an interrupted step leaves only its .partial folder
    assert (out / "models" / "deep_npo_gd.partial" / "checkpoint.safetensors").is_file()
    stamp = (out / "models" / "target" / "model.safetensors").stat().st_mtime_ns
    capsys.readouterr()
    report = run_study(cfg)
    assert report["steps_skipped"] == len(done) and report["steps_run"] == 2  # deep_npo_gd and its evaluation
    assert "resuming at epoch 2" in capsys.readouterr().out  # the interrupted step went on from its checkpoint
    assert not (out / "models" / "deep_npo_gd" / "checkpoint.safetensors").exists()
    assert (out / "models" / "target" / "model.safetensors").stat().st_mtime_ns == stamp
    assert [r["model"] for r in report["table"]] == ["reference", "target", "npo_gd", "npo_gd_cov50", "deep", "deep_npo_gd"]
    rows = {r["model"]: r for r in report["table"]}
    assert rows["target"]["forget_prob"] > rows["reference"]["forget_prob"]
    assert rows["npo_gd"]["forget_prob"] < rows["target"]["forget_prob"] and rows["npo_gd"]["efficacy_d1"] > 0
    assert rows["target"]["efficacy_d1"] is None and rows["reference"]["forget_quality"] is None
    assert set(report["coverage_efficacy"]["npo_gd"]) == {50, 100}
    assert set(report["deep_comparison"]) == {"plain", "deep"}
    saved = json.loads((out / "study.json").read_text())
    assert saved["table"] == json.loads(json.dumps(report["table"])) and saved["dataset"]["manifest_sha256"]
    text = (out / "study.md").read_text()
    assert "| npo_gd_cov50 |" in text and "Plain against deep injection" in text and "efficacy_vs_coverage.png" in text
    assert (out / "efficacy_vs_coverage.png").stat().st_size > 1000 and (out / "depth_profile.png").stat().st_size > 1000
    again = run_study(cfg)
    assert again["steps_run"] == 0 and again["table"] == report["table"]
    with pytest.raises(StudyError, match="different forget"):
        run_study(replace(cfg, forget="forget10"))


def test_cli_study_runs_resumes_and_refuses_a_different_study(release, tmp_path, capsys, monkeypatch):
    import functools

    import entity_unlearn.pipeline.study as S

    argv = [
        "study",
        "--data",
        release,
        "--out",
        str(tmp_path / "s"),
        "--methods",
        "gd",
        "--coverage-methods",
        "none",
        "--deep-method",
        "none",
        "--max-new-tokens",
        "4",  # nothing here reads ROUGE
        "--quiet",
    ]
    small = functools.partial(S.StudyConfig, unlearn_overrides={"epochs": 1}, tiny=SMALL, inject_train=TrainConfig(epochs=2, batch_size=32))
    monkeypatch.setattr(S, "StudyConfig", small)
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "6 steps run, 0 already done" in printed and "forget prob" in printed and "\ngd " in printed
    assert main(argv) == 0
    assert "0 steps run, 6 already done" in capsys.readouterr().out
    monkeypatch.undo()  # the command's own presets: not what the folder's models were trained with
    assert main(argv) == 2
    assert "holds a study with a different inject_train, tiny, unlearn_overrides" in capsys.readouterr().err


def test_unlearned_model_loads_with_the_original_tokenizer(release, injected, tmp_path):
    out = run_unlearning(injected, release, "forget05", "gd", tmp_path / "gd", overrides={"epochs": 1})
    assert CausalLM(str(out)).tokenizer.get_vocab() == CausalLM(injected).tokenizer.get_vocab()


def _weights(folder) -> dict:
    from safetensors.torch import load_file

    return load_file(str(Path(folder) / "model.safetensors"))


def _interrupt_after_epoch(monkeypatch, epoch: int) -> None:
    """Ctrl-C right after the checkpoint of ``epoch`` is written."""
    original = EpochCheckpoint.save

    def save(self, done, *args):
        original(self, done, *args)
        if done == epoch:
            raise KeyboardInterrupt

    monkeypatch.setattr(EpochCheckpoint, "save", save)


def test_interrupted_training_resumes_at_its_last_epoch_and_ends_with_the_same_weights(release, injected, tmp_path, monkeypatch, capsys):
    import torch

    tok = train_tokenizer(release_texts(release))
    cfg = InjectConfig(tiny=SMALL, train=TrainConfig(epochs=4), world=False)
    whole = inject(release, tmp_path / "whole", cfg, tokenizer=tok)
    kl = {"epochs": 3, **FAST_UNLEARN}  # kl: the resumed run must still compare against the model it started from
    whole_kl = run_unlearning(injected, release, "forget05", "kl", tmp_path / "whole_kl", overrides=kl)
    with monkeypatch.context() as m:
        _interrupt_after_epoch(m, 2)
        with pytest.raises(KeyboardInterrupt):
            inject(release, tmp_path / "cut", cfg, tokenizer=tok)
        with pytest.raises(KeyboardInterrupt):
            run_unlearning(injected, release, "forget05", "kl", tmp_path / "cut_kl", overrides=kl)
    assert (tmp_path / "cut" / "checkpoint.safetensors").is_file() and not (tmp_path / "cut" / "model.safetensors").exists()
    capsys.readouterr()
    cut = inject(release, tmp_path / "cut", cfg, tokenizer=tok)
    cut_kl = run_unlearning(injected, release, "forget05", "kl", tmp_path / "cut_kl", overrides=kl)
    assert capsys.readouterr().out.count("resuming at epoch 3") == 2
    for a, b in ((whole, cut), (whole_kl, cut_kl)):
        wa, wb = _weights(a), _weights(b)
        assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
        assert not (Path(b) / "checkpoint.safetensors").exists()
    history = lambda folder, name, key="loss_by_epoch": json.loads((Path(folder) / name).read_text())[key]  # noqa: E731
    assert history(whole, "injection.json") == history(cut, "injection.json") and len(history(cut, "injection.json")) == 4
    assert history(whole_kl, "unlearning.json") == history(cut_kl, "unlearning.json")
    for a, b, name in ((whole, cut, "injection.json"), (whole_kl, cut_kl, "unlearning.json")):  # the steps of the first run come from its checkpoint
        assert history(a, name, "loss_by_step") == history(b, name, "loss_by_step") and len(history(b, name, "loss_by_step")) > 4


def test_a_checkpoint_of_another_run_is_not_resumed(release, tmp_path, monkeypatch, capsys):
    tok = train_tokenizer(release_texts(release))
    cfg = InjectConfig(tiny=SMALL, train=TrainConfig(epochs=3), world=False)
    with monkeypatch.context() as m:
        _interrupt_after_epoch(m, 1)
        with pytest.raises(KeyboardInterrupt):
            inject(release, tmp_path / "m", cfg, tokenizer=tok)
    capsys.readouterr()
    other = replace(cfg, train=TrainConfig(epochs=3, lr=1e-3))
    out = inject(release, tmp_path / "m", other, tokenizer=tok)
    assert "resuming" not in capsys.readouterr().out
    assert len(json.loads((out / "injection.json").read_text())["loss_by_epoch"]) == 3
