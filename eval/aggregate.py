"""Aggregates: every metric grouped by set x depth x attack, plus the cross-set and
cross-model numbers (forget quality, model utility, MIA, efficacy, surviving knowledge).

Each aggregate is a flat dict ``{metric, set, depth, attack, value, n, higher_is_better}``.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence

from . import metrics as M

GROUPED = ("prob", "rouge_l_recall", "truth_ratio", "mc_accuracy")
UTILITY_SETS = ("retain", "neighbor", "world")
HEADLINE = ("d1", "none")  # TOFU's numbers are direct questions without attacks


def _agg(metric: str, set_: str, depth: str, attack: str, value: float, n: int, higher: bool | None) -> dict:
    return {
        "metric": metric,
        "set": set_,
        "depth": depth,
        "attack": attack,
        "value": None if value is None or math.isnan(value) else float(value),
        "n": n,
        "higher_is_better": higher,
    }


def _slices(rows: Sequence[dict]) -> dict[tuple[str, str, str], list[dict]]:
    """(set, depth, attack) -> rows, with depth 'all' and attack 'all' as extra slices."""
    out: dict[tuple[str, str, str], list[dict]] = defaultdict(list)
    for r in rows:
        for depth in (r["depth"], "all"):
            for attack in {r["attack"], "all"}:
                out[(r["set"], depth, attack)].append(r)
    return out


def grouped_metrics(rows: Sequence[dict]) -> list[dict]:
    out = []
    for (set_, depth, attack), group in sorted(_slices(rows).items()):
        for name in GROUPED:
            info = M.get_metric(name)
            if name == "rouge_l_recall" and not any("rouge_l_recall" in r for r in group):
                continue
            higher = info.higher_is_better if name != "truth_ratio" else (None if set_ == "forget" else True)
            out.append(_agg(name, set_, depth, attack, info.fn(group), len(group), higher))
    return out


def _by_id(rows: Iterable[dict]) -> dict[str, dict]:
    return {r["item_id"]: r for r in rows}


def forget_quality_rows(rows: Sequence[dict], reference: Sequence[dict]) -> list[dict]:
    """KS p-value per depth (attack 'none') between this model's and the reference's forget truth ratios."""
    ref = _by_id(r for r in reference if r["set"] == "forget")
    out = []
    slices = _slices([r for r in rows if r["set"] == "forget" and r["item_id"] in ref])
    for (set_, depth, attack), group in sorted(slices.items()):
        if attack != "none":
            continue
        value = M.forget_quality(group, [ref[r["item_id"]] for r in group])
        out.append(_agg("forget_quality", set_, depth, attack, value, len(group), True))
    return out


def utility_rows(aggregates: Sequence[dict]) -> list[dict]:
    """Harmonic mean of prob, ROUGE-L recall and truth ratio on retain, neighbour and world (d1, no attack)."""
    depth, attack = HEADLINE
    parts = [
        a["value"]
        for a in aggregates
        if a["set"] in UTILITY_SETS and a["depth"] == depth and a["attack"] == attack and a["metric"] in ("prob", "rouge_l_recall", "truth_ratio")
    ]
    present = {a["set"] for a in aggregates if a["set"] in UTILITY_SETS and a["depth"] == depth}
    n = sum(a["n"] for a in aggregates if a["set"] in UTILITY_SETS and a["depth"] == depth and a["attack"] == attack and a["metric"] == "prob")
    value = M.model_utility([float("nan") if v is None else v for v in parts]) if len(parts) == 3 * len(UTILITY_SETS) else float("nan")
    return [_agg("model_utility", "+".join(s for s in UTILITY_SETS if s in present), depth, attack, value, n, True)]


def mia_rows(rows: Sequence[dict], reference_aggregates: Sequence[dict] | None) -> list[dict]:
    """AUC of each membership attack, forget (members) vs holdout (non-members), direct questions; privleak with a reference."""
    depth, attack = HEADLINE
    forget = [r for r in rows if r["set"] == "forget" and r["depth"] == depth and r["attack"] == attack]
    holdout = [r for r in rows if r["set"] == "holdout" and r["depth"] == depth and r["attack"] == attack]
    out = []
    for name in M.MIA_ATTACKS:
        auc = M.mia_auc(forget, holdout, name)
        out.append(_agg(f"mia_auc_{name}", "forget", depth, attack, auc, len(forget) + len(holdout), None))
        ref = next((a for a in reference_aggregates or () if a["metric"] == f"mia_auc_{name}"), None)
        if ref is not None and ref["value"] is not None and not math.isnan(auc):
            out.append(_agg(f"privleak_{name}", "forget", depth, attack, M.privleak(auc, ref["value"]), len(forget) + len(holdout), None))
    return out


def efficacy_rows(aggregates: Sequence[dict], before: Sequence[dict]) -> list[dict]:
    """1 - after / before for prob, ROUGE-L recall and MC accuracy, per set, depth and attack."""
    prior = {(a["metric"], a["set"], a["depth"], a["attack"]): a for a in before}
    out = []
    for a in aggregates:
        if a["metric"] not in ("prob", "rouge_l_recall", "mc_accuracy"):
            continue
        b = prior.get((a["metric"], a["set"], a["depth"], a["attack"]))
        if b is None or a["value"] is None or b["value"] is None:
            continue
        higher = True if a["set"] == "forget" else False  # forgetting elsewhere is damage
        out.append(_agg(f"efficacy_{a['metric']}", a["set"], a["depth"], a["attack"], M.efficacy(a["value"], b["value"]), a["n"], higher))
    return out


def survival(rows: Sequence[dict], reference: Sequence[dict]) -> tuple[list[dict], list[dict]]:
    """Per forget entity, knowledge that survives: probes this model answers right and the reference does not.

    Returns (aggregates, per-entity records). Aggregates: the share of forget entities with
    surviving knowledge, overall and per depth.
    """
    ref = _by_id(r for r in reference if r["set"] == "forget")
    per_entity: dict[str, dict] = {}
    for r in rows:
        if r["set"] != "forget" or r["item_id"] not in ref:
            continue
        rec = per_entity.setdefault(
            r["entity_id"], {"entity_id": r["entity_id"], "surviving": defaultdict(int), "known": defaultdict(int), "probes": defaultdict(int)}
        )
        rec["probes"][r["depth"]] += 1
        if M.answered_right(r):
            rec["known"][r["depth"]] += 1
            if not M.answered_right(ref[r["item_id"]]):
                rec["surviving"][r["depth"]] += 1
    entities = [{k: dict(v) if isinstance(v, defaultdict) else v for k, v in rec.items()} for _, rec in sorted(per_entity.items())]
    n = len(entities)
    out = []
    if n:
        out.append(_agg("surviving_entity_share", "forget", "all", "all", sum(bool(e["surviving"]) for e in entities) / n, n, False))
        for depth in sorted({d for e in entities for d in e["probes"]}):
            share = sum(e["surviving"].get(depth, 0) > 0 for e in entities) / n
            out.append(_agg("surviving_entity_share", "forget", depth, "all", share, n, False))
    return out, entities
