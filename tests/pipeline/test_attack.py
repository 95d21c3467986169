"""Robustness attacks on the tiny model (issue 14): the attack command end to end, the issue's checks, and the
study's robustness matrix with seeds."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from pipeline_fixtures import FAST_UNLEARN, SMALL, injected, release  # noqa: F401  (fixtures)

from entity_unlearn.cli import main
from entity_unlearn.eval import robustness as R
from entity_unlearn.eval.run import EvalConfig, evaluate
from entity_unlearn.pipeline.attack import ATTACKS, Relearn, get_attack
from entity_unlearn.pipeline.finetune import TrainConfig
from entity_unlearn.pipeline.inject import inject_tiny, release_texts
from entity_unlearn.pipeline.tiny import train_tokenizer
from entity_unlearn.pipeline.unlearn import run_unlearning


@pytest.fixture(scope="module")
def models(release, injected, tmp_path_factory):
    d = tmp_path_factory.mktemp("attack-models")
    tok = train_tokenizer(release_texts(release))
    reference = inject_tiny(release, d / "reference", exclude="forget05", tokenizer=tok, tiny=SMALL, train=TrainConfig(epochs=25))
    ga = run_unlearning(injected, release, "forget05", "ga", d / "ga", overrides=FAST_UNLEARN)
    before = d / "eval-target"
    evaluate(EvalConfig(model=injected, data=release, out=str(before), sets=("forget",), progress=False))
    return {"reference": str(reference), "ga": str(ga), "before": str(before / "results.json")}


@pytest.fixture(scope="module")
def attacked(release, models, tmp_path_factory):
    out = tmp_path_factory.mktemp("attack") / "ga"
    argv = ["attack", "--model", models["ga"], "--data", release, "--kind", "all", "--out", str(out), "--quiet"]
    assert main([*argv, "--reference-model", models["reference"], "--before", models["before"]]) == 0
    return out


def results(out: Path, name: str) -> dict:
    return json.loads((out / "evals" / name / "results.json").read_text())


def prob(rows, keep=None, depth="all"):
    return R.by_depth(R.forget_rows(rows, keep), "prob")[depth]


def test_attack_all_writes_every_attack_and_the_summary(attacked, capsys):
    report = json.loads((attacked / "robustness.json").read_text())
    assert set(report["recipes"]) == set(ATTACKS) and (attacked / "robustness.md").is_file() and (attacked / "robustness.png").stat().st_size > 1000
    kinds = {a["robustness_attack"] for a in report["aggregates"]}
    assert kinds == set(ATTACKS) | {"any"}
    for kind in ("relearn", "relearn_known", "retain_finetune", "quant8", "quant4"):
        record = json.loads((attacked / "models" / kind / "attack.json").read_text())
        assert record["attack"] == kind and (attacked / "reference_models" / kind / "model.safetensors").is_file()
    assert json.loads((attacked / "models" / "relearn" / "attack.json").read_text())["preset"] == "tiny"
    res = results(attacked, "in_context")
    assert res["spec"]["robustness_attack"] == {"kind": "in_context", "prompt": {"name": "in_context", "shots": 5, "seed": 0}}
    assert {a["robustness_attack"] for a in res["aggregates"]} == {"in_context"} and {r["set"] for r in res["rows"]} == {"forget"}
    assert {a["robustness_attack"] for a in results(attacked, "unlearned")["aggregates"]} == {"none"}
    robust = next(a for a in report["aggregates"] if a["metric"] == "robust_surviving_entity_share")
    assert robust["value"] >= max(v for v in report["surviving_entity_share"].values() if v is not None)
    assert report["bin_crossing"]["nf4"]["code_changed"] < report["bin_crossing"]["int8"]["code_changed"]
    assert "robust_surviving_entity_share" in (attacked / "robustness.md").read_text()


def test_in_context_k5_raises_forget_rouge_of_the_unlearned_model(attacked):
    rouge = lambda name: R.by_depth(R.forget_rows(results(attacked, name)["rows"]), "rouge_l_recall")["all"]  # noqa: E731
    assert rouge("in_context") > rouge("unlearned") + 0.05, (rouge("in_context"), rouge("unlearned"))


def test_relearning_half_the_facts_raises_held_out_facts_above_the_reference(release, attacked):
    """Deeb & Roger's finding on our data: after relearning 50% of each entity's facts, the GA-unlearned model
    knows the other 50% better than the reference relearned the same way."""
    keep = get_attack("relearn_known").keep(release, "forget05")
    held = {name: prob(results(attacked, name)["rows"], keep) for name in ("relearn_known", "reference_relearn_known", "unlearned")}
    assert held["relearn_known"] > held["reference_relearn_known"], held
    assert held["relearn_known"] > held["unlearned"], held


def test_quant8_of_an_injected_model_changes_forget_prob_less_than_quant4(release, injected, tmp_path):
    before = evaluate(EvalConfig(model=injected, data=release, out=str(tmp_path / "e"), sets=("forget",), progress=False))["rows"]
    change = {}
    for kind in ("quant8", "quant4"):
        from entity_unlearn.pipeline.attack import attacked_model

        model = attacked_model(get_attack(kind), injected, release, "forget05", tmp_path / kind, {})
        rows = evaluate(EvalConfig(model=str(model), data=release, out=str(tmp_path / f"e-{kind}"), sets=("forget",), progress=False))["rows"]
        change[kind] = abs(prob(rows) - prob(before))
    assert change["quant8"] < change["quant4"], change


def test_each_attack_is_deterministic_under_its_seed(release, models, tmp_path):
    from safetensors.torch import load_file

    from entity_unlearn.pipeline.attack import attacked_model

    weights = {}
    for name, attack in (("a", Relearn()), ("b", Relearn()), ("c", Relearn(seed=1))):
        folder = attacked_model(attack, models["ga"], release, "forget05", tmp_path / name, {})
        weights[name] = load_file(str(folder / "model.safetensors"))
    same = lambda x, y: all((weights[x][k] == weights[y][k]).all() for k in weights[x])  # noqa: E731
    assert same("a", "b") and not same("a", "c")
    for kind in ("quant4", "quant8"):
        a = attacked_model(get_attack(kind), models["ga"], release, "forget05", tmp_path / f"{kind}1", {})
        b = attacked_model(get_attack(kind), models["ga"], release, "forget05", tmp_path / f"{kind}2", {})
        wa, wb = load_file(str(a / "model.safetensors")), load_file(str(b / "model.safetensors"))
        assert all((wa[k] == wb[k]).all() for k in wa)
    # the prompt attacks: tests/eval/test_prompt_attacks.py (same seed, same items; another seed, others)


def test_bad_attack_input_gets_one_clear_error(release, models, tmp_path, capsys):
    assert main(["attack", "--model", models["ga"], "--data", release, "--kind", "quant3", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "--kind quant3" in err and re.search(r"did you mean 'quant[48]'", err)
    assert main(["study", "--data", release, "--out", str(tmp_path / "s"), "--methods", "gd", "--robustness-methods", "ga"]) == 2
    assert "--robustness-methods ga" in capsys.readouterr().err


def test_study_runs_the_robustness_matrix_with_seeds(release, tmp_path):
    from entity_unlearn.pipeline.study import StudyConfig, run_study

    cfg = StudyConfig(
        data=release,
        out=str(tmp_path / "study"),
        methods=("ga",),
        coverage_methods=(),
        deep_method=None,
        seeds=2,
        robustness_methods=("ga",),
        attacks=("relearn", "prefill"),  # one weight attack, one prompt attack
        progress=False,
        unlearn_overrides={"epochs": 2, **FAST_UNLEARN},
        tiny=SMALL,
        inject_train=TrainConfig(epochs=4, batch_size=32),
    )
    report = run_study(cfg)
    steps = set(report["steps"])
    assert {"ga", "ga_seed1", "eval_ga_seed1", "reference_relearn", "ga_relearn", "eval_ga_prefill", "eval_reference_prefill"} <= steps
    assert "reference_prefill" not in steps  # a prompt attack needs no model
    row = next(r for r in report["table"] if r["model"] == "ga")
    assert row["seeds"] == 2 and row["sd"]["forget_prob"] is not None and row["sd"]["forget_prob"] >= 0
    assert set(report["robustness"]["ga"]["surviving_entity_share"]) == {"none", "relearn", "prefill"}
    assert report["machine"]["cpu"] and report["machine"]["torch"] and "cpu_capability" in report["machine"]
    assert report["findings"][0]["tested"] is True
    text = (tmp_path / "study" / "study.md").read_text()
    assert "Robustness: does unlearned knowledge come back?" in text and " ± " in text and "## Machine" in text
    assert (tmp_path / "study" / "robustness.png").stat().st_size > 1000
