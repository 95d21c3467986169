"""Robustness metrics: recovery, recovery beyond the reference, OpenUnlearning's R and Q, robust survival,
each against hand-computed values."""

from __future__ import annotations

import math

import pytest

from entity_unlearn.eval import robustness as R


def row(prob: float, depth="d1", entity="e1", short=0.0, attack="none", set_="forget", facts=("e1/a",), item=None):
    """A row whose per-token answer probability is ``prob`` (one token) and short-answer recall ``short``."""
    return {
        "item_id": item or f"{set_}:{entity}/{depth}/{prob}/{facts}",
        "set": set_,
        "entity_id": entity,
        "depth": depth,
        "attack": attack,
        "logp_answer": math.log(prob),
        "ntok_answer": 1,
        "short_recall": short,
        "rouge_l_recall": short,
        "fact_ids": list(facts),
    }


def test_recovery_by_hand():
    assert R.recovery(0.5, 0.1, 0.9) == pytest.approx(0.5)  # (0.5 - 0.1) / (0.9 - 0.1)
    assert R.recovery(0.1, 0.1, 0.9) == 0 and R.recovery(1.0, 0.1, 0.9) == pytest.approx(1.125)
    assert math.isnan(R.recovery(0.5, 0.9, 0.9))  # nothing was removed: no recovery to speak of


def test_openunlearning_r_and_q_by_hand():
    assert R.ou_relearning_r(0.1, 0.7, 0.15, 0.45) == pytest.approx(0.5)  # Δref 0.3 / Δunl 0.6
    assert R.ou_relearning_r(0.1, 0.3, 0.15, 0.75) == 1.0  # capped
    assert R.ou_relearning_r(0.1, 0.05, 0.15, 0.3) == 1.0  # relearning raised nothing
    assert R.ou_quantization_q(0.2, 0.8) == pytest.approx(0.25) and R.ou_quantization_q(0.2, 0.1) == 1.0


def test_robustness_rows_by_hand():
    before = [row(0.9), row(0.8, "d2")]
    unlearned = [row(0.1), row(0.2, "d2"), row(0.9, attack="role_play")]  # world prompt attacks are left out
    attacked = [row(0.5), row(0.2, "d2")]
    reference = [row(0.2), row(0.1, "d2")]
    reference_attacked = [row(0.3), row(0.4, "d2")]
    five = dict(before=before, unlearned=unlearned, attacked=attacked, reference=reference, reference_attacked=reference_attacked)
    out = {(a["metric"], a["depth"]): a for a in R.robustness_rows("relearn", five)}
    assert out[("recovery_prob", "d1")]["value"] == pytest.approx(0.5)  # (0.5 - 0.1) / (0.9 - 0.1)
    assert out[("recovery_beyond_reference_prob", "d1")]["value"] == pytest.approx(0.25)  # (0.5 - 0.3) / 0.8
    assert out[("recovery_prob", "d2")]["value"] == 0 and out[("recovery_beyond_reference_prob", "d2")]["value"] == pytest.approx(-1 / 3)
    assert out[("recovery_prob", "all")]["value"] == pytest.approx((0.35 - 0.15) / (0.85 - 0.15))
    assert out[("recovery_prob", "d3")]["value"] is None and out[("recovery_prob", "d3")]["n"] == 0  # no d3 rows: NaN, written as null
    assert out[("ou_relearning_r", "d1")]["value"] == pytest.approx(0.25)  # Δref 0.1 / Δunl 0.4
    a = out[("recovery_prob", "d1")]
    assert a["robustness_attack"] == "relearn" and a["attack"] == "none" and a["set"] == "forget" and a["higher_is_better"] is False
    quant = {(a["metric"], a["depth"]): a["value"] for a in R.robustness_rows("quant4", five)}
    assert quant[("ou_quantization_q", "d1")] == pytest.approx(0.2) and ("ou_relearning_r", "d1") not in quant


def test_keep_restricts_every_term_to_held_out_facts():
    before = [row(0.9, facts=("e1/a",)), row(0.6, facts=("e1/b",))]
    unlearned = [row(0.1, facts=("e1/a",)), row(0.2, facts=("e1/b",))]
    attacked = [row(0.9, facts=("e1/a",)), row(0.4, facts=("e1/b",))]
    five = dict(before=before, unlearned=unlearned, attacked=attacked, reference=unlearned, reference_attacked=unlearned)
    keep = lambda r: "e1/a" not in r["fact_ids"]  # noqa: E731  (e1/a was relearned)
    out = {(a["metric"], a["depth"]): a["value"] for a in R.robustness_rows("relearn_known", five, keep)}
    assert out[("recovery_prob", "d1")] == pytest.approx(0.5)  # (0.4 - 0.2) / (0.6 - 0.2): the relearned fact does not count


def test_robust_survival_is_the_union_over_attacks():
    def answered(entity, yes, item):
        return row(0.5, entity=entity, short=1.0 if yes else 0.0, item=item)

    unl = [answered("e1", False, "i1"), answered("e2", False, "i2"), answered("e3", True, "i3"), answered("e4", False, "i4")]
    ref = [answered(e, False, f"i{k}") for k, e in enumerate(("e1", "e2", "e3", "e4"), 1)]
    att = [answered("e1", True, "i1"), answered("e2", False, "i2"), answered("e3", False, "i3"), answered("e4", True, "i4")]
    ref_att = [answered("e1", False, "i1"), answered("e2", False, "i2"), answered("e3", False, "i3"), answered("e4", True, "i4")]
    per = {"none": R.surviving_entities(unl, ref), "relearn": R.surviving_entities(att, ref_att)}
    assert per["none"][0] == {"e3"} and per["relearn"][0] == {"e1"}  # e4: the attacked reference answers it too
    agg = R.robust_survival_row(per)
    assert agg["value"] == pytest.approx(0.5) and agg["n"] == 4 and agg["metric"] == "robust_surviving_entity_share"


def test_without_reference_only_recovery_and_without_before_nothing():
    five = dict(before=[row(0.9)], unlearned=[row(0.1)], attacked=[row(0.5)], reference=None, reference_attacked=None)
    names = {a["metric"] for a in R.robustness_rows("quant4", five)}
    assert names == {"recovery_prob", "recovery_rouge_l_recall", "ou_quantization_q"}
    assert R.robustness_rows("relearn", {**five, "before": None}) == []
