"""The sampled world: invariants over many seeds, violations named, determinism, files."""

from __future__ import annotations

import dataclasses
import hashlib
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from entity_unlearn.builders import (
    WorldFileError,
    WorldInvariantError,
    check_world,
    default_registry,
    generate_world,
    read_world,
    sample_world,
    split_counts,
    world_violations,
    write_world,
)
from entity_unlearn.builders.world.blocklist import is_notable, is_real_word
from entity_unlearn.cli import main

REGISTRY = default_registry()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), persons=st.integers(20, 120))
def test_invariants_hold_for_any_seed(seed, persons):
    counts = {"person": persons, "organisation": max(2, persons // 5), "place": max(3, persons // 8)}
    entities = sample_world(REGISTRY, counts, seed)
    assert world_violations(entities, REGISTRY) == []
    assert Counter(e.entity_type for e in entities) == counts


def _replace(entities, entity_id, **changes):
    return [dataclasses.replace(e, **changes) if e.entity_id == entity_id else e for e in entities]


@pytest.fixture(scope="module")
def entities():
    return sample_world(REGISTRY, {"person": 60, "organisation": 10, "place": 8}, 3)


def _with_link(entities, rel):
    return next(e for e in entities if e.links.get(rel))


def test_asymmetric_spouse_is_named(entities):
    a = _with_link(entities, "spouse")
    other = next(e for e in entities if e.entity_type == "person" and e.entity_id not in (a.entity_id, a.links["spouse"][0]["target"]))
    broken = _replace(entities, a.entity_id, links={**a.links, "spouse": [{"target": other.entity_id, "year": None}]})
    with pytest.raises(WorldInvariantError) as err:
        check_world(broken, REGISTRY)
    text = str(err.value)
    assert f"{a.entity_id} ({a.name}): rule 'symmetric spouse'" in text


def test_missing_reference_is_named(entities):
    a = _with_link(entities, "birthplace")
    broken = _replace(entities, a.entity_id, links={**a.links, "birthplace": [{"target": "L99999", "year": None}]})
    assert any(f"{a.entity_id} ({a.name}): rule 'referenced entity exists': birthplace -> L99999" in v for v in world_violations(broken, REGISTRY))


def test_dates_out_of_order_are_named(entities):
    a = next(e for e in entities if e.entity_type == "person")
    works = [dict(w) for w in a.attributes["works"]]
    works[0]["year"] = int(a.attributes["birth_date"][:4]) - 3  # published before birth
    broken = _replace(entities, a.entity_id, attributes={**a.attributes, "works": works})
    violations = world_violations(broken, REGISTRY)
    assert any(v.startswith(f"{a.entity_id} ({a.name}): rule 'dates in order': works") for v in violations)


def test_employer_joined_before_founding_is_named(entities):
    a = _with_link(entities, "employer")
    org = next(e for e in entities if e.entity_id == a.links["employer"][0]["target"])
    early = org.attributes["founding_year"] - 1
    broken = _replace(entities, a.entity_id, links={**a.links, "employer": [{"target": org.entity_id, "year": early}]})
    assert any(f"rule 'dates in order': employer -> {org.entity_id}" in v for v in world_violations(broken, REGISTRY))


def test_duplicate_and_real_names_are_named(entities):
    a, b = [e for e in entities if e.entity_type == "person"][:2]
    broken = _replace(entities, b.entity_id, name=a.name)
    assert any("rule 'unique names'" in v and a.entity_id in v and b.entity_id in v for v in world_violations(broken, REGISTRY))
    broken = _replace(entities, a.entity_id, name="Emma Stone")  # a famous full name
    assert any(f"{a.entity_id} (Emma Stone): rule 'novel names'" in v for v in world_violations(broken, REGISTRY))
    place = next(e for e in entities if e.entity_type == "place")
    for real in ("Salford", "Tito"):  # a real city, a famous mononym
        broken = _replace(entities, place.entity_id, name=real)
        assert any(f"{place.entity_id} ({real}): rule 'novel names'" in v for v in world_violations(broken, REGISTRY))


def test_siblings_share_parents(entities):
    a = _with_link(entities, "sibling")
    b = next(e for e in entities if e.entity_id == a.links["sibling"][0]["target"])
    assert a.attributes["father_occupation"] == b.attributes["father_occupation"]
    broken = _replace(entities, b.entity_id, attributes={**b.attributes, "mother_occupation": "__other__"})
    assert any("rule 'shared mother_occupation'" in v for v in world_violations(broken, REGISTRY))


def test_names_are_novel_and_unique(small_world):
    names = [e.name for e in small_world.entities] + [a for e in small_world.entities for a in e.aliases]
    assert len(set(n.lower() for n in names)) == len(names)
    for e in small_world.entities:
        assert not is_notable(e.name), e.name
        if e.entity_type == "place":
            assert not is_real_word(e.name), e.name


@pytest.mark.parametrize("name", ["Niki Lauda", "Nina Simone", "Emma Stone", "Émile Zola", "Josip Broz Tito"])
def test_famous_full_names_are_blocked(name):
    assert is_notable(name)


@pytest.mark.parametrize("word", ["Tito", "Zola", "Nero", "Taro", "Salford", "Homer", "Stanford"])
def test_real_single_words_are_blocked(word):
    assert is_real_word(word)


def test_common_names_are_not_famous():
    assert not is_notable("Maria Garcia") and not is_notable("Lars Lindqvist")


def test_fact_ids_are_stable_and_unique(small_world):
    ids = [f.fact_id for f in small_world.facts]
    assert len(ids) == len(set(ids))
    for f in small_world.facts:
        entity_id, relation, _ = f.fact_id.split("/")
        assert (entity_id, relation) == (f.entity_id, f.relation)
    again = generate_world({"person": 40, "organisation": 8, "place": 6}, seed=0)
    assert [f.fact_id for f in again.facts] == ids


def _tree_hashes(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_same_seed_same_bytes_other_seed_other_world(tmp_path, small_world):
    write_world(small_world, tmp_path / "a")
    write_world(generate_world({"person": 40, "organisation": 8, "place": 6}, seed=0), tmp_path / "b")
    write_world(generate_world({"person": 40, "organisation": 8, "place": 6}, seed=1), tmp_path / "c")
    assert _tree_hashes(tmp_path / "a") == _tree_hashes(tmp_path / "b")
    assert _tree_hashes(tmp_path / "a")["entities.jsonl"] != _tree_hashes(tmp_path / "c")["entities.jsonl"]


def test_world_round_trips_and_detects_tampering(tmp_path, small_world):
    manifest = write_world(small_world, tmp_path)
    assert manifest["seed"] == 0 and manifest["n_probes"] == len(small_world.probes)
    assert manifest["files"]["probes.jsonl"]["rows"] == len(small_world.probes)
    back = read_world(tmp_path)
    assert back.entities == small_world.entities
    assert back.facts == small_world.facts
    assert back.biographies == small_world.biographies
    assert back.probes == small_world.probes
    with (tmp_path / "facts.jsonl").open("a") as f:
        f.write("{}\n")
    with pytest.raises(WorldFileError, match="facts.jsonl: content does not match manifest.json"):
        read_world(tmp_path)
    with pytest.raises(WorldFileError, match="no manifest"):
        read_world(tmp_path / "nowhere")


def test_split_counts_default_mix():
    assert split_counts(200) == {"person": 150, "organisation": 30, "place": 20}
    assert sum(split_counts(1001).values()) == 1001


def test_cli_generate_writes_world_and_rejects_bad_types(tmp_path, capsys):
    assert main(["generate", "--types", "person=12,organisation=3,place=3", "--seed", "4", "--out", str(tmp_path / "w"), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "entities/s" in out and "probes/s" in out
    assert read_world(tmp_path / "w").counts == {"person": 12, "organisation": 3, "place": 3}
    assert main(["generate", "--types", "person:12", "--out", str(tmp_path / "x")]) == 2
    assert "--types: cannot read 'person:12'" in capsys.readouterr().err
    assert main(["generate", "--types", "persn=3", "--out", str(tmp_path / "x")]) == 2
    assert "did you mean 'person'" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_fourth_type_from_a_registry_entry_only(band_registry, tmp_path):
    world = generate_world({"person": 20, "organisation": 0, "place": 5, "band": 6}, seed=2, registry=band_registry)
    bands = [e for e in world.entities if e.entity_type == "band"]
    assert len(bands) == 6 and world_violations(world.entities, band_registry) == []
    depths = Counter(p.depth for p in world.probes if p.entity_type == "band")
    assert set(depths) == {"d0", "d1", "d2", "d3", "d4"}
    for b in bands:
        founder = next(e for e in world.entities if e.entity_id == b.links["founder"][0]["target"])
        assert int(founder.attributes["birth_date"][:4]) + 16 <= b.attributes["formed_year"]
    code = main(
        [
            "generate",
            "--types",
            "person=10,place=4,band=3",
            "--type-spec",
            str(Path(__file__).resolve().parents[2] / "fixtures/band/band.toml"),
            "--out",
            str(tmp_path / "bands"),
            "--quiet",
        ]
    )
    assert code == 0 and read_world(tmp_path / "bands").counts["band"] == 3


# -- coherence rules (issue 13): each is an invariant checked after sampling; breaking it is named ---------------


def _person_with(entities, rel):
    return next(e for e in entities if e.entity_type == "person" and e.links.get(rel))


def test_genre_follows_the_occupation(entities):
    painter_style = "landscape painting"
    a = next(e for e in entities if e.entity_type == "person" and e.attributes["occupation"] == "novelist")
    broken = _replace(entities, a.entity_id, attributes={**a.attributes, "genre": painter_style})
    assert any(
        f"{a.entity_id} ({a.name}): rule 'conditional vocabulary': genre='landscape painting'" in v for v in world_violations(broken, REGISTRY)
    )


def test_founder_is_an_adult_and_alive_at_the_founding(entities):
    org = next(e for e in entities if e.entity_type == "organisation")
    founder = next(e for e in entities if e.entity_id == org.links["founder"][0]["target"])
    dead = f"{org.attributes['founding_year'] - 1}-06-01"
    broken = _replace(entities, founder.entity_id, attributes={**founder.attributes, "death_date": dead})
    assert any(f"{org.entity_id} ({org.name}): rule 'dates in order': founder" in v and "death_date" in v for v in world_violations(broken, REGISTRY))
    child = f"{org.attributes['founding_year'] - 10}-06-01"
    broken = _replace(entities, founder.entity_id, attributes={**founder.attributes, "birth_date": child, "death_date": None})
    assert any(f"{org.entity_id} ({org.name}): rule 'dates in order': founder" in v for v in world_violations(broken, REGISTRY))


def test_mentor_lives_into_the_mentees_adult_life(entities):
    a = _person_with(entities, "mentor")
    mentor = next(e for e in entities if e.entity_id == a.links["mentor"][0]["target"])
    early = f"{int(a.attributes['birth_date'][:4]) + 9}-01-01"
    broken = _replace(entities, mentor.entity_id, attributes={**mentor.attributes, "death_date": early})
    assert any(f"{a.entity_id} ({a.name}): rule 'dates in order': mentor" in v for v in world_violations(broken, REGISTRY))


def test_siblings_share_a_surname_and_names_follow_the_culture(entities):
    a = _person_with(entities, "sibling")
    given = a.name.split()[0]
    broken = _replace(entities, a.entity_id, name=f"{given} Zzyzxqa")
    violations = world_violations(broken, REGISTRY)
    assert any(f"{a.entity_id} ({given} Zzyzxqa): rule 'family surname'" in v for v in violations)
    b = next(e for e in entities if e.entity_type == "person" and not e.links.get("sibling"))
    broken = _replace(entities, b.entity_id, name="Qwertyuio " + b.name.split()[-1])
    assert any(f"{b.entity_id} (Qwertyuio {b.name.split()[-1]}): rule 'names follow the culture'" in v for v in world_violations(broken, REGISTRY))


def test_sister_cities_lie_in_different_countries(entities):
    a = next(e for e in entities if e.entity_type == "place" and e.links.get("sister_city"))
    b = next(e for e in entities if e.entity_id == a.links["sister_city"][0]["target"])
    broken = _replace(entities, b.entity_id, attributes={**b.attributes, "country": a.attributes["country"]})
    assert any("rule 'dates in order': sister_city" in v and "!=" in v for v in world_violations(broken, REGISTRY))


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1))
def test_coherence_over_many_seeds(seed):
    """Whole small worlds: works, products and genres follow occupation and industry; answers hold."""
    from entity_unlearn.builders.world.vocab import read_vocab, vocab_props

    world = generate_world({"person": 14, "organisation": 3, "place": 3}, seed=seed)
    assert world_violations(world.entities, REGISTRY) == []
    occupations = vocab_props("occupations")
    industries = vocab_props("industries")
    for e in world.entities:
        if e.entity_type == "person":
            assert e.attributes["genre"] in read_vocab(occupations[e.attributes["occupation"]]["genres"])
        if e.entity_type == "organisation":
            kinds = industries[e.attributes["industry"]]["products"]
            assert all(any(p.endswith(" " + k) for k in kinds) for p in e.attributes["products"]), e.attributes


@pytest.mark.parametrize("n", range(1, 11))
def test_small_worlds_get_the_entities_their_relations_need(tmp_path, capsys, n):
    assert main(["generate", "--entities", str(n), "--seed", "0", "--out", str(tmp_path / "w"), "--quiet"]) == 0
    world = read_world(tmp_path / "w")
    assert world.counts["place"] >= 1 and world_violations(world.entities, REGISTRY) == []
    if split_counts(n)["place"] == 0:  # the default mix gives no place: the command adds one and says so
        assert "added 1 place entity" in capsys.readouterr().out
