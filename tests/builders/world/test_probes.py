"""Biographies and probes: every answer re-derived from the fact graph, every template rendered."""

from __future__ import annotations

import re
from collections import Counter, defaultdict

import pytest

from entity_unlearn.builders import DEPTHS, default_registry
from entity_unlearn.builders.world.bounds import year_of
from entity_unlearn.builders.world.facts import entity_view
from entity_unlearn.builders.world.probes import ATTACKS, misspell
from entity_unlearn.builders.world.templates import builtin_templates


@pytest.fixture(scope="module")
def index(small_world):
    facts = {f.fact_id: f for f in small_world.facts}
    entities = {e.entity_id: e for e in small_world.entities}
    by_entity = defaultdict(list)
    for f in small_world.facts:
        by_entity[f.entity_id].append(f)
    return facts, entities, by_entity


def test_every_fact_is_stated_in_its_biography(small_world, index):
    _, _, by_entity = index
    for bio in small_world.biographies:
        stated = {fid for s in bio.sentences for fid in s.fact_ids}
        assert stated == {f.fact_id for f in by_entity[bio.entity_id]}
        for s in bio.sentences:
            fact = index[0][s.fact_ids[0]]
            assert fact.text in s.text and s.text in bio.text
        assert bio.text.count("\n\n") >= 1  # several paragraphs


def test_biographies_vary_their_phrasing(small_world):
    used = defaultdict(set)
    for bio in small_world.biographies:
        for s in bio.sentences:
            field, variant = s.template_id.split("#")[1].rsplit("__", 1)
            used[(s.template_id.split("/")[0], field)].add(variant)
    templates = builtin_templates()
    for (tdir, field), variants in used.items():
        available = templates.variants(f"{tdir}/bio.j2", field)
        if len(available) > 1:
            assert len(variants) > 1, f"{tdir} {field}: one phrasing only"
    openings = Counter(b.text.split(".")[0].split(" ")[-1] for b in small_world.biographies)
    assert len(openings) > 1


def test_every_bio_phrasing_renders_for_every_entity(small_world, index):
    """Not only the phrasing the seed chose: every numbered block, for every fact of every fixture entity."""
    _, entities, by_entity = index
    registry, templates = default_registry(), builtin_templates()
    names = {e.entity_id: e.name for e in small_world.entities}
    rendered = 0
    for e in small_world.entities:
        view = entity_view(e, registry, names, templates)
        path = f"{e.entity_type}/bio.j2"
        for f in by_entity[e.entity_id]:
            for block in templates.variants(path, f.relation):
                for first, i, n in ((True, 0, 1), (False, 1, 3), (False, 2, 3)):
                    text = templates.render(path, block, e=view, value=f.text, year=f.year, first=first, i=i, n=n)
                    assert f.text in text and "  " not in text
                    rendered += 1
    assert rendered > 1000


def _derive(p, facts, entities, by_entity):
    """The short answer recomputed from the fact graph alone."""
    cited = [facts[fid] for fid in p.fact_ids]
    e = entities[p.entity_id]
    base = p.relation
    if p.relation.endswith("_of") and p.kind in ("direct", "paraphrase"):  # asked from the other side: who states it
        assert all(f.target_id == e.entity_id for f in cited)
        return builtin_templates().render("values.j2", "list", value=[entities[f.entity_id].name for f in cited])
    if p.kind in ("cloze", "direct", "paraphrase"):
        assert all(f.entity_id == e.entity_id for f in cited)
        if len(cited) > 1:  # a question about a whole list
            return builtin_templates().render("values.j2", "list", value=[f.text for f in cited])
        return cited[0].text
    if p.kind == "reverse":
        assert all(f.entity_id == e.entity_id for f in cited)
        return e.name
    if p.kind == "hop":
        link, fact = cited
        assert link.entity_id == e.entity_id and link.target_id == fact.entity_id
        return fact.text
    rule = base.split("__")[0]
    if rule == "age_at":
        born, event = cited
        return str(event.year - year_of(born.value))
    if rule == "first_of":
        return min(cited, key=lambda f: f.year).text
    if rule == "next_after":
        return max(cited, key=lambda f: f.year).text
    if rule == "years_between_link":
        at, link, other = cited
        assert link.target_id == other.entity_id
        return str(abs(year_of(at.value) - year_of(other.value)))
    if rule == "age_in":
        year = int(re.search(r"\b(\d{4})\b", p.question).group(1))
        return str(year - year_of(cited[0].value))
    if rule == "count_before":
        year = int(re.search(r"\b(\d{4})\b", p.question).group(1))
        return str(sum(f.year < year for f in cited))
    if rule == "age_at_link":
        at, link, born = cited
        assert link.target_id == born.entity_id
        return str(year_of(at.value) - year_of(born.value))
    raise AssertionError(f"unknown probe {p.template_id}")


def test_every_answer_is_derivable_from_the_facts_it_cites(small_world, index):
    facts, entities, by_entity = index
    for p in small_world.probes:
        assert p.short_answer == _derive(p, facts, entities, by_entity), p.probe_id
        assert p.short_answer in p.answer or p.kind == "cloze" and p.answer.startswith(p.short_answer)


def test_reverse_questions_name_exactly_one_entity(small_world, index):
    facts, _, _ = index
    keys = Counter()
    for p in small_world.probes:
        if p.kind == "reverse" and p.attack == "none":
            keys[tuple((facts[f].relation, facts[f].value, facts[f].year) for f in p.fact_ids)] += 1
    assert keys and max(keys.values()) == 1


def test_perturbed_answers_are_wrong_distinct_and_shaped_like_the_paraphrase(small_world):
    k = small_world.k_perturbed
    for p in small_world.probes:
        assert len(p.perturbed_answer) == k and len(set(p.perturbed_answer)) == k, p.probe_id
        assert p.paraphrased_answer not in p.perturbed_answer and p.answer not in p.perturbed_answer
        assert len(p.options) == k + 1 and len(set(p.options)) == k + 1
        assert p.options[p.answer_index] == p.short_answer
        wrong = [o for i, o in enumerate(p.options) if i != p.answer_index]
        assert p.short_answer not in wrong
        for o in wrong:
            assert any(o in pert for pert in p.perturbed_answer), (p.probe_id, o)


def test_depths_kinds_and_attacks_are_all_present(small_world):
    assert {p.depth for p in small_world.probes} == set(DEPTHS)
    assert {p.kind for p in small_world.probes} == {"cloze", "direct", "paraphrase", "reverse", "hop", "inference"}
    assert {p.attack for p in small_world.probes} == {"none", *ATTACKS}
    assert len({p.probe_id for p in small_world.probes}) == len(small_world.probes)
    per_person = Counter(p.entity_id for p in small_world.probes if p.depth == "d1" and p.attack == "none" and p.entity_type == "person")
    mean = sum(per_person.values()) / len(per_person)
    assert 15 <= mean <= 24, mean  # TOFU trains on 20 QA pairs per author


def test_attacks_keep_the_answer_and_change_the_question(small_world):
    plain = {p.probe_id: p for p in small_world.probes if p.attack == "none"}
    entities = {e.entity_id: e for e in small_world.entities}
    for p in small_world.probes:
        if p.attack == "none":
            continue
        base = plain[p.parent_id]
        assert (p.answer, p.perturbed_answer, p.options, p.fact_ids) == (base.answer, base.perturbed_answer, base.options, base.fact_ids)
        assert p.question != base.question
        name = entities[p.entity_id].name
        if p.attack in ("alias", "misspelt_name"):
            assert name not in p.question
        if p.attack == "multiple_choice":
            assert all(o in p.question for o in p.options)


def test_typed_relation_and_parent(small_world):
    """``relation`` names the field a probe asks about and ``parent_id`` the probe it rewords: nothing is parsed from ids."""
    probes = {p.probe_id: p for p in small_world.probes}
    facts = {f.fact_id: f for f in small_world.facts}
    for p in small_world.probes:
        assert p.kind == "cloze" or p.template_id.split("#")[1].startswith(p.relation + "__"), p.probe_id
        if p.kind in ("cloze", "direct", "paraphrase"):
            assert {facts[f].relation for f in p.fact_ids} == {p.relation.removesuffix("_of")}, p.probe_id
        if p.kind == "paraphrase" or p.attack != "none":
            parent = probes[p.parent_id]
            assert parent.depth == "d1" and parent.attack == "none" and parent.relation == p.relation
            assert parent.fact_ids == p.fact_ids and parent.short_answer == p.short_answer
            if p.kind == "paraphrase":  # a third wording: neither the trained question nor the row's paraphrase
                assert p.question not in (parent.question, parent.paraphrased_question), p.probe_id
        else:
            assert p.parent_id is None


def test_misspelling_is_a_small_change():
    import random

    rng = random.Random(0)
    for name in ["Trakrebrir Haparerk", "Ab Cd", "Lonala Fakroke", "Anna Mattox"]:
        wrong = misspell(name, rng)
        assert wrong != name and abs(len(wrong) - len(name)) <= 1


def test_grammar_rules_hold_in_every_text(small_world):
    """One check per grammar rule of issue 13, over every biography and probe of a world."""
    texts = [b.text for b in small_world.biographies]
    texts += [t for p in small_world.probes for t in (p.question, p.answer, p.paraphrased_question, p.paraphrased_answer, *p.perturbed_answer)]
    text = "\n".join(texts)
    assert not re.findall(r"\b1 (?:novel|book|work|album|film|painting|play|monograph|composition)s\b", text)  # "1 books"
    assert not re.findall(r"\b(?:Industries|Works|Holdings|Laboratories|Systems|Instruments)'s\b", text)  # "Industries's"
    assert not re.findall(r"(?<!the )\bUniversity of\b", text.replace("The University of", "the University of"))  # "from University of"
    assert not re.findall(r"\ba (?:[aeio]\w+|u(?!ni|se|su)\w*)", text), "a/an"  # "a album", "a excavation"
    assert not re.findall(r"\ban (?:[bcdfgjklmnpqrstvwxyz]\w*)", text)  # "an novel"


def test_language_filters():
    from entity_unlearn.builders.world.language import article, definite, ordinal, plural, possessive, words

    assert [article(w) for w in ("architect", "university", "hour", "European", "18-year-old", "8th")] == [
        "an architect",
        "a university",
        "an hour",
        "a European",
        "an 18-year-old",
        "an 8th",
    ]
    assert (plural("novel"), plural("novel", 1), plural("poetry collection"), plural("photo series")) == (
        "novels",
        "novel",
        "poetry collections",
        "photo series",
    )
    assert (ordinal(3), words(3), words(12)) == ("3rd", "three", "12")
    assert (possessive("Anna Berg"), possessive("James"), possessive("Tarvo Industries")) == ("Anna Berg's", "James's", "Tarvo Industries'")
    assert (definite("University of Kessel"), definite("Kessel College")) == ("the University of Kessel", "Kessel College")


def test_a_count_of_one_year_takes_the_singular():
    """ "lie 1 years apart" was a wrong option of a 2,000-person release (the audit's number_agreement found it)."""
    from types import SimpleNamespace

    from entity_unlearn.builders import Templates

    templates = Templates()
    e = SimpleNamespace(name="Vessa", gender="female")
    for path, block in (
        ("place/infer.j2", "years_between_link__sister_city__pa__1"),
        ("organisation/infer.j2", "years_between_link__headquarters__a__1"),
    ):
        one, five = (templates.render(path, block, e=e, answer=n) for n in (1, 5))
        assert " 1 year " in one and " 5 years " in five, (one, five)
