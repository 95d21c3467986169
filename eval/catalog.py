"""Every metric ``entity-unlearn eval`` writes, registered once (see ``eval/registry.py`` for the API).

Registration order is the order of reports and of the study's columns; ``eval/aggregate.py``
computes the kinds in the order slice, cross_set, reference, before. Each entry names its card in
``cards/metrics/``, which gives the formula and its source.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from . import metrics as M
from .aggregate import Context
from .registry import Column, Metric, register

FORGET = "forget"
SETS = ("forget", "retain", "neighbor", "holdout", "world", "real_authors")  # the order of reports
TOFU_UTILITY_SETS = ("retain", "real_authors", "world")  # TOFU's retain, Real Authors, World Facts
ENTITY_UTILITY_SETS = ("retain", "neighbor", "world")
HEADLINE = ("d1", "none")  # TOFU's numbers are direct questions without attacks
DEPTHS = ("d0", "d1", "d2", "d3", "d4")


def _forget_d1(key: str, header: str) -> tuple[Column, ...]:
    return (Column(key, header, FORGET, *HEADLINE),)


# -- slice metrics: one value per (set, depth, attack), the mean of an item value -----------------
def _item_prob(r: dict) -> float | None:
    if not r.get("ntok_answer"):
        return None
    return M.item_prob_normalised(r) if r.get("set") in M.NORMALISED_SETS else M.item_prob(r)


def _item_rouge(r: dict) -> float | None:
    return r.get("rouge_l_recall")


def _item_truth_ratio(r: dict) -> float | None:
    if not r.get("ntok_paraphrase"):
        return None
    return M.truth_ratio_value(M.item_truth_ratio(r), r.get("set") == FORGET)


def _item_mc(r: dict) -> float | None:
    return float(M.item_mc_correct(r)) if r.get("ntok_options") else None


register(Metric("prob", "slice", _item_prob, {"*": True}, "prob", summary=True, columns=_forget_d1("forget_prob", "forget prob")))
register(
    Metric("rouge_l_recall", "slice", _item_rouge, {"*": True}, "rouge_l_recall", summary=True, columns=_forget_d1("forget_rouge", "forget ROUGE-L"))
)
register(
    Metric(
        "truth_ratio",
        "slice",
        _item_truth_ratio,
        {FORGET: None, "*": True},
        "truth_ratio",
        summary=True,
        columns=_forget_d1("truth_ratio", "truth ratio"),
    )
)
register(Metric("mc_accuracy", "slice", _item_mc, {"*": True}, "mc_accuracy", summary=True, columns=_forget_d1("mc_accuracy", "MC acc.")))


# -- forget quality (needs the reference's rows) ------------------------------------------------
def _forget_quality(ctx: Context) -> None:
    """KS p-value per depth (attack 'none') between this model's and the reference's forget truth ratios."""
    ref = ctx.reference_rows(FORGET)
    rows = [r for r in ctx.rows if r["set"] == FORGET and r["item_id"] in ref]
    for (set_, depth, attack), group in sorted(ctx.slices(rows).items()):
        if attack != "none":
            continue
        pairs = [(r, ref[r["item_id"]]) for r in group]
        fq = lambda ps: M.forget_quality([a for a, _ in ps], [b for _, b in ps])  # noqa: E731
        ctx.emit("forget_quality", set_, depth, attack, fq(pairs), len(group), ctx.boot.resample(fq, pairs, ctx.units(group)))


register(
    Metric(
        "forget_quality",
        "reference",
        _forget_quality,
        {"*": True},
        "forget_quality",
        summary=True,
        columns=_forget_d1("forget_quality", "forget quality"),
    )
)


# -- model utility (this model's aggregates across sets) ----------------------------------------
def _model_utility(name: str, sets: tuple[str, ...]):
    def compute(ctx: Context) -> None:
        """Harmonic mean of prob, ROUGE-L recall and truth ratio on ``sets`` (d1, no attack); NaN if one is missing."""
        depth, attack = HEADLINE
        parts = [ctx.find(m, s, depth, attack) for s in sets for m in ("prob", "rouge_l_recall", "truth_ratio")]
        found = [a for a in parts if a is not None]
        present = [s for s in sets if any(a["set"] == s and a["depth"] == depth for a in ctx.aggregates)]
        n = sum(a["n"] for a in found if a["metric"] == "prob")
        if len(found) != len(parts):
            ctx.emit(name, "+".join(present), depth, attack, float("nan"), n)
            return
        values = [math.nan if a["value"] is None else a["value"] for a in found]
        parts = [ctx.replicates_of(a) for a in found]
        reps = None if any(r is None for r in parts) else M.model_utility_replicates(parts)
        ctx.emit(name, "+".join(present), depth, attack, M.model_utility(values), n, reps)

    return compute


register(
    Metric(
        "model_utility",
        "cross_set",
        _model_utility("model_utility", TOFU_UTILITY_SETS),
        {"*": True},
        "model_utility",
        version="2",  # 1 was today's model_utility_entity
        summary=True,
        columns=(Column("model_utility", "model utility", "+".join(TOFU_UTILITY_SETS), *HEADLINE),),
    )
)
register(
    Metric(
        "model_utility_entity",
        "cross_set",
        _model_utility("model_utility_entity", ENTITY_UTILITY_SETS),
        {"*": True},
        "model_utility_entity",
        summary=True,
        columns=(Column("model_utility_entity", "entity utility", "+".join(ENTITY_UTILITY_SETS), *HEADLINE),),
    )
)


# -- surviving knowledge (needs the reference's rows) -------------------------------------------
def survival_records(rows: Sequence[dict], reference: Mapping[str, dict]) -> list[dict]:
    """Per forget entity (sorted by id): its probes, those this model answers right (``known``) and those it
    answers right where the reference (``reference``: item id -> the reference's row) does not (``surviving``),
    counted per depth."""
    from collections import defaultdict

    per_entity: dict[str, dict] = {}
    for r in rows:
        if r["set"] != FORGET or r["item_id"] not in reference:
            continue
        rec = per_entity.setdefault(
            r["entity_id"], {"entity_id": r["entity_id"], "surviving": defaultdict(int), "known": defaultdict(int), "probes": defaultdict(int)}
        )
        rec["probes"][r["depth"]] += 1
        if M.answered_right(r):
            rec["known"][r["depth"]] += 1
            if not M.answered_right(reference[r["item_id"]]):
                rec["surviving"][r["depth"]] += 1
    return [{k: dict(v) if isinstance(v, defaultdict) else v for k, v in rec.items()} for _, rec in sorted(per_entity.items())]


def _surviving(ctx: Context) -> None:
    """Per forget entity, probes this model answers right and the reference does not; the share of entities with any."""
    entities = survival_records(ctx.rows, ctx.reference_rows(FORGET))
    ctx.entities = entities
    n = len(entities)
    if not n:
        return
    ids = [e["entity_id"] for e in entities]
    for depth in ("all", *sorted({d for e in entities for d in e["probes"]})):
        flags = [float(bool(e["surviving"]) if depth == "all" else e["surviving"].get(depth, 0) > 0) for e in entities]
        ctx.emit("surviving_entity_share", FORGET, depth, "all", sum(flags) / n, n, ctx.boot.mean(flags, ids))


register(
    Metric(
        "surviving_entity_share",
        "reference",
        _surviving,
        {"*": False},
        "surviving_entity_share",
        summary=True,
        columns=(Column("surviving", "surviving entities", FORGET, "all", "all"),),
    )
)


# -- efficacy (needs the before result) -----------------------------------------------------------
def _efficacy(base: str):
    def compute(ctx: Context) -> None:
        """1 - after / before of ``base`` per set, depth and attack."""
        prior = {(a["metric"], a["set"], a["depth"], a["attack"]): a for a in ctx.before["aggregates"]}
        for a in list(ctx.aggregates):
            if a["metric"] != base:
                continue
            b = prior.get((a["metric"], a["set"], a["depth"], a["attack"]))
            if b is None or a["value"] is None or b["value"] is None:
                continue
            reps = ctx.replicates_of(a)
            reps = None if reps is None else M.efficacy(reps, b["value"])
            ctx.emit(f"efficacy_{base}", a["set"], a["depth"], a["attack"], M.efficacy(a["value"], b["value"]), a["n"], reps)

    return compute


for _base in ("prob", "rouge_l_recall", "mc_accuracy"):
    register(
        Metric(
            f"efficacy_{_base}",
            "before",
            _efficacy(_base),
            {FORGET: True, "*": False},  # forgetting elsewhere is damage
            "efficacy",
            columns=tuple(Column(f"efficacy_{d}", f"efficacy {d}", FORGET, d, "none") for d in DEPTHS) if _base == "prob" else (),
        )
    )


# -- membership inference (cross-set) and privacy leakage (needs the reference's AUC) -----------
def _mia_auc(attack: str):
    def compute(ctx: Context) -> None:
        """AUC of the attack, forget (members) vs holdout (non-members), direct questions."""
        depth, att = HEADLINE
        forget = [r for r in ctx.rows if r["set"] == FORGET and r["depth"] == depth and r["attack"] == att]
        holdout = [r for r in ctx.rows if r["set"] == "holdout" and r["depth"] == depth and r["attack"] == att]
        f, h = M.mia_scored(forget, attack), M.mia_scored(holdout, attack)
        reps = ctx.boot.auc([s for _, s in h], [s for _, s in f], ctx.units([r for r, _ in h]), ctx.units([r for r, _ in f]))
        ctx.emit(f"mia_auc_{attack}", FORGET, depth, att, M.mia_auc(forget, holdout, attack), len(forget) + len(holdout), reps)

    return compute


def _privleak(attack: str):
    def compute(ctx: Context) -> None:
        """privleak of the attack against the reference result's AUC of the same attack."""
        depth, att = HEADLINE
        own = ctx.find(f"mia_auc_{attack}", FORGET, depth, att)
        ref = next((a for a in ctx.reference["aggregates"] if a["metric"] == f"mia_auc_{attack}"), None)
        if own is None or own["value"] is None or ref is None or ref["value"] is None:
            return
        reps = ctx.replicates_of(own)
        reps = None if reps is None else M.privleak(reps, ref["value"])
        ctx.emit(f"privleak_{attack}", FORGET, depth, att, M.privleak(own["value"], ref["value"]), own["n"], reps)

    return compute


SPAN_VERSION = {"min_k": "2", "min_k_plus_plus": "2"}  # 2: the end token left out of the span (OpenUnlearning's)
for _attack in M.MIA_ATTACKS:
    register(Metric(f"mia_auc_{_attack}", "cross_set", _mia_auc(_attack), {"*": None}, "mia_auc", SPAN_VERSION.get(_attack, "1"), _attack == "min_k"))
for _attack in M.MIA_ATTACKS:
    register(Metric(f"privleak_{_attack}", "reference", _privleak(_attack), {"*": None}, "privleak", "2", _attack == "min_k"))  # 2: MUSE's form, %
