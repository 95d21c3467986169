"""LLM answers that read like the truth, deny it, or are huge; servers that ask for hours; cache entries of another shape.

The pure checks get tables of hand-written cases; the conversation is run against the scripted local server
through the real openai client.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections import defaultdict

import pytest
from openai_server import ScriptedServer

from entity_unlearn.builders import LLMConfig, LLMUnavailable, WorldNames, generate_world, verify_biography, verify_paraphrase, verify_perturbed
from entity_unlearn.builders.llm.cache import LLMCache
from entity_unlearn.builders.llm.enrich import enrich_world
from entity_unlearn.builders.llm.text import negations, normalize

ZW, NBSP, WJ, BOM, SHY = "\u200b", "\u00a0", "\u2060", "\ufeff", "\u00ad"

PERTURB_LOOKALIKES = [
    ("zero-width inside", [f"play{ZW}wright", "poet"], "is a true answer"),
    ("no-break space after", [f"playwright{NBSP}", "poet"], "is a true answer"),
    ("word joiner and BOM", [f"{BOM}playwright{WJ}", "poet"], "is a true answer"),
    ("soft hyphen", [f"play{SHY}wright", "poet"], "is a true answer"),
    ("full-width letters", ["ｐｌａｙｗｒｉｇｈｔ", "poet"], "is a true answer"),
    ("two that read the same", ["poet", f"po{ZW}et"], "given twice"),
    ("the truth reworded", ["playwright and poet", "poet"], "contains the true answer"),
    ("a negated truth", ["not a playwright", "poet"], "negates or hedges"),
    ("different words", ["poet", "novelist"], None),
]


@pytest.mark.parametrize("name,wrong,reason", PERTURB_LOOKALIKES, ids=[c[0] for c in PERTURB_LOOKALIKES])
def test_wrong_answers_are_compared_after_normalisation(name, wrong, reason):
    reasons = verify_perturbed(wrong, "playwright", "choice", ["playwright"], k=2)
    assert (reasons == []) if reason is None else any(reason in r for r in reasons), reasons


def test_normalisation_and_negation_words():
    assert normalize(f" play{ZW}wright{NBSP}\n and\tpoet ") == "playwright and poet"
    assert normalize("ｐｌａｙ") == "play"
    assert negations("It is false and never happened that the answer is playwright.") == ["false", "never"]
    assert negations("He didn’t write it; reportedly he was a poet.") == ["n't", "reportedly"]
    assert negations("Knotley and Norton wrote Nevermore.") == []  # whole words only


@pytest.fixture(scope="module")
def ctx():
    world = generate_world({"person": 6, "organisation": 2, "place": 3}, seed=0)
    facts = defaultdict(list)
    for f in world.facts:
        facts[f.entity_id].append(f)
    return world, facts, {e.entity_id: e for e in world.entities}, WorldNames.from_world(world)


def test_a_paraphrase_that_denies_the_fact_is_refused(ctx):
    world, _, entities, names = ctx
    p = next(p for p in world.probes if p.entity_id == "P00000" and p.depth == "d1" and p.attack == "none" and p.relation == "occupation")
    e = entities["P00000"]
    pq = f"What does {e.name} do for a living?"
    assert verify_paraphrase(pq, f"{e.name} works as a {p.short_answer}.", p, e, names) == []
    for pa in (
        f"It is false and never happened that the answer is {p.short_answer}.",
        f"{e.name} was reportedly a {p.short_answer}.",
        f"{e.name} is probably a {p.short_answer}.",
        f"{e.name} is not a {p.short_answer}.",
    ):
        assert any("negates or hedges" in r for r in verify_paraphrase(pq, pa, p, e, names)), pa
    assert any("negates or hedges" in r for r in verify_paraphrase(f"Is it true that {e.name} never worked?", p.answer, p, e, names))


def test_a_biography_that_denies_its_facts_is_refused_and_one_with_look_alike_spaces_is_read_as_it_reads(ctx):
    world, facts, entities, names = ctx
    bio = next(b for b in world.biographies if b.entity_id == "P00000")
    e = entities["P00000"]
    assert verify_biography(bio.text, e, facts["P00000"], names) == []
    denied = "\n\n".join(f"It is not true that {p[0].lower()}{p[1:]}" for p in bio.text.split("\n\n"))
    assert any("negates or hedges" in r and "'not'" in r for r in verify_biography(denied, e, facts["P00000"], names))
    spaced = bio.text.replace(" ", NBSP, 3).replace(e.name, e.name[:2] + ZW + e.name[2:])
    assert verify_biography(spaced, e, facts["P00000"], names) == []


def test_a_title_holding_a_negation_word_is_not_a_denial(ctx):
    world, facts, entities, names = ctx
    e = entities["P00000"]
    fact = next(f for f in facts["P00000"] if f.relation == "works")
    titled = [f if f is not fact else dataclasses.replace(f, text="Never the Tide") for f in facts["P00000"]]
    bio = next(b for b in world.biographies if b.entity_id == "P00000").text.replace(fact.text, "Never the Tide")
    assert not [r for r in verify_biography(bio, e, titled, names) if "negates" in r]


@pytest.fixture()
def server():
    s = ScriptedServer(stall_s=2.0, retry_after="0.6").start()
    yield s
    s.stop()


def llm(server, tmp_path, **kw) -> LLMConfig:
    base = dict(model="m", base_url=server.url, api_key="sk-test", cache_dir=tmp_path / "cache", timeout_s=2.0, backoff_base_s=0.02)
    return LLMConfig(**{**base, **kw})


def test_denials_and_look_alikes_from_a_server_fall_back_to_the_template_wording(server, tmp_path):
    world = generate_world({"person": 3, "organisation": 1, "place": 2}, seed=0)
    a, b, c = (e.entity_id for e in world.entities if e.entity_type == "person")
    server.script = {("perturb", a): ["lookalike"], ("paraphrase", b): ["negated"], ("bio", c): ["negated"]}
    out, report = enrich_world(world, llm(server, tmp_path, max_attempts=1))
    by_id = {p.probe_id: p for p in out.probes}
    for p in world.probes:
        if p.entity_id == a and p.depth == "d1" and p.attack == "none":
            q = by_id[p.probe_id]
            assert q.options == p.options and q.source == "template_fallback"  # the template's wrong answers stay
            assert len({normalize(o).casefold() for o in q.options}) == len(q.options)
        if p.entity_id == b and p.depth == "d1" and p.attack == "none":
            assert by_id[p.probe_id].paraphrased_answer == p.paraphrased_answer and not negations(by_id[p.probe_id].paraphrased_answer)
    bio_c = next(x for x in out.biographies if x.entity_id == c)
    assert bio_c.source == "template_fallback" and "not true" not in bio_c.text
    acceptance = report["generation"]["acceptance"]
    assert acceptance["perturb"]["fallbacks"] > 0 and acceptance["paraphrase"]["fallbacks"] > 0 and acceptance["bio"]["fallbacks"] == 1


def test_a_huge_answer_is_neither_cached_nor_sent_back(server, tmp_path):
    world = generate_world({"person": 2, "organisation": 1, "place": 2}, seed=0)
    a = next(e.entity_id for e in world.entities if e.entity_type == "person")
    server.script = {("perturb", a): ["huge"]}
    out, report = enrich_world(world, llm(server, tmp_path, max_attempts=2, tasks=("perturb",)))
    retry = [r for r in server.by("perturb") if r["entity"] == a]
    assert [r["behaviour"] for r in retry] == ["huge", "good"]
    sent = json.dumps(retry[1]["body"])
    assert len(sent) < 100_000 and "characters, not repeated here" in sent and "over the limit" in sent
    assert max(p.stat().st_size for p in (tmp_path / "cache").rglob("*.json")) < 100_000
    assert report["generation"]["acceptance"]["perturb"]["fallbacks"] == 0


def test_a_retry_after_of_hours_ends_the_run_at_once_with_a_message(server, tmp_path):
    world = generate_world({"person": 2, "organisation": 1, "place": 2}, seed=0)
    server.retry_after = "7200"
    server.default = "429"
    start = time.monotonic()
    with pytest.raises(LLMUnavailable, match=r"asks to wait 7,200 s .* rerun later"):
        enrich_world(world, llm(server, tmp_path, tasks=("bio",), concurrency=1))
    assert time.monotonic() - start < 30


def test_a_cache_entry_that_is_not_an_object_is_refetched(tmp_path):
    cache = LLMCache(tmp_path)
    key = "ab" * 32
    cache.path(key).parent.mkdir(parents=True)
    for text in ("[1, 2, 3]", '"text"', "null", "{truncated"):
        cache.path(key).write_text(text, encoding="utf-8")
        assert cache.get(key) is None
