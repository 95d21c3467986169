"""``entity-unlearn attack``: run robustness attacks on an unlearned model (and on the reference model), evaluate
each attacked model or prompt on the forget set with the evaluator, and summarise recovery
(``eval/robustness.py``) in ``robustness.json``, ``robustness.md`` and ``robustness.png``.

Output folder: ``models/<kind>`` and ``reference_models/<kind>`` (attacked weights, with ``attack.json``),
``evals/unlearned``, ``evals/reference``, ``evals/<kind>``, ``evals/reference_<kind>`` (evaluator outputs; each
resumes from its request cache), and the summary. A rerun reuses every finished model and cached request.

Under a launcher (``attack --num-processes N``, torchrun, accelerate launch) every process takes its share of each
evaluation and of each relearning run; process 0 makes the quantised models and writes the summary.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

from entity_unlearn.outputs import write_atomic

from .attack import Attack, attacked_model, get_attack


@dataclass(frozen=True)
class AttackRun:
    model: str
    data: str
    forget: str = "forget05"
    kinds: tuple[str, ...] = ("relearn",)
    out: str = "attack-out"
    reference_model: str | None = None
    before: str | None = None  # results.json of the model before unlearning
    overrides: dict = field(default_factory=dict)  # recipe fields (seed, shots, coverage, backend, ...)
    device: str | None = None
    dtype: str | None = None
    allow_pickle: bool = False
    trust_remote_code: bool = False
    progress: bool = False
    checkpoint: bool = True
    max_new_tokens: int | None = None  # generation budget of every evaluation (default: the evaluator's)

    def options(self) -> dict:
        keys = ("device", "dtype", "allow_pickle", "trust_remote_code", "progress", "checkpoint")
        return {**{k: getattr(self, k) for k in keys}, "explicit": sorted(self.overrides)}


def attack_eval(cfg: AttackRun, name: str, model: str, attack: Attack | None, reference: str | None, memo: dict) -> dict:
    """Evaluate ``model`` on the forget set, under ``attack``'s prompt if it has one, into ``<out>/evals/<name>``."""
    from entity_unlearn.eval.run import EvalConfig, evaluate

    return evaluate(
        EvalConfig(
            model=model,
            data=cfg.data,
            forget=cfg.forget,
            out=str(Path(cfg.out) / "evals" / name),
            reference=reference,
            before=cfg.before,
            device=cfg.device,
            dtype=cfg.dtype,
            allow_pickle=cfg.allow_pickle,
            trust_remote_code=cfg.trust_remote_code,
            progress=cfg.progress,
            sets=("forget",),
            max_new_tokens=cfg.max_new_tokens,
            prompt_attack=attack.prompt() if attack else None,
            robustness_attack=attack.name if attack else "none",
        ),
        memo,
    )


def summarise(kinds: tuple[str, ...], attacks: Mapping[str, Attack], results: Mapping[str, dict | None], data: str, forget: str) -> dict:
    """Robustness aggregates of one unlearned model. ``results``: evaluator results under the keys ``before``,
    ``unlearned``, ``reference`` and ``attacked:<kind>``, ``reference:<kind>`` (None where not run)."""
    from entity_unlearn.eval import robustness as R

    rows = {k: (v["rows"] if v else None) for k, v in results.items()}
    aggregates, surviving = [], {}
    if rows.get("reference") is not None and rows.get("unlearned") is not None:
        surviving["none"] = R.surviving_entities(rows["unlearned"], rows["reference"])
    for kind in kinds:
        keep = attacks[kind].keep(data, forget)
        five = {
            "before": rows.get("before"),
            "unlearned": rows.get("unlearned"),
            "attacked": rows.get(f"attacked:{kind}"),
            "reference": rows.get("reference"),
            "reference_attacked": rows.get(f"reference:{kind}"),
        }
        aggregates += R.robustness_rows(kind, five, keep)
        if five["attacked"] is not None and five["reference_attacked"] is not None:
            surviving[kind] = R.surviving_entities(five["attacked"], five["reference_attacked"], keep)
    if surviving:
        aggregates.append(R.robust_survival_row(surviving))
    shares = {k: (len(s) / len(a) if a else None) for k, (s, a) in surviving.items()}
    return {"aggregates": aggregates, "surviving_entity_share": shares, "surviving_entities": {k: sorted(s) for k, (s, _) in surviving.items()}}


def bin_crossing(before_model: str | None, model: str) -> dict | None:
    """Share of quantised weights whose NF4 / int8 code changed between the model before unlearning and this one."""
    if not before_model or not Path(before_model).is_dir():
        return None
    from transformers import AutoModelForCausalLM

    from . import quant

    a = AutoModelForCausalLM.from_pretrained(before_model, dtype="float32")
    b = AutoModelForCausalLM.from_pretrained(model, dtype="float32")
    return {mode: quant.bin_crossing_share(a, b, mode) for mode in quant.MODES}


def run_attacks(cfg: AttackRun) -> dict | None:
    """``entity-unlearn attack``: every attack of ``cfg.kinds``; returns what robustness.json holds (on many
    processes, process 0 does; the others return None)."""
    from entity_unlearn.eval.ranks import ranks_from_env
    from entity_unlearn.eval.run import read_result

    out = Path(cfg.out)
    attacks = {k: get_attack(k, **cfg.overrides) for k in cfg.kinds}
    memo: dict = {}
    before = read_result(cfg.before, "before") if cfg.before else None
    results: dict[str, dict | None] = {"before": before}
    ref_path = lambda name: str(out / "evals" / name)  # noqa: E731
    if cfg.reference_model:
        results["reference"] = attack_eval(cfg, "reference", cfg.reference_model, None, None, memo)
    results["unlearned"] = attack_eval(cfg, "unlearned", cfg.model, None, ref_path("reference") if cfg.reference_model else None, memo)
    records = {}
    for kind, attack in attacks.items():
        model, reference = cfg.model, cfg.reference_model
        if attack.changes_weights:
            model = str(attacked_model(attack, cfg.model, cfg.data, cfg.forget, out / "models" / kind, cfg.options()))
            records[kind] = json.loads((Path(model) / "attack.json").read_text(encoding="utf-8"))
            if reference:
                reference = str(attacked_model(attack, reference, cfg.data, cfg.forget, out / "reference_models" / kind, cfg.options()))
        if reference:
            results[f"reference:{kind}"] = attack_eval(cfg, f"reference_{kind}", reference, attack, None, memo)
        results[f"attacked:{kind}"] = attack_eval(cfg, kind, model, attack, ref_path(f"reference_{kind}") if reference else None, memo)
    if not ranks_from_env().main:  # every evaluation and model is on disk: process 0 summarises them
        return None
    summary = summarise(cfg.kinds, attacks, results, cfg.data, cfg.forget)
    report = {
        "format": "entity-unlearn-robustness/1",
        "config": {k: v for k, v in asdict(cfg).items() if k != "progress"},
        "recipes": {k: {"name": a.name, **asdict(a)} for k, a in attacks.items()},
        "attacked_models": records,
        "bin_crossing": bin_crossing(before["spec"]["model"]["path"] if before else None, cfg.model)
        if any(k.startswith("quant") for k in cfg.kinds)
        else None,
        "forget_metrics": {key: forget_table(res) for key, res in results.items() if res is not None},
        **summary,
    }
    write_atomic(out / "robustness.json", json.dumps(report, indent=1, sort_keys=True, allow_nan=False, default=str))
    (out / "robustness.md").write_text(render(report), encoding="utf-8")
    plot_recovery({"model": report["aggregates"]}, cfg.kinds, out / "robustness.png")
    return report


def forget_table(result: dict) -> dict:
    """prob and ROUGE-L recall of the forget set by depth (no world prompt attack), and the surviving share."""
    from entity_unlearn.eval.robustness import DEPTHS

    out = {}
    for a in result["aggregates"]:
        if a["set"] == "forget" and a["attack"] == "none" and a["metric"] in ("prob", "rouge_l_recall") and a["depth"] in DEPTHS:
            out[f"{a['metric']}_{a['depth']}"] = a["value"]
        if a["metric"] == "surviving_entity_share" and a["depth"] == "all":
            out["surviving_entity_share"] = a["value"]
    return out


def lookup(aggregates, metric: str, kind: str, depth: str = "all"):
    return next((a["value"] for a in aggregates if a["metric"] == metric and a["robustness_attack"] == kind and a["depth"] == depth), None)


def render(report: dict) -> str:
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    from entity_unlearn.cards import CARD_DIR

    env = Environment(loader=FileSystemLoader(str(CARD_DIR)), undefined=StrictUndefined, keep_trailing_newline=True)
    env.filters["num"] = lambda v: "-" if v is None else f"{v:.3f}"
    kinds = list(report["recipes"])
    table = {k: {m: lookup(report["aggregates"], m, k) for m in METRIC_COLUMNS} for k in kinds}
    for k in kinds:
        table[k]["surviving"] = report["surviving_entity_share"].get(k)
        r, q = lookup(report["aggregates"], "ou_relearning_r", k, "d1"), lookup(report["aggregates"], "ou_quantization_q", k, "d1")
        table[k]["ou"] = r if r is not None else q
    robust = lookup(report["aggregates"], "robust_surviving_entity_share", "any")
    return env.get_template("robustness.md.j2").render(report=report, kinds=kinds, table=table, robust=robust)


METRIC_COLUMNS = ("recovery_prob", "recovery_beyond_reference_prob", "recovery_rouge_l_recall", "recovery_beyond_reference_rouge_l_recall")


def plot_recovery(aggregates_by_model: Mapping[str, list], kinds, path: Path, metric: str = "recovery_beyond_reference_prob") -> None:
    """Models x attacks heatmap of ``metric`` over all depths (one row for a single model)."""
    from matplotlib.figure import Figure

    names = list(aggregates_by_model)
    grid = [[_nan(lookup(aggregates_by_model[n], metric, k)) for k in kinds] for n in names]
    fig = Figure(figsize=(1.3 * len(kinds) + 2.5, 0.5 * len(names) + 2))
    ax = fig.subplots()
    im = ax.imshow(grid, aspect="auto", vmin=-0.2, vmax=1, cmap="magma")
    ax.set_xticks(range(len(kinds)), kinds, rotation=30, ha="right")
    ax.set_yticks(range(len(names)), names)
    for i, row in enumerate(grid):
        for j, v in enumerate(row):
            ax.text(j, i, "-" if v != v else f"{v:.2f}", ha="center", va="center", color="w" if v != v or v < 0.5 else "k", fontsize=8)
    ax.set_title(f"{metric} (all depths): knowledge back beyond the attacked reference")
    fig.colorbar(im, ax=ax)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def _nan(v):
    return float("nan") if v is None else v
