"""OpenUnlearning's TOFU dataset configs run on a release with only ``hf_args.path`` changed (the README's override).

Their configs are vendored verbatim in ``tests/fixtures/openunlearning/``. For each, this test does what
OpenUnlearning's ``load_hf_dataset`` + ``add_dataset_index`` + ``QADataset.__getitem__`` do with the fields:
``datasets.load_dataset(path, name=..., split=...)``, an ``index`` column, then ``row[question_key]`` and
``row[answer_key]`` for every row, which must have TOFU's types (a string; ``perturbed_answer`` a list of strings).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from release_fixtures import hf_offline, release, release_world  # noqa: F401

FIXTURES = Path(__file__).parents[2] / "fixtures" / "openunlearning"
YAMLS = sorted(FIXTURES.glob("TOFU_*.yaml"))
TOFU_TYPES = {"question": str, "paraphrased_question": str, "answer": str, "paraphrased_answer": str, "perturbed_answer": list}


def test_the_vendored_configs_are_there():
    names = {p.stem for p in YAMLS}
    assert {"TOFU_QA_ra", "TOFU_QA_ra_pert", "TOFU_QA_wf", "TOFU_QA_wf_pert", "TOFU_QA_retain_eval", "TOFU_MIA"} <= names


@pytest.mark.parametrize("config_file", YAMLS, ids=lambda p: p.stem)
def test_openunlearning_dataset_config_reads_every_field_it_names(release, config_file):  # noqa: F811
    from datasets import load_dataset

    _, manifest, folder = release
    for key, dataset in yaml.safe_load(config_file.read_text(encoding="utf-8")).items():
        args = dataset["args"]
        hf_args = {**args["hf_args"], "path": str(folder)}  # the one override: their path -> our release
        assert hf_args["name"] in manifest["configs"], f"{config_file.name} {key}: the release has no config {hf_args['name']!r}"
        data = load_dataset(**hf_args)
        data = data.map(lambda row, i: {"index": i}, with_indices=True)  # their add_dataset_index
        assert len(data) == manifest["configs"][hf_args["name"]]["rows"] > 0
        question_key, answer_key = args["question_key"], args["answer_key"]
        for row in data:
            question, answer = row[question_key], row[answer_key]
            assert isinstance(question, TOFU_TYPES[question_key]) and question
            assert isinstance(answer, TOFU_TYPES[answer_key]), f"{hf_args['name']}.{answer_key} is {type(answer).__name__}"
            if isinstance(answer, list):  # QADataset makes one sample per wrong answer
                assert answer and all(isinstance(a, str) and a for a in answer)
            else:
                assert answer


def test_real_authors_are_names_of_entities_nobody_forgets(release):  # noqa: F811
    from datasets import load_dataset

    world, manifest, folder = release
    entities = {r["entity_id"]: r for r in load_dataset(str(folder), "entities", split="train")}
    names = {r["name"] for r in entities.values() if r["entity_type"] == "person"}
    avoid = {e for e, r in entities.items() if {"forget10", "neighbor", "holdout10"} & set(r["splits"])}
    rows = list(load_dataset(str(folder), "real_authors_perturbed", split="train"))
    relation = {f["fact_id"]: f["relation"] for f in load_dataset(str(folder), "facts", split="train")}
    ids = {x["probe_id"] for x in rows}
    asked = {(p["kind"], relation[p["fact_ids"][0]]) for p in load_dataset(str(folder), "probes", split="train") if p["probe_id"] in ids}
    assert asked <= {("reverse", "works"), ("direct", "founder")}  # "who wrote ...?", "who founded ...?", in any wording
    assert 0 < len(rows) <= 100 and len(rows) == manifest["configs"]["real_authors"]["rows"]
    for r in rows:
        assert r["answer"] in names and r["answer"] not in r["perturbed_answer"] and len(r["perturbed_answer"]) == world.k_perturbed
        assert r["options"][r["answer_index"]] == r["answer"] and sorted(r["options"]) == sorted([r["answer"], *r["perturbed_answer"]])
        assert r["entity_id"] not in avoid
    answer_ids = {e for e, rec in entities.items() if rec["name"] in {r["answer"] for r in rows}}
    assert not answer_ids & avoid  # the answer is never a forget, neighbour or holdout person
    world_facts = list(load_dataset(str(folder), "world_facts_perturbed", split="train"))
    assert [r["question"] for r in world_facts] == [r["question"] for r in load_dataset(str(folder), "world", split="train")]
