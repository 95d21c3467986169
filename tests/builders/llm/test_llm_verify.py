"""Verification of LLM output against the fact graph: tables of accepted and rejected cases, and the cache and config contracts."""

from __future__ import annotations

import dataclasses
import email.utils
import time
from collections import defaultdict

import pytest

from entity_unlearn.builders import LLMConfig, LLMError, WorldNames, verify_biography, verify_paraphrase, verify_perturbed
from entity_unlearn.builders.llm.backend import retry_after_s
from entity_unlearn.builders.llm.cache import LLMCache, request_key
from entity_unlearn.builders.llm.enrich import substitute
from entity_unlearn.builders.llm.verify import assign_facts, numbers_in, split_sentences


@pytest.fixture(scope="module")
def ctx(small_world):
    facts = defaultdict(list)
    for f in small_world.facts:
        facts[f.entity_id].append(f)
    entities = {e.entity_id: e for e in small_world.entities}
    return small_world, facts, entities, WorldNames.from_world(small_world)


def test_every_template_biography_and_paraphrase_passes(ctx):
    """The rules are what the template renderer already guarantees: none of its outputs is rejected."""
    world, facts, entities, names = ctx
    for bio in world.biographies:
        assert verify_biography(bio.text, entities[bio.entity_id], facts[bio.entity_id], names) == [], bio.entity_id
        sentences = [s for p in bio.text.split("\n\n") for s in split_sentences(p)]
        assert sentences == [s.text for s in bio.sentences]
        for s in bio.sentences:  # a value two facts share (both parents bakers) is assigned to both
            assert s.fact_ids[0] in assign_facts(s.text, facts[bio.entity_id])
    direct = [p for p in world.probes if p.depth == "d1" and p.attack == "none"]
    for p in direct:
        e = entities[p.entity_id]
        cited = [f.text for f in facts[e.entity_id] if f.text in p.question + p.answer]
        assert verify_paraphrase(p.paraphrased_question, p.paraphrased_answer, p, e, names, cited) == [], p.probe_id


def _person(ctx, pid="P00000"):
    world, facts, entities, names = ctx
    bio = next(b for b in world.biographies if b.entity_id == pid)
    return entities[pid], facts[pid], bio.text, names


def _other_name(ctx, e):
    world = ctx[0]
    linked = {f.text for f in ctx[1][e.entity_id]}
    return next(x.name for x in world.entities if x.entity_type == "person" and x.name not in linked and x.name != e.name)


def _occ(facts):
    return next(x for x in facts if x.relation == "occupation")


BIO_CASES = [
    # (edit of the template biography, fragment every expected reason shares, or None when accepted)
    ("unchanged", lambda t, e, f, other: t, None),
    (
        "fact sentence dropped",
        lambda t, e, f, other: t.replace(next(s for s in split_sentences(t.split("\n\n")[1]) if "occupation" not in s and _occ(f).text in s), ""),
        "is missing",
    ),
    ("birth year changed", lambda t, e, f, other: t.replace(f[0].text, f[0].text[:-4] + str(int(f[0].text[-4:]) + 1)), "is missing"),
    ("invented age", lambda t, e, f, other: t + " At 212 years old, " + e.name + " retired.", "the number 212"),
    ("another entity named", lambda t, e, f, other: t + f" {e.name} admired {other}.", "which is not a fact of"),
    ("unknown proper name", lambda t, e, f, other: t + f" {e.name} travelled to Zorblatia often.", "introduces the name 'Zorblatia'"),
    ("lowercase fact opening a sentence", lambda t, e, f, other: t + f" {_occ(f).text.capitalize()} was a calling.", None),
    ("empty", lambda t, e, f, other: " ", "empty"),
]


@pytest.mark.parametrize("name,edit,reason", BIO_CASES, ids=[c[0] for c in BIO_CASES])
def test_biography_cases(ctx, name, edit, reason):
    e, facts, text, names = _person(ctx)
    reasons = verify_biography(edit(text, e, facts, _other_name(ctx, e)), e, facts, names)
    if reason is None:
        assert reasons == []
    else:
        assert reasons and any(reason in r for r in reasons), reasons


def test_a_fact_year_must_share_the_sentence(ctx):
    e, facts, text, names = _person(ctx)
    work = next(f for f in facts if f.relation == "works")
    sentence = next(s for s in split_sentences(text.split("\n\n")[2]) if work.text in s)
    moved = text.replace(sentence, f"{e.name} wrote {work.text}. That book came out in {work.year}.")
    assert any("with its year" in r for r in verify_biography(moved, e, facts, names))


def test_a_value_shared_by_two_facts_must_appear_twice(ctx):
    world, facts, entities, names = ctx
    e = entities["P00000"]
    base = facts["P00000"]
    twin = dataclasses.replace(_occ(base), fact_id="P00000/x/1", relation="father_occupation_twin")
    text = next(b for b in world.biographies if b.entity_id == "P00000").text
    reasons = verify_biography(text, e, base + [twin], names)
    assert any("appear 2 times" in r for r in reasons)


def test_sentences_and_numbers():
    assert split_sentences("R. Garond met Dr. Vell. He left! Did he? Yes.") == ["R. Garond met Dr. Vell.", "He left!", "Did he?", "Yes."]
    assert numbers_in("born March 4, 1961; 120,000 people, aged 7.") == ["4", "1961", "120,000", "7"]


PARA_CASES = [
    ("accepted", "In which city did {n} come into the world, then?", "{n} first saw the light of day in {a}.", None),
    ("entity not named", "In which city was this person born?", "It was {a}.", "must name"),
    ("repeats the question", "{q}", "It was {a}.", "repeats the original"),
    ("answer given away", "Was {n} born in {a}?", "Yes, {a}.", "gives the answer"),
    ("answer missing", "In which city was {n} born?", "Nobody knows.", "exactly once"),
    ("answer twice", "In which city was {n} born?", "{a}; yes, {a}.", "exactly once"),
    ("invented number", "In which city was {n} born in 1999?", "In {a}.", "the number 1999"),
    ("foreign name", "In which city was {n} born?", "In {a}, near the home of {o}.", "which is not a fact of"),
    ("unknown name", "In which city was {n} born?", "In {a}, in the valley of Qorthand.", "introduces the name 'Qorthand'"),
]


@pytest.mark.parametrize("name,pq,pa,reason", PARA_CASES, ids=[c[0] for c in PARA_CASES])
def test_paraphrase_cases(ctx, name, pq, pa, reason):
    world, facts, entities, names = ctx
    p = next(p for p in world.probes if p.entity_id == "P00000" and p.depth == "d1" and p.attack == "none" and "/birthplace/" in p.probe_id)
    e = entities["P00000"]
    other = _other_name(ctx, e)
    fill = {"n": e.name, "a": p.short_answer, "o": other, "q": p.question}
    reasons = verify_paraphrase(pq.format(**fill), pa.format(**fill), p, e, names, [p.short_answer])
    assert (reasons == []) if reason is None else any(reason in r for r in reasons), reasons


def test_paraphrase_must_keep_the_year(ctx):
    world, facts, entities, names = ctx
    p = next(p for p in world.probes if p.entity_id == "P00000" and p.depth == "d1" and p.attack == "none" and "/works/" in p.probe_id)
    e = entities["P00000"]
    reasons = verify_paraphrase(f"Which book is by {e.name}?", f"It is {p.short_answer}.", p, e, names, [p.short_answer])
    assert any("must keep" in r for r in reasons)


PERTURB_CASES = [
    ("dates ok", ["March 4, 1961", "May 30, 1950"], "January 8, 2010", "date", [], None),
    ("ISO date", ["1961-03-04", "May 30, 1950"], "January 8, 2010", "date", [], "like 'March 4, 1961'"),
    ("impossible date", ["February 30, 1961", "May 30, 1950"], "January 8, 2010", "date", [], "not a real date"),
    ("zero-padded day", ["March 04, 1961", "May 30, 1950"], "January 8, 2010", "date", [], "like 'March 4, 1961'"),
    ("true value", ["Port Vegel", "port lotren"], "Port Lotren", "name", [], "is a true answer"),
    (
        "another true value of the field",
        ["A Season for Tamas", "Tidal Sparrows"],
        "The Launen Threshold",
        "name",
        ["A Season for Tamas"],
        "is a true answer",
    ),
    ("duplicates", ["Port Vegel", "port vegel"], "Port Lotren", "name", [], "given twice"),
    ("too few", ["Port Vegel"], "Port Lotren", "name", [], "exactly 2"),
    ("lowercase name", ["port Vegel", "Sepetrer"], "Port Lotren", "name", [], "capitalised name"),
    ("digits in a name", ["Route 66", "Sepetrer"], "Port Lotren", "name", [], "contains digits"),
    ("choice capitalised", ["Novelist", "poet"], "playwright", "choice", [], "lowercase"),
    ("int without separators", ["120000", "45,000"], "88,000", "int", [], "like '120,000'"),
    ("int ok", ["120,000", "4,500"], "88,000", "int", [], None),
    ("year ok", ["1983", "1990"], "1985", "year", [], None),
    ("year as words", ["nineteen", "1990"], "1985", "year", [], "digits"),
    (
        "list with a true element",
        ["Vell Lens and Orb Loom", "Kest Engine"],
        "Vell Lens and Ama Loom",
        "list",
        ["Vell Lens", "Ama Loom"],
        "true element",
    ),
    ("sentence, not an answer", ["Port\nVegel", "Sepetrer"], "Port Lotren", "name", [], "one-line"),
]


@pytest.mark.parametrize("name,wrong,short,kind,true,reason", PERTURB_CASES, ids=[c[0] for c in PERTURB_CASES])
def test_perturbed_cases(name, wrong, short, kind, true, reason):
    reasons = verify_perturbed(wrong, short, kind, true, k=2)
    assert (reasons == []) if reason is None else any(reason in r for r in reasons), reasons


def test_template_wrong_answers_pass(ctx):
    from entity_unlearn.builders import default_registry
    from entity_unlearn.builders.llm.tasks import EntityContext, PerturbTask

    world, facts, entities, names = ctx
    registry, task = default_registry(), PerturbTask()
    for e in list(entities.values())[:25]:
        direct = tuple(p for p in world.probes if p.entity_id == e.entity_id and p.depth == "d1" and p.attack == "none")
        c = EntityContext(e, tuple(facts[e.entity_id]), registry.get(e.entity_type), direct, names, world.k_perturbed)
        for p in direct:
            wrong = [o for o in p.options if o != p.short_answer]
            assert verify_perturbed(wrong, p.short_answer, c.answer_kind(p), task.true_values(c, p), world.k_perturbed) == [], p.probe_id


def test_substitute_keeps_articles_and_capitals():
    assert substitute("By trade, X was a playwright.", "playwright", "essayist") == "By trade, X was an essayist."
    assert substitute("An actor, X was.", "actor", "poet") == "A poet, X was."
    assert substitute("Playwright was the trade.", "playwright", "essayist") == "Essayist was the trade."
    assert substitute("It is Port Lotren, a city.", "Port Lotren", "Sepetrer") == "It is Sepetrer, a city."


def test_retry_after_forms():
    assert retry_after_s({"retry-after": "2"}) == 2.0
    assert retry_after_s({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 25 < retry_after_s({"retry-after": when}) <= 31
    assert retry_after_s({}) is None and retry_after_s({"retry-after": "soon"}) is None


def test_cache_keys_and_atomic_entries(tmp_path):
    a = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "temperature": 0}
    assert request_key(a) == request_key(dict(reversed(list(a.items()))))
    assert request_key(a) != request_key({**a, "model": "n"})
    cache = LLMCache(tmp_path)
    key = request_key(a)
    assert cache.get(key) is None
    cache.put(key, {"content": "x"})
    assert cache.get(key)["content"] == "x" and len(cache) == 1
    assert not list(tmp_path.rglob("*.tmp"))
    cache.path(key).write_text('{"content": "trunc')  # a damaged entry is refetched, never trusted
    assert cache.get(key) is None


def test_config_errors_name_the_option():
    with pytest.raises(LLMError, match="--llm-base-url"):
        LLMConfig(model="m", base_url="localhost:8000/v1")
    with pytest.raises(LLMError, match=r"--llm-tasks.*did you mean 'paraphrase'"):
        LLMConfig(model="m", tasks=("bio", "paraphrse"))
    with pytest.raises(LLMError, match="--llm"):
        LLMConfig(model="")
    assert "sk-secret" not in repr(LLMConfig(model="m", api_key="sk-secret"))
