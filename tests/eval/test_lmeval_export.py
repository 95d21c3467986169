"""``entity-unlearn export --format lm-eval``, read back by a small reader that follows lm-evaluation-harness's
documented layout (results_<date>.json + samples_<task>_<date>.jsonl; "<metric>,<filter>" keys)."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import pytest

from entity_unlearn.cli import main
from entity_unlearn.eval import read_result


def read_lmeval(folder: Path) -> dict:
    """What a tool of lm-eval's world reads: the newest results file and, per task, its samples of the same date
    (task = the name between the first and the last '_', date = after the last '_', as their file helpers do)."""
    results = sorted(folder.rglob("results_*.json"))
    assert results, f"no results_*.json under {folder}"
    path = results[-1]
    date = path.stem[path.stem.rfind("_") + 1 :]
    summary = json.loads(path.read_text(encoding="utf-8"))
    samples = {}
    for f in folder.rglob(f"samples_*_{date}.jsonl"):
        task = f.name[f.name.find("_") + 1 : f.name.rfind("_")]
        samples[task] = [json.loads(line) for line in f.read_text(encoding="utf-8").splitlines()]
    metrics = {}
    for task, values in summary["results"].items():
        for key, value in values.items():
            if key == "alias" or "_stderr," in key:
                continue
            metric, _, filt = key.partition(",")
            metrics[(task, metric)] = {"value": value, "stderr": values[f"{metric}_stderr,{filt}"], "filter": filt}
    return {"summary": summary, "samples": samples, "metrics": metrics, "date": date}


@pytest.fixture(scope="module")
def exported(results, tmp_path_factory):
    out = tmp_path_factory.mktemp("lmeval") / "target"
    assert main(["export", str(results["dir"] / "target"), "--format", "lm-eval", "--out", str(out)]) == 0
    return out


def test_export_reads_back_in_lm_evals_layout_with_every_item_and_number(results, exported):
    got = read_lmeval(exported)
    summary, samples = got["summary"], got["samples"]
    result = read_result(results["dir"] / "target", "result")
    sets = ["forget", "retain", "neighbor", "holdout", "world", "real_authors"]
    assert summary["group_subtasks"]["entity_unlearn"] == [f"entity_unlearn_{s}" for s in sets] and set(samples) == set(
        summary["group_subtasks"]["entity_unlearn"]
    )
    assert got["date"] == result["spec"]["run"]["date"][:19].replace(":", "-")  # the evaluation's own date
    assert summary["git_hash"] == result["spec"]["run"]["project"]["commit"][:7] and summary["date"] > 1.7e9
    assert summary["config"]["model_args"].startswith(f"pretrained={result['spec']['model']['path']}") and summary["config"]["random_seed"] == 0
    for s in sets:
        task, lines = f"entity_unlearn_{s}", samples[f"entity_unlearn_{s}"]
        rows = [r for r in result["rows"] if r["set"] == s]
        assert summary["n-samples"][task] == {"original": len(rows), "effective": len(rows)} and len(lines) == len(rows) > 0
        assert summary["versions"][task] == "1.0.0" and summary["configs"][task]["test_split"] == s
        assert [x["doc_id"] for x in lines] == list(range(len(lines)))
        for line, row in zip(lines, rows):
            assert line["doc"]["item_id"] == row["item_id"] and line["target"] == row["answer"] and line["filter"] == "none"
            assert line["arguments"]["gen_args_0"] == {"arg_0": row["question"], "arg_1": row["answer"]}
            assert line["filtered_resps"] == [str(row["logp_answer"]), row["generation"]]
            assert line["target_hash"] == hashlib.sha256(row["answer"].encode()).hexdigest()
            assert set(line["metrics"]) <= set(line) and "prob" in line["metrics"]
        slices = summary["configs"][task]["metadata"]["slices"]
        for metric in ("prob", "rouge_l_recall", "truth_ratio", "mc_accuracy"):  # a task's number is the mean of its items'
            scored = [x[metric] for x in lines if metric in x]
            if (task, metric) in got["metrics"] and slices[metric]["depth"] == "all" and slices[metric]["attack"] == "all":
                assert got["metrics"][(task, metric)]["value"] == pytest.approx(sum(scored) / len(scored), rel=1e-9), (task, metric)
                assert slices[metric]["n"] == len(scored)
    checked = {(t, m) for t, m in got["metrics"] if t != "entity_unlearn"}
    assert {("entity_unlearn_forget", m) for m in ("prob", "rouge_l_recall", "truth_ratio", "mc_accuracy")} <= checked
    group = {m: v for (t, m), v in got["metrics"].items() if t == "entity_unlearn"}
    assert {"model_utility", "model_utility_entity"} <= set(group)  # metrics over several sets on the group
    assert {"forget_quality", "privleak_min_k", "mia_auc_loss"} <= {m for t, m in got["metrics"] if t == "entity_unlearn_forget"}
    for (task, metric), v in got["metrics"].items():  # every number comes with its bootstrap stderr (or lm-eval's "N/A")
        assert v["filter"] == "none" and (v["stderr"] == "N/A" or (isinstance(v["stderr"], float) and v["stderr"] >= 0))
        assert v["value"] is None or math.isfinite(v["value"])
        assert summary["higher_is_better"][task][metric] in (True, False, None)


def test_export_again_gives_the_same_files_and_bad_input_is_one_clear_error(results, exported, tmp_path, capsys):
    before = {p.name: p.read_bytes() for p in exported.iterdir()}
    assert main(["export", str(results["dir"] / "target"), "--out", str(exported)]) == 0  # an earlier export is replaced
    assert {p.name: p.read_bytes() for p in exported.iterdir()} == before
    capsys.readouterr()
    assert main(["export", str(tmp_path), "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "EVAL_DIR" in err and "no results.json there" in err and len(err.strip().splitlines()) == 1
    (tmp_path / "mine.txt").write_text("a user's file")
    assert main(["export", str(results["dir"] / "target"), "--out", str(tmp_path)]) == 2
    assert "--out" in capsys.readouterr().err and (tmp_path / "mine.txt").read_text() == "a user's file"
