"""The audit of a small default release finds what a person found; consistency catches broken worlds; any type works."""

from __future__ import annotations

import json

import pytest
from release_fixtures import hf_offline, release, release_world  # noqa: F401  (the 30-person release the release tests build)

import entity_unlearn.builders.audit.consistency as consistency_module
from entity_unlearn.builders import generate_world, write_world
from entity_unlearn.builders.audit import THRESHOLDS_FILE, AuditError, audit_folder, load_material, summary
from entity_unlearn.builders.audit.consistency import consistency
from entity_unlearn.cli import main


def test_strict_audit_of_a_release_agrees_with_its_card_and_manifest(release, tmp_path, capsys):
    _, manifest, folder = release
    out = tmp_path / "audit.json"
    code = main(["audit", str(folder), "--json", str(out), "--strict", "--quiet"])
    printed = capsys.readouterr()
    report = json.loads(out.read_text())
    assert code == (0 if report["verdict"] == "pass" else 1)
    assert f"**Verdict: {report['verdict'].upper()}**" in printed.out
    assert ("threshold(s) broken (--strict)" in printed.err) == bool(report["failures"])
    for f in report["failures"]:  # every failure names its rule, subject and the number that broke it
        assert f["rule"] in report["thresholds"] and f["subject"] and f["value"] is not None
    # the build ran the same audit: its numbers are in the manifest, its table in the card
    assert manifest["audit"] == summary(report)
    card = (folder / "README.md").read_text()
    assert "## Validity audit" in card and f"**Verdict: {report['verdict'].upper()}**" in card and "| `familiarity` |" in card
    assert json.loads((folder / "manifest.json").read_text())["audit"]["verdict"] == report["verdict"]


def test_audit_without_strict_exits_zero_and_reads_thresholds(release, tmp_path, capsys):
    folder = release[2]
    text = THRESHOLDS_FILE.read_text()
    loose = tmp_path / "loose.toml"
    loose.write_text(text.replace("max_gain_overall = 0.05", "max_gain_overall = 0.9"))
    assert main(["audit", str(folder), "--quiet", "--thresholds", str(loose), "--json", str(tmp_path / "r.json")]) == 0
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["thresholds"]["max_gain_overall"] == 0.9
    assert not [f for f in report["failures"] if f["rule"] == "max_gain_overall"]
    bad = tmp_path / "bad.toml"
    bad.write_text(text.replace("max_gain_overall", "max_gain_overal"))
    capsys.readouterr()
    assert main(["audit", str(folder), "--quiet", "--thresholds", str(bad)]) == 2
    assert "did you mean 'max_gain_overall'" in capsys.readouterr().err


def test_audit_errors_name_the_folder(tmp_path, capsys):
    assert main(["audit", str(tmp_path / "nothing")]) == 2
    assert "no such folder" in capsys.readouterr().err
    (tmp_path / "manifest.json").write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(AuditError, match="neither"):
        load_material(tmp_path)


def test_any_entity_type_is_audited(tmp_path, band_registry):
    world = generate_world({"person": 12, "organisation": 3, "place": 4, "band": 8}, seed=1, registry=band_registry)
    write_world(world, tmp_path / "bands")
    report = audit_folder(tmp_path / "bands")
    assert "band/formed_year" in report["variety"]["d1_questions"]
    assert any(k.startswith("band/") for k in report["shortcuts"]["longest"]["by_relation"])
    assert report["hygiene"] == {"applies": False}
    assert report["source"]["kind"] == "world"


def _rewrite(path, change):
    """Rewrite a JSONL file row by row; ``change`` returns the new row, or None to drop it."""
    rows = [change(json.loads(line)) for line in path.read_text().splitlines()]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows if r is not None))


def test_consistency_catches_a_broken_world(tmp_path, small_world, monkeypatch):
    """A clean world has no violation; one planted error per check makes that check fire, naming the entity."""
    monkeypatch.setattr(consistency_module, "EXAMPLES", 10**6)  # renamed entities make more violations: keep them all
    rules = {"min_support": 10, "max_share": 0.025}  # a 40-person world: one exception in 40 entities is a rule's
    write_world(small_world, tmp_path / "clean")
    clean = consistency(load_material(tmp_path / "clean"), **rules)
    assert {k: v["violations"] for k, v in clean["checks"].items() if v["violations"]} == {}
    assert {"person/gender", "place/culture"} <= set(clean["hidden_attributes"])  # never stated, never a violation
    broken = tmp_path / "broken"
    write_world(small_world, broken)
    persons = [e for e in small_world.entities if e.entity_type == "person"]
    person = next(e for e in persons if e.links.get("spouse"))
    other = next(e for e in persons if e.entity_id != person.entity_id)
    place = next(e for e in small_world.entities if e.entity_type == "place")
    spouse = person.links["spouse"][0]["target"]
    writer = next(e for e in persons if len(e.attributes.get("works") or []) >= 2 and e.entity_id not in (person.entity_id, other.entity_id, spouse))
    works = next(f for f in small_world.facts if f.entity_id == person.entity_id and f.relation == "works")
    occupation = next(f for f in small_world.facts if f.entity_id == other.entity_id and f.relation == "occupation")
    probes = {p.probe_id: p for p in small_world.probes}
    direct = next(p for p in small_world.probes if p.entity_id == person.entity_id and p.depth == "d1" and p.fact_ids == (works.fact_id,))
    inverse = next(p for p in small_world.probes if p.kind == "direct" and p.relation.endswith("_of") and p.entity_id != person.entity_id)
    own_works = {f.text for f in small_world.facts if f.entity_id == writer.entity_id and f.relation == "works"}
    listed = next(p for p in small_world.probes if p.entity_id == writer.entity_id and p.depth == "d1" and p.short_answer in own_works)
    twins = [p for p in small_world.probes if p.entity_id == writer.entity_id and p.depth == "d1" and p.attack == "none"][-2:]
    repeat = next(p for p in small_world.probes if p.entity_id == place.entity_id and p.depth == "d1")

    def facts(r):
        if r["fact_id"] == works.fact_id:  # a work published in 1800, before its author's birth
            return {**r, "year": 1800}
        if r["fact_id"] == occupation.fact_id:  # the occupation's fact lost (its attribute stays)
            return None
        if r["entity_id"] == place.entity_id and r["target_id"]:  # a link to nobody
            return {**r, "target_id": "L99999"}
        return r

    def entities(r):
        if r["entity_id"] == spouse:  # the spouse no longer married back
            r = {**r, "links": {k: v for k, v in r["links"].items() if k != "spouse"}}
        if r["entity_id"] == other.entity_id:  # another entity takes the person's name
            r = {**r, "name": person.name}
        if r["entity_id"] == place.entity_id:  # a real city's name
            r = {**r, "name": "Paris"}
        if r["entity_id"] == writer.entity_id:  # a famous person's name
            r = {**r, "name": "Marie Curie"}
        return r

    def probe_rows(r):
        pid = r["probe_id"]
        if pid in (direct.probe_id, inverse.probe_id):  # answers that are not the facts they cite
            opts = ["Not The Answer" if o == r["short_answer"] else o for o in r["options"]]
            return {**r, "short_answer": "Not The Answer", "options": opts}
        if pid == listed.probe_id:  # a wrong option that is another of the writer's works
            true = sorted(own_works - {r["short_answer"]})[0]
            wrong = next(i for i, o in enumerate(r["options"]) if i != r["answer_index"])
            return {**r, "options": [true if i == wrong else o for i, o in enumerate(r["options"])]}
        if pid == twins[1].probe_id:  # one question, two answers
            return {**r, "question": probes[twins[0].probe_id].question}
        if pid == repeat.probe_id:  # options repeat
            return {**r, "options": [r["options"][0]] * len(r["options"])}
        return r

    _rewrite(broken / "facts.jsonl", facts)
    _rewrite(broken / "entities.jsonl", entities)
    _rewrite(broken / "probes.jsonl", probe_rows)
    found = consistency(load_material(broken), **rules)["checks"]
    who = {
        "references": place.entity_id,
        "facts_match_profiles": other.entity_id,
        "unique_names": other.entity_id,
        "novel_names": writer.entity_id,
        "symmetric_links": spouse,
        "dates_in_order": person.entity_id,
        "probe_records": repeat.probe_id,
        "answers_match_facts": inverse.probe_id,
        "wrong_options_true": listed.probe_id,
        "ambiguous_questions": writer.entity_id,
    }
    assert set(who) == set(found)  # every check has its planted error
    for check, name in who.items():
        assert any(name in e for e in found[check]["examples"]), (check, found[check])
    assert any(place.entity_id in e and "Paris" in e for e in found["novel_names"]["examples"])
    assert any(direct.probe_id in e for e in found["answers_match_facts"]["examples"])
