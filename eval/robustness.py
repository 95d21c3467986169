"""Robustness of unlearning: does an attack bring the forgotten knowledge back? Pure functions over the
per-item rows of five evaluations of the forget set:

- ``before``: the model before unlearning (the injected target), unattacked;
- ``unlearned``: the unlearned model, unattacked;
- ``attacked``: the unlearned model under the attack (relearned, quantised, or asked with an attacked prompt);
- ``reference`` / ``reference_attacked``: the reference model (never trained on the forget entities),
  unattacked and under the same attack. A reference also learns relearned facts and also answers some
  questions from context, so recovery counts only beyond what it reaches.

Per metric m (higher = more knowledge: ``prob``, ``rouge_l_recall``) and depth, over the forget rows of the
probes without a world prompt attack (``attack`` = none), optionally only the rows ``keep`` admits
(``relearn_known``: the facts that were not relearned):

- ``recovery_<m>`` = (m_attacked - m_unlearned) / (m_before - m_unlearned): the share of what unlearning
  removed that the attack restores (the issue's R; 0: nothing back, 1: all of it);
- ``recovery_beyond_reference_<m>`` = (m_attacked - max(m_unlearned, m_reference_attacked)) / (m_before -
  m_unlearned): the same, counting only what rises above the attacked reference;
- ``ou_relearning_r`` (relearning kinds; prob at d1) = min(Δ_reference / Δ_unlearned, 1) with Δ = m after
  relearning - m before relearning: OpenUnlearning's relearning robustness as their paper describes it
  (arXiv 2506.12618 §4, known here second-hand), with m oriented higher = more knowledge; 1: the unlearned
  model relearns no faster than the reference;
- ``ou_quantization_q`` (quantisation kinds; prob at d1) = min(m_unlearned / m_quantised, 1), same
  orientation; 1: quantisation brings nothing back. Neither claims to reproduce OpenUnlearning's numbers.

``robust_surviving_entity_share``: the share of forget entities with a probe that the unlearned model answers
(ROUGE-L recall of the short answer >= 0.5) under some attack, unattacked included, while the reference under
the same attack does not.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence

from . import metrics as M

DEPTHS = ("d0", "d1", "d2", "d3", "d4", "all")
KNOWLEDGE = ("prob", "rouge_l_recall")
RELEARNING = ("relearn", "relearn_known", "retain_finetune")
QUANTISATION = ("quant8", "quant4")
Row = dict
# every aggregate name this module writes (each has a card: cards/metrics/recovery.md, ou_robustness.md, ...)
METRIC_NAMES = (
    *(f"recovery_{m}" for m in KNOWLEDGE),
    *(f"recovery_beyond_reference_{m}" for m in KNOWLEDGE),
    "ou_relearning_r",
    "ou_quantization_q",
    "robust_surviving_entity_share",
)
Keep = Callable[[Row], bool] | None


def forget_rows(rows: Iterable[Row], keep: Keep = None) -> list[Row]:
    """Forget-set rows of probes without a world prompt attack, that ``keep`` admits."""
    return [r for r in rows if r["set"] == "forget" and r["attack"] == "none" and (keep is None or keep(r))]


def by_depth(rows: Sequence[Row], metric: str) -> dict[str, float]:
    """The metric over the rows, per depth and over all depths (NaN where there are none)."""
    fn = getattr(M, metric)  # prob, rouge_l_recall, truth_ratio, mc_accuracy: a value over rows
    return {d: fn([r for r in rows if d in ("all", r["depth"])]) for d in DEPTHS}


def recovery(attacked: float, unlearned: float, before: float) -> float:
    """(attacked - unlearned) / (before - unlearned); NaN when unlearning removed nothing (before <= unlearned)."""
    gap = before - unlearned
    if any(math.isnan(v) for v in (attacked, unlearned, before)) or gap <= 0:
        return float("nan")
    return (attacked - unlearned) / gap


def ou_relearning_r(unlearned: float, unlearned_relearned: float, reference: float, reference_relearned: float) -> float:
    """min(Δ_reference / Δ_unlearned, 1), Δ = m after relearning - m before (m: higher = more knowledge)."""
    d_unl, d_ref = unlearned_relearned - unlearned, reference_relearned - reference
    if any(math.isnan(v) for v in (d_unl, d_ref)) or d_unl <= 0:
        return float("nan") if math.isnan(d_unl) or math.isnan(d_ref) else 1.0  # relearning raised nothing: fully robust
    return min(d_ref / d_unl, 1.0)


def ou_quantization_q(unlearned: float, quantised: float) -> float:
    """min(m_unlearned / m_quantised, 1) (m: higher = more knowledge)."""
    if math.isnan(unlearned) or math.isnan(quantised) or quantised <= 0:
        return float("nan")
    return min(unlearned / quantised, 1.0)


def _agg(metric: str, depth: str, value: float, n: int, higher: bool | None, kind: str) -> dict:
    """An aggregate of robustness.json, shaped like eval's (no bootstrap here: ``stderr`` is None)."""
    value = None if value is None or math.isnan(value) else float(value)
    return {
        "metric": metric,
        "set": "forget",
        "depth": depth,
        "attack": "none",
        "value": value,
        "stderr": None,
        "n": n,
        "higher_is_better": higher,
        "robustness_attack": kind,
    }


def robustness_rows(kind: str, results: Mapping[str, Sequence[Row] | None], keep: Keep = None) -> list[dict]:
    """Aggregates of one attack ``kind`` from the rows of the five evaluations (keys as in the module doc).
    Without ``before``, ``unlearned`` or ``attacked`` there is nothing to compute; without the reference's two,
    only ``recovery_*`` (and Q) are."""
    if any(results.get(k) is None for k in ("before", "unlearned", "attacked")):
        return []
    names = [k for k in ("before", "unlearned", "attacked", "reference", "reference_attacked") if results.get(k) is not None]
    rows = {name: forget_rows(results[name], keep) for name in names}
    with_reference = "reference" in rows and "reference_attacked" in rows
    out = []
    for metric in KNOWLEDGE:
        m = {name: by_depth(r, metric) for name, r in rows.items()}
        for d in DEPTHS:
            n = sum(1 for r in rows["attacked"] if d in ("all", r["depth"]))
            out.append(_agg(f"recovery_{metric}", d, recovery(m["attacked"][d], m["unlearned"][d], m["before"][d]), n, False, kind))
            if with_reference:
                gap, floor = m["before"][d] - m["unlearned"][d], max(m["unlearned"][d], m["reference_attacked"][d])
                beyond = (m["attacked"][d] - floor) / gap if gap > 0 and not math.isnan(m["reference_attacked"][d]) else float("nan")
                out.append(_agg(f"recovery_beyond_reference_{metric}", d, beyond, n, False, kind))
    prob = {name: by_depth(r, "prob")["d1"] for name, r in rows.items()}
    n = sum(1 for r in rows["attacked"] if r["depth"] == "d1")
    if kind in RELEARNING and with_reference:
        value = ou_relearning_r(prob["unlearned"], prob["attacked"], prob["reference"], prob["reference_attacked"])
        out.append(_agg("ou_relearning_r", "d1", value, n, True, kind))
    if kind in QUANTISATION:
        out.append(_agg("ou_quantization_q", "d1", ou_quantization_q(prob["unlearned"], prob["attacked"]), n, True, kind))
    return out


def surviving_entities(rows: Sequence[Row], reference_rows: Sequence[Row], keep: Keep = None) -> tuple[set[str], set[str]]:
    """(entities with a probe answered here and not by the reference, all forget entities scored)."""
    from .catalog import survival_records

    reference = {r["item_id"]: r for r in reference_rows if r["set"] == "forget" and (keep is None or keep(r))}
    entities = survival_records([r for r in rows if keep is None or keep(r)], reference)
    return {e["entity_id"] for e in entities if e["surviving"]}, {e["entity_id"] for e in entities}


def robust_survival_row(per_attack: Mapping[str, tuple[set[str], set[str]]]) -> dict:
    """robust_surviving_entity_share over the attacks given (``surviving_entities`` of each, unattacked included)."""
    everyone = set().union(*(all_ for _, all_ in per_attack.values())) if per_attack else set()
    surviving = set().union(*(s for s, _ in per_attack.values())) if per_attack else set()
    value = len(surviving) / len(everyone) if everyone else float("nan")
    return _agg("robust_surviving_entity_share", "all", value, len(everyone), False, "any")
