"""The release builder: splits, configs, types, card, byte-identical rebuilds, CLI errors."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from release_fixtures import PERSONS, SEED, WORLD_KNOWLEDGE, hf_offline, release, release_world, write_world_knowledge  # noqa: F401

from entity_unlearn.builders import (
    ReleaseConfig,
    ReleaseError,
    WorldKnowledgeError,
    build_release,
    config_names,
    generate_world,
    read_world_knowledge,
    write_world,
)
from entity_unlearn.builders.release.build import release_world_args
from entity_unlearn.builders.release.export import features_of
from entity_unlearn.builders.release.splits import SplitConfig, linked_pairs, share
from entity_unlearn.cli import main


def _parquet(folder: Path, name: str) -> Path:
    (path,) = (folder / "data" / name).glob("*.parquet")
    return path


def rows(folder: Path, name: str) -> list[dict]:
    return pq.read_table(_parquet(folder, name)).to_pylist()


def entities(folder: Path, name: str) -> set[str]:
    return {r["entity_id"] for r in rows(folder, name)}


def test_forget_sets_nest_and_have_their_sizes(release):
    world, manifest, folder = release
    f01, f05, f10 = (entities(folder, f"forget{p:02d}") for p in (1, 5, 10))
    assert f01 < f05 < f10
    train = manifest["persons"]["train"]
    assert train == PERSONS
    assert [len(f01), len(f05), len(f10)] == [share(train, 1), share(train, 5), share(train, 10)] == [1, 2, 3]
    assert all(world.entity(e).entity_type == "person" for e in f10)


@pytest.mark.parametrize("pct", [1, 5, 10])
def test_forget_and_retain_are_disjoint_and_make_full(release, pct):
    _, _, folder = release
    forget, retain, full = rows(folder, f"forget{pct:02d}"), rows(folder, f"retain{100 - pct:02d}"), rows(folder, "full")
    entangled = rows(folder, f"entangled{pct:02d}")
    assert not {r["entity_id"] for r in forget} & {r["entity_id"] for r in retain + entangled}
    assert sorted(r["probe_id"] for r in forget + retain + entangled) == sorted(r["probe_id"] for r in full)
    # entangled rows are exactly the other entities' rows that cite a fact about a forget person
    world = release[0]
    about = {f.fact_id: {f.entity_id, f.target_id} for f in world.facts}
    gone = {r["entity_id"] for r in forget}
    assert all(any(about[f] & gone for f in r["fact_ids"]) for r in entangled)
    assert not any(any(about[f] & gone for f in r["fact_ids"]) for r in retain)
    assert manifest_rows(folder, f"entangled{pct:02d}") == len(entangled)
    perturbed = rows(folder, f"forget{pct:02d}_perturbed")
    assert [r["probe_id"] for r in perturbed] == [r["probe_id"] for r in forget]


def manifest_rows(folder: Path, name: str) -> int:
    import json

    return json.loads((folder / "manifest.json").read_text())["configs"][name]["rows"]


def test_full_is_the_injection_qa_of_in_world_entities(release):
    world, manifest, folder = release
    held = entities(folder, "holdout10")
    want = [p.probe_id for p in world.probes if p.depth == "d1" and p.attack == "none" and p.entity_id not in held]
    assert [r["probe_id"] for r in rows(folder, "full")] == want
    assert {r["entity_id"] for r in rows(folder, "corpus")} == {e.entity_id for e in world.entities} - held


def test_neighbors_are_exactly_the_entities_linked_to_forget_entities(release):
    world, _, folder = release
    forget, held = entities(folder, "forget10"), entities(folder, "holdout10")
    pairs = linked_pairs(world)
    expected = {a if b in forget else b for a, b in pairs if (a in forget) != (b in forget)} - held
    neighbor_rows = rows(folder, "neighbor")
    assert {r["entity_id"] for r in neighbor_rows} == expected and expected
    for r in neighbor_rows:
        assert r["linked_forget_ids"] and set(r["linked_forget_ids"]) <= forget
        assert all(tuple(sorted((r["entity_id"], f))) in pairs for f in r["linked_forget_ids"])
        assert "neighbor" in r["splits"]


def test_holdout_persons_are_never_trained_on_nor_named_in_training_text(release):
    world, manifest, folder = release
    h01, h05, h10 = (entities(folder, f"holdout{p:02d}") for p in (1, 5, 10))
    assert h01 <= h05 < h10 and len(h10) == manifest["persons"]["holdout"] == 3
    assert all(world.entity(e).entity_type == "person" for e in h10)
    trained = entities(folder, "full") | entities(folder, "corpus") | entities(folder, "neighbor") | entities(folder, "retain90")
    assert not h10 & trained and not h10 & entities(folder, "forget10")
    names = {world.entity(e).name for e in h10}
    text = " ".join(r["question"] + " " + r["answer"] for r in rows(folder, "full")) + " ".join(r["text"] for r in rows(folder, "corpus"))
    assert manifest["persons"]["holdout_linked"] == 0
    assert not [n for n in names if n in text]
    holdout_probes = {r["probe_id"] for r in rows(folder, "holdout10")}
    assert holdout_probes == {p.probe_id for p in world.probes if p.entity_id in h10 and p.depth == "d1" and p.attack == "none"}


@pytest.mark.parametrize("fp", [5, 10])
def test_coverage_sets_cover_exact_fractions_and_nest(release, fp):
    world, manifest, folder = release
    probed: dict[str, set[str]] = {}
    for r in rows(folder, "full"):
        probed.setdefault(r["entity_id"], set()).update(r["fact_ids"])
    previous: dict[str, set[str]] = {}
    for cp in (25, 50, 75):
        name = f"forget{fp:02d}_cov{cp}"
        covered: dict[str, set[str]] = {}
        for r in rows(folder, name):
            covered.setdefault(r["entity_id"], set()).update(r["fact_ids"])
        assert set(covered) <= entities(folder, f"forget{fp:02d}")
        for eid in entities(folder, f"forget{fp:02d}"):
            got = covered.get(eid, set())
            n = len(probed[eid])
            assert len(got) == math.floor(n * cp / 100 + 0.5), (name, eid)
            assert got <= probed[eid] and previous.get(eid, set()) <= got
            assert manifest["coverage"][name]["per_entity"][eid] == [len(got), n]
            previous[eid] = got
    small, large = rows(folder, "forget05_cov50"), rows(folder, "forget10_cov50")
    assert {r["probe_id"] for r in small} <= {r["probe_id"] for r in large}


def test_every_config_loads_offline_and_matches_the_manifest(release, tmp_path):
    from datasets import load_dataset

    _, manifest, folder = release
    assert list(manifest["configs"]) == config_names(SplitConfig())
    for name, info in manifest["configs"].items():
        ds = load_dataset(str(folder), name, cache_dir=str(tmp_path / "cache"))
        assert list(ds) == ["train"]
        assert ds["train"].num_rows == info["rows"] > 0, name
        assert ds["train"].features == features_of(info["layout"]), name
    full = load_dataset(str(folder), cache_dir=str(tmp_path / "cache"))["train"]
    assert full.num_rows == manifest["configs"]["full"]["rows"]


def test_an_unknown_config_name_lists_the_real_ones(release, tmp_path):
    from datasets import load_dataset

    with pytest.raises(ValueError, match="forget05"):
        load_dataset(str(release[2]), "forget5", cache_dir=str(tmp_path / "cache"))


def test_tofu_fields_and_types_agree_across_configs(release):
    _, manifest, folder = release
    seen: dict[str, object] = {}
    for name in manifest["configs"]:
        schema = pq.read_schema(folder / manifest["configs"][name]["path"])
        for f in schema:
            assert seen.setdefault(f.name, f.type) == f.type, (name, f.name)
        assert "entity_id" in schema.names
    for name in ("forget01_perturbed", "forget05_perturbed", "forget10_perturbed", "retain_perturbed"):
        schema = pq.read_schema(_parquet(folder, name))
        for field in ("question", "answer", "paraphrased_question", "paraphrased_answer"):
            assert str(schema.field(field).type) == "string"
        wrong = schema.field("perturbed_answer").type
        assert pa.types.is_list(wrong) and wrong.value_type == pa.string()
    for name in ("forget05", "retain95", "full"):
        assert {"question", "answer"} <= set(pq.read_schema(_parquet(folder, name)).names)
    perturbed = rows(folder, "retain_perturbed")
    assert len(perturbed) == min(400, len([r for r in rows(folder, "retain90") if r["entity_type"] == "person"]))
    assert all(len(r["perturbed_answer"]) == 5 and r["answer"] and r["paraphrased_answer"] for r in perturbed)


def test_probes_config_holds_every_probe_with_its_grading(release):
    world, _, folder = release
    got = rows(folder, "probes")
    assert [r["probe_id"] for r in got] == [p.probe_id for p in world.probes]
    assert {r["depth"] for r in got} == {"d0", "d1", "d2", "d3", "d4"}
    assert {r["attack"] for r in got} > {"none"}
    for r, p in zip(got, world.probes):
        assert r["options"][r["answer_index"]] == p.short_answer and r["fact_ids"] == list(p.fact_ids) and r["template_id"] == p.template_id


def test_world_knowledge_rows_have_unique_non_empty_answers(release):
    _, _, folder = release
    world_rows = rows(folder, "world")
    assert [r["question"] for r in world_rows] == [q["question"] for q in WORLD_KNOWLEDGE]
    for r in world_rows:
        assert r["answer"].strip() and r["entity_id"] is None
        assert r["options"][r["answer_index"]] == r["answer"]
        assert len(set(r["options"])) == 6 and r["answer"] not in r["perturbed_answer"]


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"answer": ""}, "non-empty"),
        ({"perturbed_answer": ["Lyon", "Lyon", "Nice", "Toulouse", "Bordeaux"]}, "differ"),
        ({"perturbed_answer": ["Paris", "Lyon", "Nice", "Toulouse", "Bordeaux"]}, "differ"),
        ({"perturbed_answer": ["Lyon"]}, "list of 5"),
        ({"extra": 1}, "keys must be exactly"),
        ({"id": ""}, "id '' must be"),
    ],
)
def test_world_knowledge_file_errors_name_the_line(tmp_path, bad, message):
    path = write_world_knowledge(tmp_path / "wk.jsonl", [WORLD_KNOWLEDGE[1], {**WORLD_KNOWLEDGE[0], **bad}])
    with pytest.raises(WorldKnowledgeError, match=f"wk.jsonl:2: .*{message}"):
        read_world_knowledge(path)
    with pytest.raises(WorldKnowledgeError, match="duplicate question"):
        read_world_knowledge(write_world_knowledge(tmp_path / "dup.jsonl", [WORLD_KNOWLEDGE[0], WORLD_KNOWLEDGE[0]]))
    with pytest.raises(WorldKnowledgeError, match="not found"):
        read_world_knowledge(tmp_path / "missing.jsonl")


def test_world_knowledge_ids_become_probe_ids(tmp_path):
    with_ids = [{**q, "id": f"wk-{n}"} for n, q in enumerate(WORLD_KNOWLEDGE)]
    questions = read_world_knowledge(write_world_knowledge(tmp_path / "ids.jsonl", with_ids))
    assert [q.item_id for q in questions] == ["wk-0", "wk-1", "wk-2"]
    with pytest.raises(WorldKnowledgeError, match="ids.jsonl:2: id 'wk-0'"):
        read_world_knowledge(write_world_knowledge(tmp_path / "ids.jsonl", [with_ids[0], {**with_ids[1], "id": "wk-0"}]))


def test_same_inputs_give_byte_identical_files(release, tmp_path):
    _, manifest, folder = release
    again = build_release(
        generate_world(**release_world_args(PERSONS), seed=SEED),
        tmp_path / "again",
        ReleaseConfig(version="1.0.0", world_knowledge=folder.parent / "world_knowledge.jsonl", generation=manifest["generation"]),
    )
    assert again == manifest
    for rel in [*manifest["files"], "manifest.json"]:
        assert (tmp_path / "again" / rel).read_bytes() == (folder / rel).read_bytes(), rel


def test_card_lists_counts_depths_and_a_changelog(release, tmp_path):
    world, manifest, folder = release
    card = (folder / "README.md").read_text(encoding="utf-8")
    assert "default: true" in card.split("---")[1]
    for name, info in manifest["configs"].items():
        assert f"| `{name}` | {info['rows']} | {info['entities']} |" in card
    assert "| d3 | multi-hop |" in card and "first release" in card and "Template-generated" in card
    other = generate_world(**release_world_args(PERSONS), seed=SEED + 1)
    gen = {
        "method": "llm-assisted",
        "templates_sha256": manifest["generation"]["templates_sha256"],
        "llm": {"model": "example-org/writer-7b", "prompts_sha256": {"bio": "ab" * 32}},
    }
    new = build_release(
        other,
        tmp_path / "v2",
        ReleaseConfig(
            version="1.1.0", world_knowledge=folder.parent / "world_knowledge.jsonl", previous=folder, generation=gen, repo_id="lab/entity-unlearn"
        ),
    )
    card2 = (tmp_path / "v2" / "README.md").read_text(encoding="utf-8")
    assert "Changes from v1.0.0 to v1.1.0" in card2 and f"`seed`: {SEED} -> {SEED + 1}" in card2
    assert "example-org/writer-7b" in card2 and "abababababababab" in card2
    assert 'load_dataset("lab/entity-unlearn", "forget05", revision="v1.1.0")' in card2
    assert new["version"] == "1.1.0"


def run_cli(*argv: str, capsys) -> tuple[int, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out + out.err


def test_cli_build_writes_a_release_and_bad_input_gets_one_clear_error(release_world, tmp_path, capsys):
    wk = str(write_world_knowledge(tmp_path / "wk.jsonl"))
    write_world(release_world, tmp_path / "world")
    code, out = run_cli(
        "build", "--world", str(tmp_path / "world"), "--version", "2.0.0", "--out", str(tmp_path / "rel"), "--world-knowledge", wk, capsys=capsys
    )
    assert code == 0 and "forget05" in out and json.loads((tmp_path / "rel" / "manifest.json").read_text())["version"] == "2.0.0"
    (tmp_path / "bare").mkdir()
    code, out = run_cli("build", "--world", str(tmp_path / "bare"), "--version", "1.0.0", "--out", str(tmp_path / "x"), capsys=capsys)
    assert code == 2 and "manifest.json" in out and "generate" in out
    code, out = run_cli(
        "build",
        "--world",
        str(tmp_path / "world"),
        "--version",
        "1.0.0",
        "--out",
        str(tmp_path / "x"),
        "--world-knowledge",
        wk,
        "--default-config",
        "forget5",
        capsys=capsys,
    )
    assert code == 2 and "--default-config 'forget5'" in out and "did you mean 'forget05'" in out
    code, out = run_cli("build", "--world", str(tmp_path / "world"), "--version", "1.0", "--out", str(tmp_path / "x"), capsys=capsys)
    assert code == 2 and "--version '1.0'" in out
    code, out = run_cli(
        "build",
        "--world",
        str(tmp_path / "world"),
        "--version",
        "1.0.0",
        "--out",
        str(tmp_path / "x"),
        "--world-knowledge",
        str(tmp_path / "nope.jsonl"),
        capsys=capsys,
    )
    assert code == 2 and "nope.jsonl" in out and "--world-knowledge" in out
    with pytest.raises(ReleaseError, match="no release manifest"):
        build_release(release_world, tmp_path / "y", ReleaseConfig(version="1.0.0", world_knowledge=Path(wk), previous=tmp_path / "bare"))


def test_importing_builders_does_not_import_torch_or_datasets():
    code = "import sys, entity_unlearn.builders; print('torch' in sys.modules, 'datasets' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False"]


def test_rebuilt_release_in_place_never_loads_stale_rows(tmp_path, monkeypatch):
    """datasets caches a local folder by its data_files paths: the content-hashed names must change them."""
    from datasets import load_dataset

    monkeypatch.chdir(tmp_path)
    sizes = []
    for persons in (10, 14):
        assert main(["build", "--entities", str(persons), "--seed", "0", "--version", "1.0.0", "--out", "entity-unlearn", "--quiet"]) == 0
        assert len(list((tmp_path / "entity-unlearn" / "data" / "entities").glob("*.parquet"))) == 1
        sizes.append(len(load_dataset("entity-unlearn", "entities", split="train")))
    assert sizes[0] < sizes[1]
