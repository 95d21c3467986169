"""Aggregation rules on hand-made rows: efficacy's sign, model utility's NaN and zero rules, survival, stderr."""

from __future__ import annotations

import math

import pytest

from entity_unlearn.eval import get_metric, metrics_of, register
from entity_unlearn.eval.aggregate import aggregate, grouped_metrics
from entity_unlearn.eval.registry import Metric

LN = math.log


def row(item_id: str, set_: str = "retain", entity: str | None = "E1", p: float = 0.5, depth: str = "d1", attack: str = "none", **kw) -> dict:
    """A row whose answer, paraphrase and options get per-token probability ``p`` and whose one wrong answer gets p/2."""
    base = {
        "item_id": item_id,
        "set": set_,
        "entity_id": entity,
        "depth": depth,
        "attack": attack,
        "answer": "x",
        "logp_answer": LN(p),
        "ntok_answer": 1,
        "token_logp": [LN(p), -0.1],
        "token_minkpp": [0.0, 0.0],
        "logp_paraphrase": LN(p),
        "ntok_paraphrase": 1,
        "logp_perturbed": [LN(p / 2)],
        "ntok_perturbed": [1],
        "logp_options": [LN(p), LN(p / 2)],
        "ntok_options": [1, 1],
        "answer_index": 0,
        "rouge_l_recall": 1.0,
        "short_recall": 1.0,
    }
    return {**base, **kw}


def find(aggregates, metric, set_="forget", depth="d1", attack="none"):
    hits = [a for a in aggregates if (a["metric"], a["set"], a["depth"], a["attack"]) == (metric, set_, depth, attack)]
    assert len(hits) <= 1
    return hits[0] if hits else None


def utility_rows(**override) -> list[dict]:
    rows = [row(f"{s}:{i}", s, f"{s}{i}") for s in ("retain", "neighbor", "real_authors") for i in range(3)]
    return rows + [row(f"world:{i}", "world", None) for i in range(3)] + override.get("extra", [])


def test_efficacy_is_one_minus_after_over_before_and_damage_elsewhere_is_lower_is_better():
    before_rows = [row("f1", "forget", p=0.8), row("r1", "retain", "E2", p=0.8)]
    after_rows = [row("f1", "forget", p=0.2), row("r1", "retain", "E2", p=0.9)]
    before_aggs, _, _ = aggregate(before_rows)
    aggs, _, _ = aggregate(after_rows, before={"aggregates": before_aggs})
    forget = find(aggs, "efficacy_prob")
    assert forget["value"] == pytest.approx(1 - 0.2 / 0.8) and forget["higher_is_better"] is True
    retain = find(aggs, "efficacy_prob", "retain")
    assert retain["value"] < 0 and retain["value"] == pytest.approx(1 - 0.9 / 0.8) and retain["higher_is_better"] is False
    # rouge did not move: efficacy 0; mc_accuracy was and stays 1
    assert find(aggs, "efficacy_rouge_l_recall")["value"] == 0.0 and find(aggs, "efficacy_mc_accuracy")["value"] == 0.0


def test_efficacy_with_a_zero_before_value_is_null_not_infinite():
    before_aggs, _, _ = aggregate([row("f1", "forget", rouge_l_recall=0.0)])
    aggs, _, _ = aggregate([row("f1", "forget", rouge_l_recall=0.0)], before={"aggregates": before_aggs})
    assert find(aggs, "efficacy_rouge_l_recall")["value"] is None


def test_model_utility_is_tofus_harmonic_mean_over_retain_real_authors_and_world():
    aggs, _, _ = aggregate(utility_rows())
    mu = find(aggs, "model_utility", "retain+real_authors+world")
    # retain: prob 0.5 (plain), rouge 1, truth ratio max(0, 1 - 0.5); real_authors and world: prob normalised over the
    # wrong answer, 0.5 / (0.5 + 0.25) = 2/3, truth ratio of the answer against the wrong one, 0.5
    parts = [0.5, 1.0, 0.5, 2 / 3, 1.0, 0.5, 2 / 3, 1.0, 0.5]
    assert mu["value"] == pytest.approx(9 / sum(1 / v for v in parts)) and mu["n"] == 9 and mu["higher_is_better"] is True
    entity = find(aggs, "model_utility_entity", "retain+neighbor+world")  # neighbour in real authors' place, not normalised
    parts = [0.5, 1.0, 0.5, 0.5, 1.0, 0.5, 2 / 3, 1.0, 0.5]
    assert entity["value"] == pytest.approx(9 / sum(1 / v for v in parts)) and entity["n"] == 9
    assert mu["stderr"] is not None and entity["stderr"] is not None


def test_model_utility_nan_rules():
    no_authors = [r for r in utility_rows() if r["set"] != "real_authors"]  # a release without real_authors_perturbed
    aggs, _, _ = aggregate(no_authors)
    assert find(aggs, "model_utility", "retain+world")["value"] is None  # a missing set: NaN, not a mean of fewer
    assert find(aggs, "model_utility_entity", "retain+neighbor+world")["value"] is not None
    unscorable = [dict(r, ntok_paraphrase=0) if r["set"] == "neighbor" else r for r in utility_rows()]
    aggs, _, _ = aggregate(unscorable)
    assert find(aggs, "truth_ratio", "neighbor")["value"] is None
    assert find(aggs, "model_utility_entity", "retain+neighbor+world")["value"] is None  # a NaN component: NaN
    assert find(aggs, "model_utility", "retain+real_authors+world")["value"] is not None  # neighbours are not in TOFU's
    zero = [dict(r, rouge_l_recall=0.0) if r["set"] == "retain" else r for r in utility_rows()]
    aggs, _, _ = aggregate(zero)
    assert find(aggs, "model_utility", "retain+real_authors+world")["value"] == 0.0  # a zero component: 0
    assert find(aggs, "model_utility_entity", "retain+neighbor+world")["value"] == 0.0


def test_survival_counts_probes_the_model_answers_and_the_reference_does_not():
    model = [
        row("f:a1", "forget", "A", depth="d1"),
        row("f:a2", "forget", "A", depth="d3", short_recall=0.0),
        row("f:b1", "forget", "B", depth="d1"),
        row("f:c1", "forget", "C", depth="d1", short_recall=0.4),  # below the 0.5 threshold: not answered
    ]
    reference = [
        row("f:a1", "forget", "A", short_recall=0.0),
        row("f:a2", "forget", "A", depth="d3", short_recall=0.0),
        row("f:b1", "forget", "B", short_recall=0.9),  # the reference knows it too: guessable, does not count
        row("f:c1", "forget", "C", short_recall=0.0),
    ]
    aggs, entities, _ = aggregate(model, reference={"rows": reference, "aggregates": []})
    share = find(aggs, "surviving_entity_share", depth="all", attack="all")
    assert share["value"] == pytest.approx(1 / 3) and share["n"] == 3 and share["higher_is_better"] is False
    assert find(aggs, "surviving_entity_share", depth="d1", attack="all")["value"] == pytest.approx(1 / 3)
    assert find(aggs, "surviving_entity_share", depth="d3", attack="all")["value"] == 0.0
    assert [e["entity_id"] for e in entities] == ["A", "B", "C"]
    assert entities[0]["surviving"] == {"d1": 1} and entities[1]["known"] == {"d1": 1} and entities[1]["surviving"] == {}


def test_directions_per_set_come_from_the_registry():
    aggs = grouped_metrics([row("f1", "forget"), row("r1", "retain", "E2")])
    assert find(aggs, "truth_ratio")["higher_is_better"] is None
    assert find(aggs, "truth_ratio", "retain")["higher_is_better"] is True
    assert get_metric("truth_ratio").higher_is_better("holdout") is True
    # the forget rule min(R, 1/R) and the retain rule max(0, 1 - R) on the same scores (R = 0.5)
    assert find(aggs, "truth_ratio")["value"] == pytest.approx(0.5) and find(aggs, "truth_ratio", "retain")["value"] == pytest.approx(0.5)


def test_stderr_is_a_seeded_bootstrap_over_entities():
    rows = [row(f"r{i}", "retain", f"E{i}", rouge_l_recall=float(i % 2)) for i in range(100)]
    a = find(grouped_metrics(rows), "rouge_l_recall", "retain")
    assert a["value"] == 0.5 and a["stderr"] == pytest.approx(0.05, rel=0.25)  # sqrt(0.25 / 100)
    assert find(grouped_metrics(rows), "rouge_l_recall", "retain")["stderr"] == a["stderr"]  # same seed, same value
    assert find(grouped_metrics(rows, seed=1), "rouge_l_recall", "retain")["stderr"] != a["stderr"]
    # ten rows of one entity are one unit: resampling them together leaves the mean unchanged
    one = [row(f"r{i}", "retain", "E", rouge_l_recall=float(i % 2)) for i in range(10)]
    assert find(grouped_metrics(one), "rouge_l_recall", "retain")["stderr"] == 0.0


def test_every_aggregate_is_registered_and_the_registry_refuses_duplicates():
    model = utility_rows(extra=[row("f1", "forget", "F"), row("h1", "holdout", "H", p=0.1)])
    reference = {"rows": model, "aggregates": aggregate(model)[0]}
    aggs, _, _ = aggregate(model, reference=reference, before=reference)
    produced = {a["metric"] for a in aggs}
    registered = {m.name for m in metrics_of("slice", "cross_set", "reference", "before")}
    assert produced == registered
    with pytest.raises(ValueError, match="registered twice"):
        register(Metric("prob", "slice", lambda r: 0.0, {"*": True}, "prob"))
    with pytest.raises(KeyError, match="did you mean 'truth_ratio'"):
        get_metric("truth_ration")
    with pytest.raises(ValueError, match="kind 'per_slice'"):
        Metric("x", "per_slice", lambda r: 0.0, {"*": True}, "x")
