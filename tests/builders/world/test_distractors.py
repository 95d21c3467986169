"""Wrong options a model that never learned the entity cannot tell from the truth (issue 13), and the world rules
they rest on: surname clusters, evenly dealt and pooled vocabularies, holdout values kept out."""

from __future__ import annotations

import random
from collections import Counter, defaultdict

import pytest

from entity_unlearn.builders import SpecError, default_registry, generate_world, sample_world, write_world
from entity_unlearn.builders.audit import audit_folder
from entity_unlearn.builders.release.build import release_world_args
from entity_unlearn.builders.world.draws import Bag, balanced
from entity_unlearn.builders.world.spec import parse_type

REGISTRY = default_registry()
K = 5


@pytest.fixture(scope="module")
def world():
    """A release's world of 100 persons (plus 10 holdout, 20 organisations, 13 places): about the smallest whose
    classes (persons per occupation, companies per industry, cities) hold K + 1 familiar values."""
    return generate_world(**release_world_args(100), seed=0)


def d1(world, relation):
    return [p for p in world.probes if p.relation == relation and p.depth == "d1" and p.attack == "none"]


def test_balanced_options_leave_no_option_likelier_the_truth():
    """With the truth drawn by its popularity, the most popular option is the truth 1/6 of the time (a weighted
    draw without repeats from a small vocabulary makes it the truth far more often)."""
    counts = Counter({"a": 14, "b": 13, "c": 12, "d": 11, "e": 10, "f": 9, "g": 8, "h": 7, "i": 6, "j": 5})  # none over 1/6
    values = list(counts.elements())
    rng = random.Random(0)
    trials = 6000
    hits = naive_hits = 0
    for _ in range(trials):
        truth = rng.choice(values)
        opts = [truth, *balanced(rng, K, counts, truth, {truth})]
        assert len(set(opts)) == K + 1
        hits += max(opts, key=lambda v: counts[v]) == truth
        naive = [truth, *Bag(values).draw(rng, K, {truth})]
        naive_hits += max(naive, key=lambda v: counts[v]) == truth
    assert abs(hits / trials - 1 / 6) < 0.02
    assert naive_hits / trials > 1 / 6 + 0.02  # what the balanced draw corrects


def test_a_value_held_by_more_than_one_in_six_is_in_every_option_set():
    counts = Counter({"a": 50, "b": 1, "c": 1, "d": 1, "e": 1, "f": 1, "g": 1})
    assert all("a" in balanced(random.Random(s), K, counts, "b", {"b"}) for s in range(20))  # type: ignore[operator]
    assert balanced(random.Random(0), K, Counter({"a": 3, "b": 2}), "a", {"a"}) is None  # fewer than K + 1 held


def test_numbers_are_other_entities_values_at_a_uniform_rank(world):
    births = {f.text for f in world.facts if f.relation == "birth_date"}
    probes = d1(world, "birth_date")
    wrong = [o for p in probes for i, o in enumerate(p.options) if i != p.answer_index]
    assert sum(o in births for o in wrong) >= 0.9 * len(wrong)  # familiar: other persons' birth dates
    numeric = [p for p in world.probes if p.relation in ("birth_date", "death_date", "founding_year", "population") and p.attack == "none"]
    ranks = Counter(sorted(p.options, key=_value).index(p.short_answer) for p in numeric)
    assert len(numeric) > 150 and all(0.09 < ranks[r] / len(numeric) < 0.25 for r in range(K + 1)), ranks


def _value(text: str) -> float:
    from datetime import datetime

    try:
        return float(text.replace(",", ""))
    except ValueError:
        return float(datetime.strptime(text, "%B %d, %Y").toordinal())


def test_count_questions_offer_every_count_and_ask_each(world):
    probes = [p for p in world.probes if p.relation == "count_before__works"]
    assert probes and all(sorted(p.options) == [str(i) for i in range(K + 1)] for p in probes)
    asked = Counter(p.short_answer for p in probes if p.attack == "none")
    assert set(asked) == {str(i) for i in range(K + 1)} and max(asked.values()) < 3 * min(asked.values())


def test_options_stay_in_the_answers_class(world):
    """A genre among the occupation's genres, an award of the same field, a sibling of the same surname."""
    ents = {e.entity_id: e for e in world.entities}
    genres = defaultdict(set)
    for e in ents.values():
        if e.entity_type == "person":
            genres[e.attributes["occupation"]].add(e.attributes["genre"])
    held = {g for gs in genres.values() for g in gs}
    for p in d1(world, "genre"):  # the occupation's genres; where too few are held, genres anyone holds
        occupation = ents[p.entity_id].attributes["occupation"]
        assert set(p.options) <= set(genre_vocabulary(occupation)) or set(p.options) <= held, p.options
    awards = [p for p in world.probes if p.relation == "awards" and p.kind != "reverse"]
    same_field = [p for p in awards if all(o.endswith(" for " + p.short_answer.rsplit(" for ", 1)[-1]) for o in p.options)]
    assert len(same_field) > 0.9 * len(awards)  # the rest: a field too rare in the world, asked among all awards
    siblings = [p for p in world.probes if p.relation == "sibling" and p.attack == "none"]
    assert siblings
    for p in siblings:
        surname = ents[p.entity_id].name.split()[-1]
        assert all(o.split()[-1] == surname for o in p.options), (surname, p.options)


def genre_vocabulary(occupation: str) -> tuple[str, ...]:
    from entity_unlearn.builders.world.vocab import read_vocab, vocab_props

    return read_vocab(vocab_props("occupations", None)[occupation]["genres"], None)


def test_families_share_surnames_with_enough_others():
    """Persons of a culture share a family's surname (``surname_share``), so a sibling's wrong options exist."""
    entities = sample_world(REGISTRY, {"person": 200, "organisation": 40, "place": 27}, 5)
    persons = [e for e in entities if e.entity_type == "person"]
    holders = Counter(e.name.split()[-1] for e in persons)
    with_sibling = [e for e in persons if e.links.get("sibling")]
    enough = sum(holders[e.name.split()[-1]] >= K + 2 for e in with_sibling)
    assert enough >= 0.85 * len(with_sibling)
    assert sum(1 for c in holders.values() if c == 1) > 0.25 * len(persons)  # the rest keep surnames of their own


def test_spread_and_pool_deal_a_vocabulary_evenly():
    entities = sample_world(REGISTRY, {"person": 60, "organisation": 40, "place": 36}, 2)
    cultures = Counter(e.attributes["culture"] for e in entities if e.entity_type == "place")
    assert max(cultures.values()) - min(cultures.values()) <= 1 and len(cultures) == 12
    industries = Counter(e.attributes["industry"] for e in entities if e.entity_type == "organisation")
    assert len(industries) == 8 and max(industries.values()) - min(industries.values()) <= 1


def test_holdout_values_are_no_ones_wrong_options(world):
    """The reserved (holdout) persons' names and values occur in no training text: they are nobody's wrong option."""
    held = {e.entity_id for e in [e for e in world.entities if e.entity_type == "person"][-10:]}
    own = {e.name for e in world.entities if e.entity_id in held}
    own |= {f.text for f in world.facts if f.entity_id in held and f.target_id is None}  # not the names they link to
    common = {f.text for f in world.facts if f.entity_id not in held}  # values others hold too (a shared genre)
    leaked = {o for p in world.probes if p.entity_id not in held for i, o in enumerate(p.options) if i != p.answer_index and o in own}
    assert leaked <= common


@pytest.mark.parametrize(
    "change, message",
    [
        ({"surname_share": 0}, "surname_share must be a whole number"),
        ({"attributes": {"kind_of": {"kind": "choice", "values": ["a", "b"], "weights": [1, 2], "spread": True}}}, "spread"),
    ],
)
def test_spec_checks_the_new_keys(change, message):
    raw = {"name": "thing", "id_prefix": "T", "name_style": "place", "paragraphs": [], **change}
    if "attributes" in raw:
        raw["paragraphs"] = [["kind_of"]]
    with pytest.raises(SpecError, match=message):
        parse_type(raw)


def test_a_small_generated_world_passes_the_audit(world, tmp_path):
    """The full-size check (200 persons, six seeds) is bench/audit_seeds.py."""
    write_world(world, tmp_path / "world")
    report = audit_folder(tmp_path / "world")
    assert report["verdict"] == "pass", report["failures"]


def test_aliases_are_never_real_or_famous():
    from entity_unlearn.builders.world.sampler import _alias

    assert _alias("initial_surname", "Ada Berg") == "A. Berg"
    assert _alias("initial_surname", "Eleanor Thomas") is None  # "E. Thomas" is a famous person's short name
    assert _alias("drop_last_word", "Miranda Foundry") is None  # "Miranda" alone is a real name
    assert _alias("drop_last_word", "Watts & Patterson") is None  # "Watts &" is no name
    assert _alias("drop_last_word", "Jusan Works") == "Jusan"


def test_attack_wrappers_vary_and_are_traceable(world):
    """Each template attack wraps its questions in four phrasings, and the probe's template_id names the one used."""
    from entity_unlearn.builders.world.probes import TEMPLATE_ATTACKS

    used = defaultdict(set)
    for p in world.probes:
        if p.attack in TEMPLATE_ATTACKS:
            base, block = p.template_id.rsplit("+attacks.j2#", 1)
            assert block.startswith(p.attack + "__") and p.template_id.startswith(base)
            used[p.attack].add(block)
    assert {k: len(v) for k, v in used.items()} == {k: 4 for k in TEMPLATE_ATTACKS}
