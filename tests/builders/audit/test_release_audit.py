"""The audit of a small default release finds what a person found; consistency catches broken worlds; any type works."""

from __future__ import annotations

import json

import pytest
from release_fixtures import hf_offline, release, release_world  # noqa: F401  (the 30-person release the release tests build)

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
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    path.write_text("".join(json.dumps(change(r)) + "\n" for r in rows))


def test_consistency_catches_a_broken_world(tmp_path, small_world):
    write_world(small_world, tmp_path / "clean")
    checks = consistency(load_material(tmp_path / "clean"), min_support=10)["checks"]
    assert {k: v["violations"] for k, v in checks.items() if v["violations"]} == {}
    broken = tmp_path / "broken"
    write_world(small_world, broken)
    person = next(e for e in small_world.entities if e.entity_type == "person" and e.links.get("spouse"))
    other = next(e for e in small_world.entities if e.entity_type == "person" and e.entity_id != person.entity_id)
    spouse = person.links["spouse"][0]["target"]
    works = next(f for f in small_world.facts if f.entity_id == person.entity_id and f.relation == "works")
    direct = next(p for p in small_world.probes if p.entity_id == person.entity_id and p.depth == "d1" and p.fact_ids == (works.fact_id,))

    def facts(r):  # a work published in 1800, before its author's birth
        return {**r, "year": 1800} if r["fact_id"] == works.fact_id else r

    def entities(r):  # the spouse no longer married back; another entity takes the person's name
        if r["entity_id"] == spouse:
            return {**r, "links": {k: v for k, v in r["links"].items() if k != "spouse"}}
        if r["entity_id"] == other.entity_id:
            return {**r, "name": person.name}
        return r

    def probes(r):  # an answer that is not the fact it cites
        if r["probe_id"] == direct.probe_id:
            opts = ["Not The Book" if o == r["short_answer"] else o for o in r["options"]]
            return {**r, "short_answer": "Not The Book", "options": opts}
        return r

    _rewrite(broken / "facts.jsonl", facts)
    _rewrite(broken / "entities.jsonl", entities)
    _rewrite(broken / "probes.jsonl", probes)
    found = consistency(load_material(broken), min_support=10)["checks"]
    assert {k for k, v in found.items() if v["violations"]} >= {"dates_in_order", "symmetric_links", "answers_match_facts", "unique_names"}
    assert any(person.entity_id in e for e in found["dates_in_order"]["examples"])
