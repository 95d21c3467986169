"""``entity-unlearn export --format lm-eval``: an evaluation as lm-evaluation-harness writes its own runs.

lm-eval's layout (``lm_eval/loggers/evaluation_tracker.py``, their docs' "Results File Format"):

- ``results_<date>.json``: ``results`` (per task: ``alias``, ``<metric>,<filter>`` and
  ``<metric>_stderr,<filter>``; the filter here is always ``none``), ``group_subtasks``, ``configs`` (per task),
  ``versions``, ``n-shot``, ``higher_is_better``, ``n-samples`` (``original``/``effective``), ``config`` (model
  and its arguments, seeds, generation settings), ``git_hash``, ``date`` (Unix time), ``task_hashes``, and the
  model name fields of their general config tracker.
- ``samples_<task>_<date>.jsonl``: one line per document: ``doc_id``, ``doc``, ``target``, ``arguments``
  (``{"gen_args_<i>": {"arg_<j>": ...}}``, their sanitised form), ``resps`` / ``filtered_resps`` (strings, as
  their ``sanitize_list`` leaves them), ``filter``, ``metrics`` (names) and each metric's value, and the SHA-256
  ``doc_hash``, ``prompt_hash``, ``target_hash``.

``<date>`` is the evaluation's own date (``spec.run.date``, UTC, ``:`` written ``-`` as they do), so exporting
twice gives the same files. Tasks are ``entity_unlearn_<set>`` (forget, retain, neighbor, holdout, world,
real_authors) under the group ``entity_unlearn``, which holds the metrics over several sets (model utility);
forget quality, privleak, the MIA AUCs and the surviving-entity share are the forget task's. A task's numbers are its whole set (every depth and prompt attack), each item's metrics are in
its sample line; a metric reported only at its headline slice (direct questions, no attack) is given at that
slice, and ``configs[task].metadata.slices`` says which slice each number is. Differences from lm-eval: files
are written straight into ``--out`` (lm-eval adds a folder per model), and each document is scored by several
requests (the answer's log-likelihood, a greedy generation, paraphrase/perturbed/options log-likelihoods; the
last ones are summarised in ``doc``), not one request type per task.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path

from entity_unlearn.errors import EntityUnlearnError
from entity_unlearn.outputs import check_output, staged

from . import metrics as M
from .catalog import HEADLINE, SETS
from .result_file import finite, load_result

GROUP = "entity_unlearn"
FORMATS = ("lm-eval",)


class ExportError(EntityUnlearnError, ValueError):
    """An evaluation cannot be exported as asked; the message names the option or file."""


def task_name(set_: str) -> str:
    return f"{GROUP}_{set_}"


def sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def item_metrics(row: dict) -> dict[str, float]:
    """The per-item values whose mean over a set is that set's aggregate (``eval/metrics.py``)."""
    out: dict[str, float] = {}
    if row.get("ntok_answer"):
        out["prob"] = M.item_prob_normalised(row) if row["set"] in M.NORMALISED_SETS else M.item_prob(row)
    if row.get("rouge_l_recall") is not None:
        out["rouge_l_recall"] = row["rouge_l_recall"]
    if row.get("logp_perturbed") and row.get("ntok_paraphrase"):
        out["truth_ratio"] = M.truth_ratio_value(M.item_truth_ratio(row), row["set"] == "forget")
    if row.get("logp_options"):
        out["mc_accuracy"] = float(M.item_mc_correct(row))
    return out


def sample(doc_id: int, row: dict, max_new_tokens: int | None) -> dict:
    """One line of ``samples_<task>_<date>.jsonl``."""
    doc = {k: row.get(k) for k in ("item_id", "question", "answer", "short_answer", "entity_id", "depth", "attack", "kind", "fact_ids")}
    doc.update(
        logp_paraphrase=row.get("logp_paraphrase"),
        logp_perturbed=row.get("logp_perturbed"),
        logp_options=row.get("logp_options"),
        answer_index=row.get("answer_index"),
    )
    values = item_metrics(row)
    generation = row.get("generation")
    arguments = {"gen_args_0": {"arg_0": row["question"], "arg_1": row["answer"]}}
    resps = [[str(row["logp_answer"])]]
    if generation is not None:
        arguments["gen_args_1"] = {"arg_0": row["question"], "arg_1": json.dumps({"max_gen_toks": max_new_tokens, "do_sample": False})}
        resps.append([generation])
    return {
        "doc_id": doc_id,
        "doc": doc,
        "target": str(row["answer"]),
        "arguments": arguments,
        "resps": resps,
        "filtered_resps": [r[0] for r in resps],
        "filter": "none",
        "metrics": sorted(values),
        **values,
        "doc_hash": sha(json.dumps(doc, sort_keys=True, ensure_ascii=False)),
        "prompt_hash": sha(row["question"]),
        "target_hash": sha(str(row["answer"])),
    }


def _slice_numbers(aggregates: list[dict], set_: str) -> tuple[dict, dict, dict]:
    """(``<metric>,none`` values and stderrs, higher_is_better, the slice of each) of one task: the whole set
    (depth all, attack all) where the metric has it, else its headline slice."""
    chosen: dict[str, dict] = {}
    for a in aggregates:
        if a["set"] != set_:
            continue
        rank = {("all", "all"): 0, HEADLINE: 1, ("all", "none"): 2}.get((a["depth"], a["attack"]))
        if rank is not None and (a["metric"] not in chosen or rank < chosen[a["metric"]][0]):
            chosen[a["metric"]] = (rank, a)
    numbers, better, slices = {}, {}, {}
    for metric, (_, a) in sorted(chosen.items()):
        numbers[f"{metric},none"] = a["value"]
        numbers[f"{metric}_stderr,none"] = a["stderr"] if a.get("stderr") is not None else "N/A"
        better[metric] = a["higher_is_better"]
        slices[metric] = {"depth": a["depth"], "attack": a["attack"], "n": a["n"]}
    return numbers, better, slices


def _date(spec: dict, results_path: Path) -> tuple[str, float]:
    """(file-name date as lm-eval writes it, Unix time) of the evaluation."""
    text = (spec.get("run") or {}).get("date")
    when = datetime.fromisoformat(text) if text else datetime.fromtimestamp(results_path.stat().st_mtime, UTC)
    when = when.astimezone(UTC).replace(tzinfo=None)
    return when.isoformat().replace(":", "-"), when.replace(tzinfo=UTC).timestamp()


def lmeval_files(result: dict, source: dict) -> dict[str, str]:
    """File name -> text of the lm-eval export of ``result`` (read from ``source``)."""
    spec, rows = result["spec"], result["rows"]
    stamp, unix = _date(spec, Path(source["path"]))
    model, dataset, decoding = spec["model"], spec["dataset"], spec.get("decoding", {})
    present = [s for s in SETS if any(r["set"] == s for r in rows)]
    out: dict[str, str] = {}
    res, configs, versions, nshot, better, nsamples, hashes = {}, {}, {}, {}, {}, {}, {}
    for set_ in present:
        task = task_name(set_)
        lines = [sample(i, r, decoding.get("max_new_tokens")) for i, r in enumerate(r for r in rows if r["set"] == set_)]
        out[f"samples_{task}_{stamp}.jsonl"] = "".join(json.dumps(finite(s), ensure_ascii=False) + "\n" for s in lines)
        numbers, better[task], slices = _slice_numbers(result["aggregates"], set_)
        res[task] = {"alias": set_, **numbers}
        hashes[task] = sha("".join(s["doc_hash"] + s["prompt_hash"] + s["target_hash"] for s in lines))
        nsamples[task] = {"original": len(lines), "effective": len(lines)}
        versions[task] = dataset.get("version")
        nshot[task] = 0
        configs[task] = {
            "task": task,
            "tag": [GROUP],
            "dataset_path": dataset["path"],
            "dataset_name": "probes",
            "revision": dataset.get("revision"),
            "test_split": set_,
            "output_type": "generate_until",
            "num_fewshot": 0,
            "generation_kwargs": {"max_gen_toks": decoding.get("max_new_tokens"), "do_sample": False},
            "metric_list": [{"metric": m, "aggregation": "mean", "higher_is_better": b} for m, b in better[task].items()],
            "metadata": {"version": dataset.get("version"), "forget": spec.get("forget"), "slices": slices},
        }
    group = [a for a in result["aggregates"] if a["set"] not in present]  # over several sets: model utility
    numbers, better[GROUP] = {}, {}
    for a in group:
        if (a["depth"], a["attack"]) in (HEADLINE, ("all", "all"), ("all", "none")) and f"{a['metric']},none" not in numbers:
            numbers[f"{a['metric']},none"] = a["value"]
            numbers[f"{a['metric']}_stderr,none"] = a["stderr"] if a.get("stderr") is not None else "N/A"
            better[GROUP][a["metric"]] = a["higher_is_better"]
    res[GROUP] = {"alias": GROUP, **numbers}
    model_args = ",".join(
        f"{k}={v}" for k, v in (("pretrained", model.get("path")), ("revision", model.get("revision")), ("dtype", model.get("dtype"))) if v
    )
    project = (spec.get("run") or {}).get("project") or {}
    summary = {
        "results": res,
        "groups": {GROUP: res[GROUP]},
        "group_subtasks": {GROUP: [task_name(s) for s in present]},
        "configs": configs,
        "versions": {**versions, GROUP: dataset.get("version")},
        "n-shot": nshot,
        "higher_is_better": better,
        "n-samples": nsamples,
        "config": {
            "model": "hf",
            "model_args": model_args,
            "batch_size": None,
            "device": model.get("device"),
            "limit": None,
            "gen_kwargs": {"max_gen_toks": decoding.get("max_new_tokens"), "do_sample": False},
            "random_seed": spec.get("seed"),
        },
        "git_hash": project.get("commit", "")[:7] or None,
        "date": unix,
        "task_hashes": hashes,
        "model_source": "hf",
        "model_name": model.get("path"),
        "model_name_sanitized": str(model.get("path", "")).replace("/", "__"),
        "entity_unlearn": {"results": source, "command": (spec.get("run") or {}).get("command"), "package": spec.get("package")},
    }
    out[f"results_{stamp}.json"] = json.dumps(finite(summary), indent=2, ensure_ascii=False, allow_nan=False)
    return out


def is_export(folder: Path) -> bool:
    names = [p.name for p in folder.iterdir()]
    return bool(names) and all(n.startswith(("results_", "samples_")) and n.endswith((".json", ".jsonl")) for n in names)


def export(eval_dir: str | Path, out: str | Path, fmt: str = "lm-eval", force: bool = False) -> list[Path]:
    """Write the export of the evaluation in ``eval_dir`` into ``out``; returns the files written."""
    if fmt not in FORMATS:
        raise ExportError(f"--format {fmt}: choose one of {', '.join(FORMATS)}")
    result, source = load_result(eval_dir, "EVAL_DIR")
    folder = check_output(out, "export", is_export, force)
    files = lmeval_files(result, source)
    stale = [p.name for p in folder.iterdir()] if folder.is_dir() and is_export(folder) else []
    with staged(folder, stale) as tmp:
        for name, text in files.items():
            (tmp / name).write_text(text, encoding="utf-8")
    return [folder / name for name in files]
