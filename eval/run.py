"""``entity-unlearn eval``: plan, run the passes, compute metrics, write a self-describing result.

Output folder: ``results.json`` (spec, aggregates, per-item rows, per-entity
survival), ``report.md``, ``depth_profile.png``, ``entity_heatmap.png`` and
``cache/`` (the request cache that makes an interrupted run resume).
"""

from __future__ import annotations

import copy
import json
import math
import os
import platform
from dataclasses import asdict, dataclass
from pathlib import Path

from entity_unlearn import __version__

from . import aggregate as A
from .data import DataError, load_items, open_release
from .formatting import Formatter
from .metrics import METRICS
from .model import CausalLM, file_hashes
from .passes import RequestCache, plan, run_passes
from .prompt_attacks import describe
from .rows import build_rows

RESULT_FORMAT = "entity-unlearn-result/1"


@dataclass(frozen=True)
class EvalConfig:
    model: str
    data: str
    forget: str = "forget05"
    out: str = "eval-out"
    reference: str | None = None
    before: str | None = None
    chat_template: str = "auto"
    device: str | None = None
    dtype: str | None = None
    allow_pickle: bool = False
    trust_remote_code: bool = False
    max_new_tokens: int = 48
    batch_groups: int = 16
    batch_generate: int = 32
    seed: int = 0
    progress: bool = True
    sets: tuple[str, ...] | None = None  # evaluate only these sets (a robustness attack needs the forget set only)
    prompt_attack: object | None = None  # eval.prompt_attacks.InContext / Prefill: changes every item's prompt
    robustness_attack: str = "none"  # the robustness attack this model or prompt went through; every aggregate carries it


def read_result(path: str | Path, what: str) -> dict:
    p = Path(path)
    if p.is_dir():
        p = p / "results.json"
    if not p.is_file():
        raise DataError(f"--{what} {path}: no results.json there; give the results.json of an earlier `entity-unlearn eval`")
    result = json.loads(p.read_text(encoding="utf-8"))
    if result.get("format") != RESULT_FORMAT:
        raise DataError(f"--{what} {p}: not an entity-unlearn result (format {result.get('format')!r})")
    return result


def _check_same_data(result: dict, spec: dict, what: str, path: str) -> None:
    theirs, ours = result["spec"]["dataset"], spec["dataset"]
    if theirs["manifest_sha256"] != ours["manifest_sha256"] or result["spec"]["forget"] != spec["forget"]:
        raise DataError(
            f"--{what} {path}: it was computed on {theirs['path']} version {theirs.get('version')} ({result['spec']['forget']}), "
            f"not on {ours['path']} version {ours.get('version')} ({spec['forget']}); rerun it on this release"
        )


def evaluate(cfg: EvalConfig, memo: dict | None = None) -> dict:
    """Run the whole evaluation; returns the result dict that is also written to ``results.json``.

    ``memo``: a dict the caller keeps across calls (a study evaluating many models of one release)
    to reuse the loaded items and the tokenised plan when the release and tokenizer are the same.
    """
    import torch

    torch.manual_seed(cfg.seed)
    release = open_release(cfg.data)
    reference = read_result(cfg.reference, "reference") if cfg.reference else None
    before = read_result(cfg.before, "before") if cfg.before else None
    items_key = ("items", release.path, release.revision, release.manifest_sha256, cfg.forget)
    if memo is None or items_key not in memo:
        loaded = load_items(release, cfg.forget)
        if memo is not None:
            memo.clear()  # one release at a time: a long-lived memo never grows
            memo[items_key] = loaded
    items, selection = memo[items_key] if memo is not None else loaded
    selection = copy.deepcopy(selection)  # goes into this result's spec; the memo keeps its own
    if cfg.sets is not None:
        items = [i for i in items if i.set in cfg.sets]
    if cfg.prompt_attack is not None:
        items = cfg.prompt_attack.apply(items, release)
    items_key = (*items_key, cfg.sets, repr(cfg.prompt_attack))  # the plan memo below: these items, not the release's
    lm = CausalLM(cfg.model, cfg.device, cfg.dtype, cfg.allow_pickle, cfg.trust_remote_code)
    formatter = Formatter(lm.tokenizer, cfg.chat_template)
    spec = {
        "dataset": {
            "path": release.path,
            "revision": release.revision,
            "version": release.manifest.get("version"),
            "seed": release.manifest.get("seed"),
            "manifest_sha256": release.manifest_sha256,
        },
        "forget": cfg.forget,
        "selection": selection,
        "model": {
            "path": cfg.model,
            "fingerprint": lm.fingerprint(),
            "files_sha256": file_hashes(cfg.model),
            "device": lm.device,
            "dtype": str(lm.dtype).replace("torch.", ""),
            "padding": lm.pad_note,
        },
        "prompt_format": {"kind": formatter.kind, "template_sha256": formatter.template_sha256, "chat_template_option": cfg.chat_template},
        "decoding": {"greedy": True, "max_new_tokens": cfg.max_new_tokens, "stop": "end-of-turn token or newline"},
        "metrics": {name: {"version": m.version, "higher_is_better": m.higher_is_better} for name, m in sorted(METRICS.items())},
        "package": {
            "entity_unlearn": __version__,
            "python": platform.python_version(),
            "torch": torch.__version__,
            "transformers": __import__("transformers").__version__,
        },
        "seed": cfg.seed,
        "sets": list(cfg.sets) if cfg.sets is not None else None,
        "robustness_attack": {"kind": cfg.robustness_attack, "prompt": describe(cfg.prompt_attack)},
    }
    for what, other, path in (("reference", reference, cfg.reference), ("before", before, cfg.before)):
        if other is not None:
            _check_same_data(other, spec, what, path)  # type: ignore[arg-type]
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    plan_key = ("plan", items_key, formatter.fingerprint())
    if memo is not None and plan_key[2] is not None and plan_key in memo:
        p = memo[plan_key]
    else:
        p = plan(items, formatter)
        if memo is not None and plan_key[2] is not None:
            memo[plan_key] = p
    cache = RequestCache(out / "cache", f"{lm.fingerprint()}:{formatter.template_sha256}")
    stats = run_passes(p, lm, formatter, cache, cfg.max_new_tokens, cfg.batch_groups, cfg.batch_generate, cfg.progress)
    spec["passes"] = {k: asdict(v) for k, v in stats.items()}
    spec["plan"] = {"items": len(items), "continuations_requested": p.requested, "continuations_unique": p.n_score(), "contexts": len(p.contexts)}
    rows = build_rows(items, p, cache)
    aggregates = A.grouped_metrics(rows)
    aggregates += A.utility_rows(aggregates)
    aggregates += A.mia_rows(rows, reference["aggregates"] if reference else None)
    entities: list[dict] = []
    if reference:
        aggregates += A.forget_quality_rows(rows, reference["rows"])
        surv, entities = A.survival(rows, reference["rows"])
        aggregates += surv
    if before:
        aggregates += A.efficacy_rows(aggregates, before["aggregates"])
    for a in aggregates:  # a separate key: ``attack`` keeps its meaning (the probes' own prompt attacks)
        a["robustness_attack"] = cfg.robustness_attack
    result = {"format": RESULT_FORMAT, "spec": spec, "aggregates": aggregates, "entities": entities, "rows": rows}
    tmp = out / "results.json.tmp"
    tmp.write_text(json.dumps(_finite(result), indent=1, sort_keys=True, allow_nan=False), encoding="utf-8")
    os.replace(tmp, out / "results.json")
    from .report import write_report

    write_report(result, out, reference)
    return result


def _finite(value):
    """NaN and infinities become null: JSON has no spelling for them, and readers must see them as missing."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value
