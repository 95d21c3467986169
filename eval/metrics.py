"""Metrics: pure functions over per-item rows (registered with their metadata in ``eval/catalog.py``).

A row is a flat dict produced by the passes (``eval/rows.py``): token counts and
summed log-probabilities of the answer, paraphrase, perturbed answers and
options given the question, the greedy generation and its ROUGE-L recall.
Nothing here touches a model or a file. A row that cannot be scored (e.g. no
tokens) is counted in ``n_unscored`` and never hidden behind an epsilon.

Per-token probability (TOFU): P̄(a|q) = exp(ℓ(a|q) / |a|), ℓ the summed token
log-probability of the answer tokens (end-of-turn token included), |a| their count.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Sequence

Row = dict
NORMALISED_SETS = ("world", "real_authors")  # short answers among wrong ones: probability normalised over them (TOFU)


# -- per-item values -----------------------------------------------------------------------
def per_token_prob(logp: float, n: int) -> float:
    """exp(ℓ/|a|), the geometric-mean token probability."""
    return math.exp(logp / n)


def item_prob(r: Row) -> float:
    return per_token_prob(r["logp_answer"], r["ntok_answer"])


def item_prob_normalised(r: Row) -> float:
    """P̄(a) / (P̄(a) + Σ P̄(wrong)), TOFU's normalisation on world knowledge."""
    p = item_prob(r)
    wrong = sum(per_token_prob(lp, n) for lp, n in zip(r["logp_perturbed"], r["ntok_perturbed"]))
    return p / (p + wrong)


def item_truth_ratio(r: Row) -> float:
    """R = geomean_i P̄(â_i) / P̄(ã): perturbed answers against the paraphrased answer (TOFU, OpenUnlearning)."""
    wrong = sum(lp / n for lp, n in zip(r["logp_perturbed"], r["ntok_perturbed"])) / len(r["logp_perturbed"])
    return math.exp(wrong - r["logp_paraphrase"] / r["ntok_paraphrase"])


def item_mc_correct(r: Row) -> bool:
    """The option with the highest per-token log-likelihood is the right one."""
    scores = [lp / n for lp, n in zip(r["logp_options"], r["ntok_options"])]
    return max(range(len(scores)), key=lambda i: (scores[i], -i)) == r["answer_index"]


def _scored(rows: Sequence[Row], key: str = "ntok_answer") -> list[Row]:
    return [r for r in rows if r.get(key)]


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


def truth_ratio_value(ratio: float, forget: bool) -> float:
    """An item's truth-ratio score: min(R, 1/R) on the forget set (1 = cannot tell truth from lies), else max(0, 1 - R)."""
    return min(ratio, 1 / ratio) if forget else max(0.0, 1 - ratio)


# -- aggregate metrics ----------------------------------------------------------------------
def prob(rows: Sequence[Row]) -> float:
    """Mean per-token probability of the answer, exp(-mean token NLL) (TOFU); normalised over the options on world knowledge."""
    return _mean([item_prob_normalised(r) if r.get("set") in NORMALISED_SETS else item_prob(r) for r in _scored(rows)])


def rouge_l_recall(rows: Sequence[Row]) -> float:
    """Mean ROUGE-L recall of the greedy answer against the answer (rouge_score, stemming on)."""
    return _mean([r["rouge_l_recall"] for r in rows if r.get("rouge_l_recall") is not None])


def truth_ratio(rows: Sequence[Row]) -> float:
    """Mean of ``truth_ratio_value`` over the scored rows, each by its own set."""
    return _mean([truth_ratio_value(item_truth_ratio(r), r.get("set") == "forget") for r in _scored(rows, "ntok_paraphrase")])


def mc_accuracy(rows: Sequence[Row]) -> float:
    """Share of items whose right option has the highest per-token log-likelihood."""
    return _mean([float(item_mc_correct(r)) for r in _scored(rows, "ntok_options")])


def forget_quality(model_rows: Sequence[Row], reference_rows: Sequence[Row]) -> float:
    """p-value of the two-sample Kolmogorov-Smirnov test between per-item truth ratios (TOFU)."""
    from scipy.stats import ks_2samp

    a = [item_truth_ratio(r) for r in _scored(model_rows, "ntok_paraphrase")]
    b = [item_truth_ratio(r) for r in _scored(reference_rows, "ntok_paraphrase")]
    if not a or not b:
        return float("nan")
    return float(ks_2samp(a, b).pvalue)


def model_utility(values: Sequence[float]) -> float:
    """Harmonic mean of the components (TOFU's 9 numbers: prob, ROUGE-L recall, truth ratio on three sets); NaN if one
    is NaN, 0 if one is <= 0 (scipy's hmean also gives 0 there; the rule is explicit so it does not depend on its version)."""
    from scipy.stats import hmean

    values = list(values)
    if any(math.isnan(v) for v in values):
        return float("nan")
    if any(v <= 0 for v in values):
        return 0.0
    return float(hmean(values))


def model_utility_replicates(stack):
    """``model_utility`` of each column of a (components x replicates) array, with the same NaN and zero rules."""
    import numpy as np
    from scipy.stats import hmean

    stack = np.asarray(stack, dtype=float)
    nan, nonpositive = np.isnan(stack).any(axis=0), (stack <= 0).any(axis=0)
    positive = np.where(nan | nonpositive, 1.0, stack)
    return np.where(nan, np.nan, np.where(nonpositive, 0.0, hmean(positive, axis=0)))


# -- membership inference -------------------------------------------------------------------
MIN_K = 0.4  # share of lowest-scoring tokens, MUSE's default K = 40%


def mia_loss(r: Row) -> float:
    """Mean token NLL of the answer (higher: looks less like training data)."""
    return -r["logp_answer"] / r["ntok_answer"]


def mia_zlib(r: Row) -> float:
    """Mean token NLL over the zlib-compressed length of the answer text (Carlini et al. 2021)."""
    return mia_loss(r) / len(zlib.compress(r["answer"].encode("utf-8")))


def _lowest_mean(values: Sequence[float], k: float) -> float:
    """Mean of the n = max(1, floor(k * T)) lowest of T values; NaN when T = 0."""
    if not values:
        return float("nan")
    n = max(1, int(len(values) * k))
    return sum(sorted(values)[:n]) / n


def mink_span(values: Sequence[float]) -> Sequence[float]:
    """The tokens Min-K% scores: the answer's tokens without the last one, the end token (OpenUnlearning's span)."""
    return values[:-1]


def mia_min_k(r: Row, k: float = MIN_K) -> float:
    """Minus the mean of the lowest k share of token log-probs over ``mink_span`` (Shi et al. 2024; NaN if empty)."""
    return -_lowest_mean(mink_span(r["token_logp"]), k)


def mia_min_k_plus_plus(r: Row, k: float = MIN_K) -> float:
    """Minus the mean of the lowest k share of (log p(x_t) - μ_t) / σ_t over ``mink_span`` (Zhang et al. 2024; NaN if empty)."""
    return -_lowest_mean(mink_span(r["token_minkpp"]), k)


MIA_ATTACKS: dict[str, Callable[[Row], float]] = {"loss": mia_loss, "zlib": mia_zlib, "min_k": mia_min_k, "min_k_plus_plus": mia_min_k_plus_plus}


def mia_auc(forget_rows: Sequence[Row], holdout_rows: Sequence[Row], attack: str) -> float:
    """AUC = P(score(holdout) > score(forget)) + P(tie)/2 with loss-like scores: 1 means forget items look trained on.

    Computed as the Mann-Whitney U statistic over n_holdout * n_forget (scipy).
    """
    from scipy.stats import mannwhitneyu

    f = [s for _, s in mia_scored(forget_rows, attack)]
    h = [s for _, s in mia_scored(holdout_rows, attack)]
    if not f or not h:
        return float("nan")
    return float(mannwhitneyu(h, f, alternative="two-sided").statistic / (len(f) * len(h)))


def mia_scored(rows: Sequence[Row], attack: str) -> list[tuple[Row, float]]:
    """(row, score) of the rows the attack can score (answer tokens, a finite score: an empty Min-K% span is not), in order."""
    score = MIA_ATTACKS[attack]
    return [(r, v) for r, v in ((r, score(r)) for r in _scored(rows)) if math.isfinite(v)]


def privleak(auc, reference_auc: float):
    """MUSE's PrivLeak in percent, as OpenUnlearning computes it (``privacy.py``) from an AUC of this module's convention:

        privleak = ((1 - AUC) - (1 - AUC_ref)) / (1 - AUC_ref) x 100 = (AUC_ref - AUC) / (1 - AUC_ref) x 100

    (1 - AUC is MUSE's AUC, forget labelled the non-member class.) 0 is ideal; < 0: the forget set looks more
    trained-on than to the reference (under-unlearning, -100 at AUC = 1); > 0: less (over-unlearning).
    NaN when AUC_ref = 1 (OpenUnlearning divides by 1 - AUC_ref + 1e-10 instead).
    """
    if math.isnan(reference_auc) or reference_auc >= 1:
        return float("nan")
    return (reference_auc - auc) / (1 - reference_auc) * 100  # a NaN AUC (or replicate array entry) stays NaN


def efficacy(after, before: float):
    """Forget efficacy 1 - after / before: 1 when the knowledge is gone, 0 when unchanged; NaN if before is 0 or NaN.
    ``after`` may be an array (bootstrap replicates)."""
    if before == 0 or math.isnan(before):
        return float("nan")
    return 1 - after / before


def answered_right(r: Row, threshold: float = 0.5) -> bool:
    """The model states the fact: ROUGE-L recall of its greedy answer against the short answer >= 0.5.

    Not against the full answer sentence: templated sentences give about 0.5 recall to
    any model that repeats the question's wording. Not multiple choice either: with six
    options a model that knows nothing is right one time in six, so over dozens of probes
    per entity chance alone would mark every entity as knowing something.
    """
    return (r.get("short_recall") or 0.0) >= threshold
