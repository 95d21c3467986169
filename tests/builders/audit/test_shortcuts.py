"""Each shortcut heuristic fires on a hand-made world built to reward it, and none fires on a fair one."""

from __future__ import annotations

import math

import pytest
from crafted import N, name, probe, write_world

from entity_unlearn.builders.audit import HEURISTICS, audit_folder, get_heuristic, heuristic, load_thresholds
from entity_unlearn.builders.audit.floor import BigramLM

RELATION = "gadget/colour"


def unique(i: int, k: int) -> str:
    """A one-word option no text uses, the same length for every (i, k)."""
    return f"qz{i:02d}x{k}"


def longest_world(i: int):
    opts = [f"Tone{i:02d}{k}" for k in range(6)]
    opts[i % 6] = f"Tone{i:02d} Lavender Emerald"
    return f"Which colour has item {i}?", opts, i % 6, None


def median_world(i: int):
    values = [100, 200, 500 + i, 900, 1000, 1100]  # sorted: the truth is one of the middle pair
    opts = [str(v) for v in values]
    return f"How many parts has item {i}?", opts, 2, None


def familiarity_world(i: int):
    opts = [unique(i, k) for k in range(6)]
    return f"Which code has item {i}?", opts, i % 6, f"Its code is {opts[i % 6]}."


def overlap_world(i: int):
    opts = [unique(i, k) for k in range(6)]
    opts[i % 6] = f"velvet{i:02d}"
    return f"Which code matches the velvet{i:02d} lantern?", opts, i % 6, None


def prior_world(i: int):
    opts = [unique(i, k) for k in range(6)]
    opts[i % 6] = "common"  # the true answer of every entity
    return f"Which code has item {i}?", opts, i % 6, None


def own_name_world(i: int):
    others = [name((i + k) % N) for k in range(1, 6)]
    opts = others[: i % 6] + [name(i)] + others[i % 6 :]
    return f"Which name does {name(i)} sign with?", opts, i % 6, None


def fair_world(i: int):
    return f"Which code has item {i}?", [unique(i, k) for k in range(6)], i % 6, None


WORLDS = {
    "longest": longest_world,
    "median": median_world,
    "familiarity": familiarity_world,
    "overlap": overlap_world,
    "answer_prior": prior_world,
    "own_name": own_name_world,
}


def build(tmp_path, make) -> dict:
    probes, bios = [], {}
    for i in range(N):
        q, opts, truth, bio = make(i)
        probes.append(probe(i, q, opts, truth))
        if bio:
            bios[i] = bio
    return audit_folder(write_world(tmp_path / "world", probes, bios))


@pytest.mark.parametrize("name_", sorted(WORLDS))
def test_each_heuristic_fires_on_the_world_that_rewards_it(tmp_path, name_):
    report = build(tmp_path, WORLDS[name_])
    cell = report["shortcuts"][name_]["by_relation"][RELATION]
    assert cell["n"] == N
    # the median of six options is the middle pair (a tie, so 1/2); the others pick the truth alone
    assert cell["gain"] == pytest.approx((0.5 if name_ == "median" else 1.0) - 1 / 6, abs=1e-3)
    failed = {(f["rule"], f["subject"]) for f in report["failures"]}
    assert ("max_gain_relation", f"{name_} on {RELATION}") in failed
    assert ("max_gain_overall", name_) in failed


def test_no_heuristic_fires_on_a_fair_world(tmp_path):
    report = build(tmp_path, fair_world)
    for name_, h in report["shortcuts"].items():
        if name_ == "median":
            assert h["overall"]["n"] == 0  # no option is a number: it does not apply
            continue
        assert h["overall"]["gain"] == 0.0, name_
    assert report["floor"]["mc"]["overall"]["gain"] == 0.0
    assert not [f for f in report["failures"] if f["check"] == "shortcuts"]


def test_answer_prior_does_not_count_the_asked_entitys_own_fact_seen_from_another(tmp_path):
    """Twins 2j and 2j + 1 share one answer, "how many years apart were X and its twin made?", computed from both
    twins' facts: the twin's answer is not a prior (it cites X's own fact). The same answers given by facts of
    the answering entity alone are a prior, and the heuristic picks them."""
    facts = [
        {"fact_id": f"G{i:05d}/made/1", "entity_id": f"G{i:05d}", "relation": "made", "value": str(1800 + 7 * i), "text": str(1800 + 7 * i)}
        for i in range(N)
    ]

    def world(cite_twin: bool) -> list[dict]:
        probes = []
        for i in range(N):
            twin = i ^ 1
            opts = [unique(i, k) for k in range(6)]
            opts[i % 6] = f"span{i // 2:02d}"  # the twins' common answer; the wrong options are no one's answer
            p = probe(i, f"How many years apart were item {i} and its twin made?", opts, i % 6, field="years_apart", depth="d4", kind="inference")
            p["fact_ids"] = [f"G{i:05d}/made/1"] + ([f"G{twin:05d}/made/1"] if cite_twin else [])
            probes.append(p)
        return probes

    twins = audit_folder(write_world(tmp_path / "twins", world(True), facts=facts))
    assert twins["shortcuts"]["answer_prior"]["by_relation"]["gadget/years_apart"]["gain"] == 0.0
    apart = audit_folder(write_world(tmp_path / "apart", world(False), facts=facts))
    assert apart["shortcuts"]["answer_prior"]["by_relation"]["gadget/years_apart"]["gain"] == pytest.approx(5 / 6, abs=1e-3)


def test_heuristics_are_a_registry_with_did_you_mean():
    assert set(WORLDS) <= set(HEURISTICS)
    with pytest.raises(KeyError, match="did you mean 'median'"):
        get_heuristic("medain")
    with pytest.raises(ValueError, match="registered twice"):
        heuristic("longest")(lambda p, ctx: set())


def test_a_new_heuristic_is_one_function(tmp_path):
    @heuristic("first_option")
    def first_option(p, ctx):
        """Pick the first option."""
        return {0}

    try:
        probes = [probe(i, f"Which code has item {i}?", [unique(i, k) for k in range(6)], 0) for i in range(N)]
        report = audit_folder(write_world(tmp_path / "w", probes))
        assert report["shortcuts"]["first_option"]["overall"]["gain"] == pytest.approx(5 / 6, abs=1e-3)
        assert report["shortcuts"]["first_option"]["description"] == "Pick the first option."
    finally:
        del HEURISTICS["first_option"]


def test_bigram_floor_is_a_distribution_and_fires_on_familiar_wording(tmp_path):
    lm = BigramLM(["the red fox", "the red hen", "a blue fox"], add_k=0.5, prior_weight=2.0)
    words = ["the", "red", "fox", "hen", "a", "blue", "unseen"]
    for prev in ("<s>", "red", "fox"):
        total = sum((lm.bi.get((prev, w), 0) + lm.mu * lm.p_uni(w)) / (lm.ctx.get(prev, 0) + lm.mu) for w in words[:-1])
        # every seen word plus one unknown word's mass (an unseen word stands for all of them)
        total += (lm.mu * lm.p_uni("unseen")) / (lm.ctx.get(prev, 0) + lm.mu)
        assert math.isclose(total, 1.0)
    report = build(tmp_path, familiarity_world)
    assert report["floor"]["mc"]["by_relation"][RELATION]["gain"] > 0.5  # the true codes are in the training text


def test_thresholds_file_has_every_key():
    t = load_thresholds()
    assert (t.max_gain_overall, t.max_gain_relation, t.min_probes, t.min_d1_question_forms) == (0.05, 0.08, 30, 4)
    assert t.relation_false_alarm == 0.05


def test_a_relation_fails_only_beyond_noise(tmp_path):
    """A gain over 0.08 on a relation fails when noise cannot explain it (``relation_noise_z`` standard errors)."""

    def sometimes_longest(i: int):  # the truth is the longest option on every fourth probe only
        opts = [f"Tone{i:02d}{k}" for k in range(6)]
        longest = i % 6 if i % 4 == 0 else (i + 1) % 6
        opts[longest] = f"Tone{i:02d} Lavender Emerald"
        return f"Which colour has item {i}?", opts, i % 6, None

    report = build(tmp_path / "some", sometimes_longest)
    cell = report["shortcuts"]["longest"]["by_relation"][RELATION]
    f = 10 / N  # probes 0, 4, ..., 36
    assert cell["gain"] == pytest.approx(f - 1 / 6, abs=1e-3) and cell["gain"] > 0.08
    assert cell["se"] == pytest.approx(math.sqrt(f * (1 - f) / (N - 1)), abs=1e-3)  # scores are 5/6 or -1/6
    assert 2 < report["relation_noise_z"] < 4 and cell["gain"] < report["relation_noise_z"] * cell["se"]
    assert ("max_gain_relation", f"longest on {RELATION}") not in {(x["rule"], x["subject"]) for x in report["failures"]}
    always = build(tmp_path / "always", longest_world)["failures"]
    assert any(x["rule"] == "max_gain_relation" and x["subject"] == f"longest on {RELATION}" for x in always)
