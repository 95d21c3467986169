"""Robustness attacks on the tiny model (issue 14): the attack command end to end, the issue's checks, and the
study's robustness matrix with seeds.

Cost: generation is cut to a few tokens wherever ROUGE is not what a test checks (GEN_TOKENS for the attack
run, whose in_context check compares ROUGE of two runs under the same budget), attack evaluations score the
forget set only, and the determinism check relearns one epoch."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from pipeline_fixtures import FAST_UNLEARN, SMALL, injected, release  # noqa: F401  (fixtures)

from entity_unlearn.cli import main
from entity_unlearn.eval import robustness as R
from entity_unlearn.eval.run import EvalConfig, evaluate, read_result
from entity_unlearn.pipeline.attack import ATTACKS, Relearn, get_attack
from entity_unlearn.pipeline.finetune import TrainConfig
from entity_unlearn.pipeline.unlearn import run_unlearning

GEN_TOKENS = 12  # covers the short answers the ROUGE-based checks read; the evaluator's default is 48


@pytest.fixture(scope="module")
def models(release, lab_models, tmp_path_factory):
    d = tmp_path_factory.mktemp("attack-models")
    lab = lab_models("target", "ref")  # the injected model and the reference: its recipe without forget05
    target, reference = lab["target"], lab["ref"]
    ga = run_unlearning(target, release, "forget05", "ga", d / "ga", overrides=FAST_UNLEARN)
    before = d / "eval-target"
    evaluate(EvalConfig(model=target, data=release, out=str(before), sets=("forget",), progress=False, max_new_tokens=GEN_TOKENS))
    return {"reference": str(reference), "ga": str(ga), "before": str(before / "results.json")}


@pytest.fixture(scope="module")
def attacked(release, models, tmp_path_factory):
    out = tmp_path_factory.mktemp("attack") / "ga"
    argv = ["attack", "--model", models["ga"], "--data", release, "--kind", "all", "--out", str(out), "--quiet", "--max-new-tokens", str(GEN_TOKENS)]
    assert main([*argv, "--reference-model", models["reference"], "--before", models["before"]]) == 0
    return out


def results(out: Path, name: str) -> dict:
    return read_result(out / "evals" / name, name)  # the per-item rows come from the sidecar beside results.json


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
    relearned = json.loads((attacked / "models" / "relearn" / "attack.json").read_text())
    assert relearned["preset"] == "tiny" and relearned["recipe_used"]["epochs"] == 10 and len(relearned["loss_by_epoch"]) == 10
    res = results(attacked, "in_context")
    assert res["spec"]["robustness_attack"] == {"kind": "in_context", "prompt": {"name": "in_context", "shots": 5, "seed": 0}}
    assert {a["robustness_attack"] for a in res["aggregates"]} == {"in_context"} and {r["set"] for r in res["rows"]} == {"forget"}
    assert {a["robustness_attack"] for a in results(attacked, "unlearned")["aggregates"]} == {"none"}
    robust = next(a for a in report["aggregates"] if a["metric"] == "robust_surviving_entity_share")
    assert robust["value"] >= max(v for v in report["surviving_entity_share"].values() if v is not None)
    assert report["bin_crossing"]["nf4"]["code_changed"] < report["bin_crossing"]["int8"]["code_changed"]
    assert "robust_surviving_entity_share" in (attacked / "robustness.md").read_text()


def test_in_context_k5_reaches_the_model_and_its_recovery_is_measured(attacked):
    """The issue's check "in-context k=5 raises forget ROUGE of an unlearned model" does not hold at this scale
    (bench/relearn_known.py prints it: GA 0.111 -> 0.128, NPO+GD 0.133 -> 0.120, the reference 0.201 -> 0.115;
    the tiny model was trained on single-turn QA only). What holds and is checked: the five earlier turns reach
    the model (its answers and probabilities change; a plan cache that ignored them once made them identical),
    and the recovery reported is the one the rows give."""
    plain, attacked_rows = (R.forget_rows(results(attacked, name)["rows"]) for name in ("unlearned", "in_context"))
    by_id = {r["item_id"]: r for r in plain}
    assert len(attacked_rows) == len(plain) > 20
    changed = sum(r["generation"] != by_id[r["item_id"]]["generation"] for r in attacked_rows)
    moved = sum(abs(r["logp_answer"] - by_id[r["item_id"]]["logp_answer"]) > 1e-4 for r in attacked_rows)
    assert changed > len(plain) / 4 and moved > len(plain) * 0.9, (changed, moved, len(plain))
    report = json.loads((attacked / "robustness.json").read_text())
    rouge = {name: R.by_depth(R.forget_rows(results(attacked, name)["rows"]), "rouge_l_recall")["all"] for name in ("unlearned", "in_context")}
    before = R.by_depth(R.forget_rows(read_result(report["config"]["before"], "before")["rows"]), "rouge_l_recall")["all"]
    value = next(
        a["value"]
        for a in report["aggregates"]
        if a["metric"] == "recovery_rouge_l_recall" and a["robustness_attack"] == "in_context" and a["depth"] == "all"
    )
    assert value == pytest.approx(R.recovery(rouge["in_context"], rouge["unlearned"], before)), (value, rouge, before)


def test_relearning_half_the_facts_raises_held_out_facts_above_the_reference(release, attacked):
    """Deeb & Roger's finding on our data: after relearning 50% of each entity's facts, the GA-unlearned model
    knows the other 50% better than the reference relearned the same way."""
    keep = get_attack("relearn_known").keep(release, "forget05")
    held = {name: prob(results(attacked, name)["rows"], keep) for name in ("relearn_known", "reference_relearn_known", "unlearned")}
    assert held["relearn_known"] > held["reference_relearn_known"], held
    assert held["relearn_known"] > held["unlearned"], held


def test_quant8_of_an_injected_model_changes_forget_prob_less_than_quant4(release, injected, models, tmp_path):
    before = read_result(models["before"], "before")["rows"]  # the injected model, unattacked
    change = {}
    for kind in ("quant8", "quant4"):
        from entity_unlearn.pipeline.attack import attacked_model

        model = attacked_model(get_attack(kind), injected, release, "forget05", tmp_path / kind, {})
        ecfg = EvalConfig(model=str(model), data=release, out=str(tmp_path / f"e-{kind}"), sets=("forget",), progress=False, max_new_tokens=1)
        rows = evaluate(ecfg)["rows"]  # prob is what is compared: generation cut to one token
        change[kind] = abs(prob(rows) - prob(before))
    assert change["quant8"] < change["quant4"], change


def test_each_attack_is_deterministic_under_its_seed(release, models, tmp_path):
    from safetensors.torch import load_file

    from entity_unlearn.pipeline.attack import attacked_model

    weights = {}
    one_epoch = {"explicit": ["epochs"]}  # the tiny preset's 10 epochs are not needed to tell seeds apart
    for name, attack in (("a", Relearn(epochs=1)), ("b", Relearn(epochs=1)), ("c", Relearn(epochs=1, seed=1))):
        folder = attacked_model(attack, models["ga"], release, "forget05", tmp_path / name, one_epoch)
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
        max_new_tokens=4,  # nothing here reads ROUGE
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
