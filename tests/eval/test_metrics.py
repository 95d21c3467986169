"""Each metric against hand-computed cases."""

from __future__ import annotations

import math
import zlib

import pytest

from entity_unlearn.eval import metrics as M

LN = math.log


def row(**kw):
    base = {
        "set": "retain",
        "answer": "x",
        "logp_answer": LN(0.5),
        "ntok_answer": 1,
        "logp_paraphrase": LN(0.5),
        "ntok_paraphrase": 1,
        "logp_perturbed": [LN(0.25)],
        "ntok_perturbed": [1],
        "logp_options": [LN(0.5), LN(0.25)],
        "ntok_options": [1, 1],
        "answer_index": 0,
    }
    return {**base, **kw}


@pytest.mark.parametrize(
    "r, expected",
    [
        (row(logp_answer=2 * LN(0.5), ntok_answer=2), 0.5),  # exp(mean log p) of two tokens at 0.5
        (row(logp_answer=LN(0.5) + LN(0.125), ntok_answer=2), 0.25),  # geometric mean of 0.5 and 0.125
        (row(logp_answer=0.0, ntok_answer=3), 1.0),
    ],
)
def test_prob_is_per_token_probability(r, expected):
    assert M.prob([r]) == pytest.approx(expected)


def test_prob_on_world_is_normalised_over_wrong_answers():
    r = row(set="world", logp_answer=LN(0.5), logp_perturbed=[LN(0.25), LN(0.25)], ntok_perturbed=[1, 1])
    assert M.prob([r]) == pytest.approx(0.5 / (0.5 + 0.25 + 0.25))


@pytest.mark.parametrize(
    "pert, para, set_, expected",
    [
        ([LN(0.25), LN(0.0625)], LN(0.5), "forget", 0.25),  # R = sqrt(.25 * .0625) / .5 = .25; min(R, 1/R)
        ([LN(0.25), LN(0.0625)], LN(0.5), "retain", 0.75),  # max(0, 1 - R)
        ([LN(0.5)], LN(0.25), "forget", 0.5),  # R = 2 -> 1/R
        ([LN(0.5)], LN(0.25), "retain", 0.0),  # 1 - 2 < 0 -> 0
        ([LN(0.3)], LN(0.3), "forget", 1.0),  # cannot tell true from false
    ],
)
def test_truth_ratio(pert, para, set_, expected):
    r = row(set=set_, logp_perturbed=pert, ntok_perturbed=[1] * len(pert), logp_paraphrase=para)
    assert M.truth_ratio([r]) == pytest.approx(expected)


def test_truth_ratio_uses_per_token_probabilities():
    r = row(set="retain", logp_perturbed=[2 * LN(0.25)], ntok_perturbed=[2], logp_paraphrase=3 * LN(0.5), ntok_paraphrase=3)
    assert M.item_truth_ratio(r) == pytest.approx(0.25 / 0.5)


@pytest.mark.parametrize(
    "logps, ntoks, index, expected",
    [
        ([-2.0, -1.0, -3.0], [2, 2, 1], 1, 1.0),  # per token -1, -0.5, -3: option 1 wins
        ([-2.0, -1.0, -3.0], [2, 2, 1], 0, 0.0),
        ([-3.0, -2.0], [3, 1], 0, 1.0),  # length normalisation decides: -1 beats -2
    ],
)
def test_mc_accuracy(logps, ntoks, index, expected):
    assert M.mc_accuracy([row(logp_options=logps, ntok_options=ntoks, answer_index=index)]) == expected


def test_rouge_mean_skips_rows_without_generation():
    assert M.rouge_l_recall([{"rouge_l_recall": 1.0}, {"rouge_l_recall": 0.5}, {}]) == pytest.approx(0.75)


def test_forget_quality_is_the_ks_p_value():
    same = [row(set="forget", logp_perturbed=[LN(0.1 + i / 100)]) for i in range(10)]
    assert M.forget_quality(same, same) == pytest.approx(1.0)
    low = [row(set="forget", logp_perturbed=[LN(0.01 * (i + 1))]) for i in range(10)]
    high = [row(set="forget", logp_perturbed=[LN(0.5 + 0.01 * i)]) for i in range(10)]
    # completely separated samples of 10 and 10: exact two-sided p = 2 / C(20, 10)
    assert M.forget_quality(low, high) == pytest.approx(2 / math.comb(20, 10))


def test_model_utility_is_a_harmonic_mean_and_zero_dominates():
    assert M.model_utility([0.5, 1.0, 1.0]) == pytest.approx(3 / (2 + 1 + 1))
    assert M.model_utility([0.5, 0.0, 1.0]) == 0.0
    assert math.isnan(M.model_utility([0.5, float("nan")]))


def test_mia_auc_direction_and_ties():
    forget = [row(logp_answer=-0.1), row(logp_answer=-0.2)]  # low loss: looks trained on
    holdout = [row(logp_answer=-0.3), row(logp_answer=-0.4)]
    assert M.mia_auc(forget, holdout, "loss") == 1.0
    assert M.mia_auc(holdout, forget, "loss") == 0.0
    assert M.mia_auc(forget, forget, "loss") == 0.5


def test_mia_scores():
    r = row(answer="aaaa", logp_answer=-2.0, ntok_answer=4, token_logp=[-1, -2, -3, -4, -5], token_minkpp=[0.5, -1.0, 2.0, -3.0, 1.0])
    assert M.mia_loss(r) == 0.5
    assert M.mia_zlib(r) == pytest.approx(0.5 / len(zlib.compress(b"aaaa")))
    # Min-K% spans leave out the last (end) token: 4 tokens, n = floor(0.4 * 4) = 1
    assert M.mia_min_k(r) == pytest.approx(4.0)  # lowest of -1..-4
    assert M.mia_min_k_plus_plus(r) == pytest.approx(3.0)  # lowest of 0.5, -1, 2, -3


@pytest.mark.parametrize(
    "token_logp, k, expected",
    [
        ([-0.1, -2.0, -0.5, -3.0, -0.01], 0.4, 3.0),  # OpenUnlearning's span: end token out, n = floor(1.6) = 1
        ([-0.1, -2.0, -0.5, -3.0, -0.01, -0.2], 0.4, 2.5),  # 5 scored, n = 2: -3.0, -2.0
        ([-0.1, -2.0, -0.5, -3.0, -0.01], 1.0, 1.4),  # k = 1: the mean of the four
        ([-0.7, -0.01], 0.4, 0.7),  # one token left: n = max(1, 0) = 1
    ],
)
def test_min_k_over_the_sources_span(token_logp, k, expected):
    assert M.mia_min_k(row(token_logp=token_logp), k) == pytest.approx(expected)
    assert M.mia_min_k_plus_plus(row(token_minkpp=token_logp), k) == pytest.approx(expected)  # the same arithmetic on z-scores


def test_a_single_token_answer_has_no_min_k_span_and_is_left_out_of_the_auc():
    assert math.isnan(M.mia_min_k(row(token_logp=[-0.3])))
    forget = [row(logp_answer=-0.1, token_logp=[-0.1, -0.0]), row(logp_answer=-0.1, token_logp=[-0.2])]  # the second: empty span
    holdout = [row(logp_answer=-0.3, token_logp=[-0.9, -0.0])]
    assert M.mia_auc(forget, holdout, "min_k") == 1.0


@pytest.mark.parametrize(
    "auc, reference_auc, expected",
    [
        (0.9, 0.5, -80.0),  # ((1 - 0.9) - (1 - 0.5)) / (1 - 0.5) x 100: under-unlearning is negative (MUSE, OpenUnlearning)
        (0.9, 0.6, -75.0),  # the denominator is 1 - AUC_ref, not AUC_ref
        (0.5, 0.5, 0.0),
        (0.3, 0.5, 40.0),  # over-unlearning is positive
        (1.0, 0.2, -100.0),
    ],
)
def test_privleak_is_muses_percent(auc, reference_auc, expected):
    assert M.privleak(auc, reference_auc) == pytest.approx(expected)
    muse_auc, muse_ref = 1 - auc, 1 - reference_auc  # MUSE's own convention: forget labelled the non-member class
    assert M.privleak(auc, reference_auc) == pytest.approx((muse_auc - muse_ref) / muse_ref * 100)


def test_privleak_against_a_perfect_reference_is_nan_not_an_epsilon():
    assert math.isnan(M.privleak(0.7, 1.0))


def test_efficacy_and_answered_right():
    assert M.efficacy(0.2, 0.8) == pytest.approx(0.75)
    assert math.isnan(M.efficacy(0.2, 0.0))
    assert M.answered_right(row(short_recall=0.5, rouge_l_recall=0.2))
    assert not M.answered_right(row(short_recall=0.4, rouge_l_recall=0.9, answer_index=0))  # sentence recall and MC do not count
    assert not M.answered_right(row())
