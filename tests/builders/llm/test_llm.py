"""LLM-assisted generation end to end: the real openai client against a scripted local server.

Every failure mode (missing fact, contradiction, foreign name, invalid JSON, 429,
500, stall, dropped connection) must end in a correct world: nothing lost, the
right retries, the right fallbacks and sources. An interrupted run resumes from
the cache without repeating a request, and a rebuild from the cache is free and
byte-identical.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections import defaultdict
from pathlib import Path

import pytest
from openai_server import ScriptedServer

from entity_unlearn.builders import LLMConfig, LLMUnavailable, WorldNames, generate_world, read_world, verify_biography, write_world
from entity_unlearn.builders.llm.cache import LLMCache, request_key
from entity_unlearn.builders.llm.enrich import enrich_world
from entity_unlearn.cli import main

COUNTS = {"person": 6, "organisation": 2, "place": 3}
BODY_KEYS = ("model", "messages", "response_format", "temperature")


@pytest.fixture(scope="module")
def world():
    return generate_world(COUNTS, seed=0)


@pytest.fixture()
def server():
    s = ScriptedServer(stall_s=2.0, retry_after="0.6").start()
    yield s
    s.stop()


def config(server, tmp_path, **kw):
    base = dict(
        model="test-model",
        base_url=server.url,
        api_key="sk-test",
        cache_dir=tmp_path / "cache",
        timeout_s=1.0,
        backoff_base_s=0.02,
        max_retries_http=3,
        concurrency=8,
    )
    return LLMConfig(**{**base, **kw})


def key_of(record):
    return request_key({k: record["body"][k] for k in BODY_KEYS})


def files(folder):
    return {p.name: p.read_bytes() for p in sorted(Path(folder).glob("*")) if p.is_file()}


def assert_correct(before, after):
    """Same fact graph; every biography states its facts; every probe is consistent; sources follow the rules."""
    assert after.entities == before.entities and after.facts == before.facts
    facts = defaultdict(list)
    for f in after.facts:
        facts[f.entity_id].append(f)
    names = WorldNames.from_world(after)
    for bio in after.biographies:
        e = after.entity(bio.entity_id)
        assert verify_biography(bio.text, e, facts[e.entity_id], names) == []
        assert {fid for s in bio.sentences for fid in s.fact_ids} == {f.fact_id for f in facts[e.entity_id]}
        assert all(s.text in bio.text for s in bio.sentences)
    assert {p.probe_id for p in after.probes if p.depth != "d0"} == {p.probe_id for p in before.probes if p.depth != "d0"}
    bios = {b.entity_id: b for b in after.biographies}
    for p in after.probes:
        assert p.options[p.answer_index] == p.short_answer and len(set(p.options)) == after.k_perturbed + 1
        assert len(p.perturbed_answer) == after.k_perturbed
        if p.depth == "d0":
            assert p.question in bios[p.entity_id].text and p.answer.startswith(p.short_answer)
            assert p.source == bios[p.entity_id].source
        if p.depth == "d1":
            assert p.paraphrased_answer.count(p.short_answer) == 1
            assert p.source in ("llm", "template_fallback")


def test_well_behaved_server(world, server, tmp_path):
    out, report = enrich_world(world, config(server, tmp_path))
    assert_correct(world, out)
    gen = report["generation"]
    assert all(a["rate"] == 1.0 and a["fallbacks"] == 0 for a in gen["acceptance"].values())
    assert gen["requests"] == len(server.requests) == 3 * len(world.entities) == report["run"]["requests"]
    assert gen["retries"] == {} and gen["endpoints"] == [server.url.split("/")[2]]
    assert {b.source for b in out.biographies} == {"llm"}
    assert {p.source for p in out.probes if p.depth in ("d0", "d1") or p.kind == "paraphrase"} == {"llm"}
    assert {p.source for p in out.probes if p.kind in ("reverse", "hop", "inference")} == {"template"}
    # the server's wording and wrong answers are in the records
    d1 = next(p for p in out.probes if p.depth == "d1" and p.attack == "none" and "/occupation/" in p.probe_id)
    assert d1.paraphrased_question.endswith(", if you know?") and d1.paraphrased_answer == f"The answer is {d1.short_answer}."
    assert "glassblower" in d1.options and "The answer is glassblower." in d1.perturbed_answer
    d2 = next(p for p in out.probes if p.parent_id == d1.probe_id and p.kind == "paraphrase")
    assert (d2.paraphrased_question, d2.paraphrased_answer, d2.options) == (d1.paraphrased_question, d1.paraphrased_answer, d1.options)
    assert d2.question not in (d1.question, d1.paraphrased_question)  # the d2 probe keeps its own, third wording
    mc = [p for p in out.probes if p.attack == "multiple_choice"]
    assert mc and all(all(o in p.question for o in p.options) for p in mc)
    assert any(not s.fact_ids for b in out.biographies for s in b.sentences)  # the fact-free sentence is kept, no cloze from it
    # provenance is written and read back; a template-only world has no generation key
    write_world(out, tmp_path / "w")
    manifest = json.loads((tmp_path / "w" / "manifest.json").read_text())
    assert manifest["generation"]["model"] == "test-model" and set(manifest["generation"]["prompts_sha256"]) == {
        "llm/bio.j2",
        "llm/paraphrase.j2",
        "llm/perturb.j2",
        "llm/retry.j2",
    }
    assert read_world(tmp_path / "w") == out
    write_world(world, tmp_path / "t")
    assert "generation" not in json.loads((tmp_path / "t" / "manifest.json").read_text())


def test_rejected_answers_are_retried_with_reasons(world, server, tmp_path):
    persons = [e for e in world.entities if e.entity_type == "person"]
    a, b, c, d = (e.entity_id for e in persons[:4])
    foreign = next(e.name for e in persons if e.entity_id not in {f.target_id for f in world.facts if f.entity_id == c} and e.entity_id != c)
    server.script = {
        ("bio", a): ["missing_fact"],
        ("bio", b): ["invalid_json"],
        ("bio", c): [f"foreign:{foreign}"],
        ("paraphrase", d): ["bad"],
        ("perturb", d): ["bad"],
    }
    out, report = enrich_world(world, config(server, tmp_path))
    assert_correct(world, out)
    acc = report["generation"]["acceptance"]
    assert acc["bio"]["accepted"] == acc["bio"]["items"] and acc["bio"]["accepted_first_try"] == acc["bio"]["items"] - 3
    assert acc["bio"]["answers"] == len(world.entities) + 3
    assert {b.source for b in out.biographies} == {"llm"}
    second = {r["entity"]: r["body"]["messages"] for r in server.by("bio") if len(r["body"]["messages"]) == 4}
    assert set(second) == {a, b, c}
    assert "is missing" in second[a][3]["content"] and "not JSON" in second[b][3]["content"]
    assert f"names {foreign!r}" in second[c][3]["content"]
    assert second[a][2]["role"] == "assistant"
    # d's paraphrases and wrong answers were rejected once, then accepted
    assert len(server.by("paraphrase")) == len(server.by("perturb")) == len(world.entities) + 1
    assert acc["paraphrase"]["rate"] == acc["perturb"]["rate"] == 1.0


def test_persistent_rejection_falls_back_to_templates(world, server, tmp_path):
    persons = [e.entity_id for e in world.entities if e.entity_type == "person"]
    a, d = persons[0], persons[1]
    server.script = {("bio", a): ["contradict"] * 3, ("paraphrase", d): ["bad"] * 3, ("perturb", d): ["bad"] * 3}
    out, report = enrich_world(world, config(server, tmp_path))
    assert_correct(world, out)
    gen = report["generation"]
    assert gen["fallbacks"]["bio"] == 1 and gen["acceptance"]["bio"]["answers"] == len(world.entities) + 2
    assert len([r for r in server.by("bio") if r["entity"] == a]) == 3
    retries = [r["body"]["messages"] for r in server.by("bio") if r["entity"] == a and len(r["body"]["messages"]) > 2]
    assert len(retries) == 2 and all("must be stated with its year" in m[-1]["content"] and "the number" in m[-1]["content"] for m in retries)
    template_bio = next(b for b in world.biographies if b.entity_id == a)
    fallback_bio = next(b for b in out.biographies if b.entity_id == a)
    assert fallback_bio.text == template_bio.text and fallback_bio.source == "template_fallback"
    before = {p.probe_id: p for p in world.probes}
    for p in out.probes:
        if p.entity_id == a and p.depth == "d0":
            assert p.source == "template_fallback" and p.question == before[p.probe_id].question
        if p.entity_id == d and p.depth == "d1":
            o = before[p.probe_id]
            assert p.source == "template_fallback"
            assert (p.paraphrased_question, p.paraphrased_answer, p.perturbed_answer, p.options) == (
                o.paraphrased_question,
                o.paraphrased_answer,
                o.perturbed_answer,
                o.options,
            )
    per_item = len([p for p in world.probes if p.entity_id == d and p.depth == "d1" and p.attack == "none"])
    assert gen["fallbacks"]["paraphrase"] == gen["fallbacks"]["perturb"] == per_item


def test_http_failures_are_retried_and_nothing_is_lost(world, server, tmp_path):
    ids = [e.entity_id for e in world.entities]
    clean, _ = enrich_world(world, config(server, tmp_path / "clean"))
    server.requests.clear()
    server.script = {
        ("bio", ids[0]): ["429"],
        ("bio", ids[1]): ["500", "500"],
        ("bio", ids[2]): ["stall"],
        ("bio", ids[3]): ["drop"],
        ("paraphrase", ids[4]): ["500"],
    }
    out, report = enrich_world(world, config(server, tmp_path / "faulty"))
    assert_correct(world, out)
    assert report["generation"]["retries"] == {"429": 1, "5xx": 3, "timeout": 1, "connection": 1}
    assert report["run"]["retries"] == report["generation"]["retries"]
    assert report["generation"]["fallbacks"] == {"bio": 0, "paraphrase": 0, "perturb": 0}
    first, again = [r["time"] for r in server.by("bio") if r["entity"] == ids[0]]
    assert again - first >= 0.55  # Retry-After: 0.6 was honoured
    write_world(clean, tmp_path / "a")
    write_world(out, tmp_path / "b")
    a, b = files(tmp_path / "a"), files(tmp_path / "b")
    assert {k: v for k, v in a.items() if k != "manifest.json"} == {k: v for k, v in b.items() if k != "manifest.json"}


def test_endpoint_down_raises_and_keeps_answers(world, server, tmp_path):
    ids = [e.entity_id for e in world.entities]
    server.script = {("bio", ids[-1]): ["500"] * 10}
    with pytest.raises(LLMUnavailable, match=r"--llm-base-url.*rerun the same command to resume"):
        enrich_world(world, config(server, tmp_path, max_retries_http=2, concurrency=1, tasks=("bio",)))
    assert len(LLMCache(tmp_path / "cache")) == len(ids) - 1  # every answer before the outage is kept


def test_rebuild_from_cache_is_free_and_byte_identical(world, server, tmp_path):
    first, _ = enrich_world(world, config(server, tmp_path))
    write_world(first, tmp_path / "a")
    sent = len(server.requests)
    server.default = "500"  # any request now would fail
    again, report = enrich_world(world, config(server, tmp_path))
    write_world(again, tmp_path / "b")
    assert len(server.requests) == sent and report["run"]["requests"] == 0 and report["run"]["cache_hits"] == sent
    assert files(tmp_path / "a") == files(tmp_path / "b")


RUNNER = """
import sys
from entity_unlearn.builders import LLMConfig, generate_world
from entity_unlearn.builders.llm.enrich import enrich_world
world = generate_world({counts!r}, seed=0)
enrich_world(world, LLMConfig(model="test-model", base_url={url!r}, cache_dir={cache!r}, concurrency=2, timeout_s=5))
"""


def test_killed_run_resumes_without_repeating_a_request(world, server, tmp_path):
    server.latency_s = 0.05
    reached = threading.Event()
    server.on_request = lambda record: reached.set() if len(server.requests) >= 12 else None
    cache = tmp_path / "cache"
    proc = subprocess.Popen([sys.executable, "-c", RUNNER.format(counts=COUNTS, url=server.url, cache=str(cache))])
    try:
        assert reached.wait(60), "the run never reached 12 requests"
        proc.kill()
    finally:
        proc.wait(30)
    assert proc.returncode != 0
    cached = {p.stem for p in cache.glob("??/*.json")}
    assert 6 <= len(cached) < 3 * len(world.entities)
    first_run = len(server.requests)
    server.latency_s, server.on_request = 0.0, None
    out, report = enrich_world(world, config(server, tmp_path, timeout_s=5))
    resumed = {key_of(r) for r in server.requests[first_run:]}
    assert not resumed & cached, "a cached request was sent again"
    assert report["run"]["cache_hits"] == len(cached) and report["run"]["requests"] == len(resumed)
    full, _ = enrich_world(world, config(server, tmp_path / "fresh"))
    write_world(out, tmp_path / "a")
    write_world(full, tmp_path / "b")
    assert files(tmp_path / "a") == files(tmp_path / "b")


def test_cli_generate_with_llm(server, tmp_path, monkeypatch, capsys):
    server.api_key = "sk-secret-123"
    monkeypatch.setenv("MY_KEY", "sk-secret-123")
    args = [
        "generate",
        "--types",
        "person=6,organisation=2,place=3",
        "--out",
        str(tmp_path / "w"),
        "--quiet",
        "--llm",
        "test-model",
        "--llm-base-url",
        server.url,
        "--llm-api-key-env",
        "MY_KEY",
        "--llm-concurrency",
        "4",
    ]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "bio        11/11 accepted (100.0%" in printed and "33 requests sent" in printed
    manifest = json.loads((tmp_path / "w" / "manifest.json").read_text())
    assert manifest["generation"]["acceptance"]["perturb"]["rate"] == 1.0
    assert (tmp_path / "w" / ".llm-cache").is_dir()
    everything = printed + "".join(p.read_text() for p in (tmp_path / "w").rglob("*") if p.is_file())
    assert "sk-secret" not in everything
    assert main(args) == 0 and "0 requests sent, 33 answers from the cache" in capsys.readouterr().out


@pytest.mark.parametrize(
    "extra,env,message",
    [
        (["--llm-tasks", "bio,paraphrse"], {}, "--llm-tasks: unknown task(s) paraphrse"),
        (["--llm-base-url", "localhost:8000/v1"], {}, "--llm-base-url 'localhost:8000/v1' is not an http(s) URL"),
        ([], {"OPENAI_API_KEY": "sk-wrong"}, "refused the API key (HTTP 401); set the environment variable named by --llm-api-key-env"),
        (["--llm-base-url", "{url}/nope"], {"OPENAI_API_KEY": "sk-right"}, "HTTP 404"),
    ],
)
def test_cli_errors_name_the_option(server, tmp_path, monkeypatch, capsys, extra, env, message):
    server.api_key = "sk-right"
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("OPENAI_BASE_URL", server.url)
    args = ["generate", "--types", "person=6,organisation=2,place=3", "--out", str(tmp_path / "w"), "--quiet", "--llm", "test-model"]
    assert main(args + [x.format(url=server.url) for x in extra]) == 2
    err = capsys.readouterr().err
    assert message in err and "sk-" not in err
