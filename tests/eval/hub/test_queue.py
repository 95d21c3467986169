"""The scoring queue end to end through the real huggingface_hub client and a local Hub-compatible server:
tiny models and a release uploaded, submitted, scored (a scorer killed mid-run and rerun), results and
eval-results entries checked on the Hub, then the leaderboard built from the results repo and opened in
headless Chromium."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from hub_server import HubServer

from entity_unlearn.cli import main
from entity_unlearn.pipeline.finetune import TrainConfig
from entity_unlearn.pipeline.inject import inject_tiny, release_texts
from entity_unlearn.pipeline.tiny import TinyConfig, train_tokenizer
from entity_unlearn.pipeline.unlearn import run_unlearning

TOKEN = "hf_leaderboard_write_token"
RELEASE, QUEUE, RESULTS = "lab/entity-unlearn", "lab/requests", "lab/results"
SMALL = TinyConfig(vocab_size=1000, hidden_size=64, intermediate_size=192)
EPOCHS = 3  # the queue's behaviour is under test, not how well the tiny models learn
CLI = [sys.executable, "-c", "import sys; from entity_unlearn.cli import main; sys.exit(main(sys.argv[1:]))"]

UPLOAD = """
import json, sys
from huggingface_hub import HfApi
api = HfApi()
for repo, folder in json.loads(sys.argv[1]).items():
    api.create_repo(repo, exist_ok=True)
    api.upload_folder(repo_id=repo, folder_path=folder, commit_message="upload")
"""
# Runs several CLI calls in one process (one import of the package), each with its own exit code and stderr.
CLI_MANY = """
import contextlib, io, json, sys
from entity_unlearn.cli import main
out = []
for argv in json.loads(sys.argv[1]):
    err, std = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(std):
        rc = main(argv)
    out.append({"rc": rc, "stderr": err.getvalue(), "stdout": std.getvalue()})
print(json.dumps(out))
"""
# Writes queue files by hand (bad requests that `submit` would refuse), as a careless tool could.
WRITE_QUEUE = """
import json, sys
from huggingface_hub import CommitOperationAdd, HfApi
files = json.loads(sys.argv[2])
HfApi().create_commit(sys.argv[1], [CommitOperationAdd(p, c.encode()) for p, c in files.items()], commit_message="by hand", repo_type="dataset")
"""


def hub_env(hub: HubServer, home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING"))}
    return {
        **env,
        "HF_ENDPOINT": hub.url,
        "HF_TOKEN": TOKEN,
        "HF_HOME": str(home),
        "HF_HUB_OFFLINE": "0",
        "HF_DATASETS_OFFLINE": "0",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "HF_HUB_DISABLE_PROGRESS_BARS": "1",
        "HF_HUB_DISABLE_XET": "1",  # the test Hub serves LFS, not Xet (tests/hub_server.py)
    }


def py(env: dict, code: str, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr[-4000:]
    return done


def cli_many(env: dict, *argvs: list[str]) -> list[dict]:
    return json.loads(py(env, CLI_MANY, json.dumps(list(argvs))).stdout.strip().splitlines()[-1])


def scorer(env: dict, work: Path, *extra: str) -> list[str]:
    return [*CLI, "score-queue", "--queue", QUEUE, "--results", RESULTS, "--work", str(work), "--max-new-tokens", "12", "--quiet", *extra]


def queue_records(hub: HubServer) -> dict[str, dict]:
    repo = hub.repos[QUEUE]
    files = repo.commits[repo.branches["main"]]
    return {p: json.loads(c) for p, c in files.items() if p.startswith("requests/")}


def results_files(hub: HubServer) -> dict[str, bytes]:
    repo = hub.repos[RESULTS]
    return repo.commits[repo.branches["main"]]


@pytest.fixture(scope="module")
def hub():
    with HubServer(token=TOKEN) as server:
        server.users["hf_second_user_token"] = "second-user"
        yield server


@pytest.fixture(scope="module")
def lab(hub, tmp_path_factory):
    """A published release, a reference model, an injected target, its GA-unlearned version, and two unsafe checkpoints."""
    d = tmp_path_factory.mktemp("lab")
    release = d / "entity-unlearn"
    assert main(["build", "--entities", "10", "--seed", "0", "--version", "1.0.0", "--out", str(release), "--quiet"]) == 0
    tok = train_tokenizer(release_texts(str(release)))
    train = TrainConfig(epochs=EPOCHS)
    models = {
        "lab/tiny-reference": inject_tiny(str(release), d / "reference", exclude="forget05", tokenizer=tok, tiny=SMALL, train=train),
        "lab/tiny-target": inject_tiny(str(release), d / "target", tokenizer=tok, tiny=SMALL, train=train),
    }
    models["lab/tiny-ga"] = run_unlearning(str(models["lab/tiny-target"]), str(release), "forget05", "ga", d / "ga", overrides={"lr": 1e-3})
    pickled = d / "pickled"
    shutil.copytree(models["lab/tiny-target"], pickled)
    (pickled / "model.safetensors").rename(pickled / "pytorch_model.bin")  # a pickle-only repo, as far as the queue can tell
    remote = d / "remote"
    shutil.copytree(models["lab/tiny-target"], remote)
    config = json.loads((remote / "config.json").read_text())
    (remote / "config.json").write_text(json.dumps({**config, "auto_map": {"AutoModelForCausalLM": "modeling_x.XForCausalLM"}}))
    env = hub_env(hub, d / "hf_home")
    assert subprocess.run([*CLI, "publish", str(release), "--repo", RELEASE], env=env, capture_output=True).returncode == 0
    uploads = {**{k: str(v) for k, v in models.items()}, "lab/tiny-pickled": str(pickled), "lab/tiny-remote": str(remote)}
    py(env, UPLOAD, json.dumps(uploads))
    return {"dir": d, "env": env, "release": release}


def test_submit_refuses_what_it_cannot_score_with_one_clear_message(hub, lab):
    rel = f"{RELEASE}@v1.0.0"
    sub = ["submit", "--queue", QUEUE, "--release", rel]
    if QUEUE not in hub.repos:
        hub.new_repo(QUEUE)  # the queue's host creates it (README); submit never does, so a typo is an error
    got = cli_many(
        lab["env"],
        [*sub, "--model", "lab/no-such-model"],
        [*sub, "--model", "lab/tiny-target@no-such-branch"],
        [*sub, "--model", "lab/tiny-target", "--forget", "forget07"],
        ["submit", "--queue", QUEUE, "--release", RELEASE, "--model", "lab/tiny-target"],
        [*sub, "--model", "lab/tiny-pickled"],
        [*sub, "--model", "lab/tiny-remote"],
        [*sub, "--model", "lab/tiny-target", "--queue", "lab/no-such-queue"],
    )
    expected = [
        "--model lab/no-such-model: no such model on the Hub",
        "--model lab/tiny-target@no-such-branch: the model has no revision 'no-such-branch'",
        "--forget forget07: release lab/entity-unlearn@v1.0.0 has no such forget set; it has forget01, forget05, forget10",
        "name the version, e.g. lab/entity-unlearn@v1.0.0",
        "only pickle weights (pytorch_model.bin)",
        "config.json names its own code (auto_map)",
        "--queue lab/no-such-queue: no such queue dataset on the Hub",
    ]
    for g, want in zip(got, expected):
        assert g["rc"] == 2 and want in g["stderr"], (want, g)
        assert len(g["stderr"].strip().splitlines()) == 1, g["stderr"]
    assert queue_records(hub) == {}  # nothing was written


@pytest.fixture(scope="module")
def scored(hub, lab):
    """Submit, add bad requests by hand, start a scorer and kill it mid-evaluation, rerun it; the states seen on the way."""
    env, work = lab["env"], lab["dir"] / "scorer-work"
    rel = f"{RELEASE}@v1.0.0"
    if QUEUE not in hub.repos:
        hub.new_repo(QUEUE)
    sub = ["submit", "--queue", QUEUE, "--release", rel, "--reference-model", "lab/tiny-reference"]
    submitted = cli_many(
        env,
        [*sub, "--model", "lab/tiny-target", "--method", "none", "--notes", "injected, not unlearned"],
        [*sub, "--model", "lab/tiny-ga", "--method", "ga", "--base", "lab/tiny-target", "--open-pr"],
        [*sub, "--model", "lab/tiny-target"],
    )
    good = queue_records(hub)
    target = next(r for r in good.values() if r["model"] == "lab/tiny-target")
    bad = {
        "requests/lab/broken/0000000000000000000000000000000000000000_v1.0.0_forget05.json": '{"model": "lab/broken", "commit": ',
        "requests/lab/ghost/1111111111111111111111111111111111111111_v1.0.0_forget05.json": json.dumps(
            {**target, "model": "lab/ghost", "commit": "1" * 40, "submitted_at": "2020-01-01T00:00:00Z"}
        ),
        "requests/lab/tiny-target/2222222222222222222222222222222222222222_v1.0.0_forget05.json": json.dumps(
            {**target, "commit": "2" * 40, "submitted_at": "2020-01-01T00:00:01Z"}
        ),
        f"requests/lab/tiny-target/{target['commit']}_v1.0.0_forget07.json": json.dumps(
            {**target, "forget": "forget07", "submitted_at": "2020-01-01T00:00:02Z"}
        ),
        "requests/lab/tiny-target/3333333333333333333333333333333333333333_v1.0.0_forget05.json": json.dumps({**target, "commit": "main"}),
    }
    py(env, WRITE_QUEUE, QUEUE, json.dumps(bad))

    # A scorer killed while it evaluates its first request (the reference: references go first).
    first = subprocess.Popen(scorer(env, work), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 300
    while time.time() < deadline and first.poll() is None:
        caches = [p for p in work.glob("runs/**/cache/*.jsonl") if p.stat().st_size > 0]
        if caches:
            break
        time.sleep(0.05)
    first.send_signal(signal.SIGKILL)
    first_out = first.communicate()[0]
    assert caches, first_out[-3000:]
    after_kill = queue_records(hub)
    results_after_kill = dict(results_files(hub)) if RESULTS in hub.repos else {}

    second = subprocess.run(scorer(env, work), env=env, capture_output=True, text=True, timeout=1800)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    third = subprocess.run(scorer(env, work), env=env, capture_output=True, text=True, timeout=300)
    return {
        "submitted": submitted,
        "killed_in": caches[0],
        "after_kill": after_kill,
        "results_after_kill": results_after_kill,
        "second": second.stdout,
        "third": third.stdout,
        "holder": (work / "scorer-id").read_text().strip(),
        "work": work,
    }


def test_submissions_are_queued_with_resolved_commits_and_duplicates_refused(hub, scored):
    first, second, dup = scored["submitted"]
    assert first["rc"] == 0 and second["rc"] == 0, (first, second)
    assert "queued submission: lab/tiny-target@" in first["stdout"] and "queued reference: lab/tiny-reference@" in first["stdout"]
    assert "queued reference" not in second["stdout"]  # the reference was queued once
    assert dup["rc"] == 2 and "already in the queue" in dup["stderr"] and "status pending" in dup["stderr"]
    heads = {k.removeprefix("models/"): r.branches["main"] for k, r in hub.repos.items() if k.startswith("models/")}
    by_model = {
        r["model"]: r for r in scored["after_kill"].values() if r.get("forget") == "forget05" and r.get("commit") == heads.get(r.get("model"))
    }
    assert set(by_model) == {"lab/tiny-reference", "lab/tiny-target", "lab/tiny-ga"}
    for model, r in by_model.items():
        assert r["commit"] == hub.repos[f"models/{model}"].branches["main"] and r["revision"] == "main"
        assert r["release_revision"] == "v1.0.0" and r["release_commit"] == hub.repos[RELEASE].tags["v1.0.0"]
        assert r["submitter"] == "hub-user" and r["forget"] == "forget05"
    assert by_model["lab/tiny-reference"]["role"] == "reference"
    ga = by_model["lab/tiny-ga"]
    assert ga["method"] == "ga" and ga["base_model"] == "lab/tiny-target" and ga["open_pr"] is True
    assert ga["reference_commit"] == hub.repos["models/lab/tiny-reference"].branches["main"]


def test_a_killed_scorer_leaves_its_lease_and_the_rerun_resumes_and_scores_everything_once(hub, scored):
    running = [r for r in scored["after_kill"].values() if r.get("status") == "running"]
    assert len(running) == 1 and running[0]["role"] == "reference" and running[0]["lease"]["holder"] == scored["holder"]
    assert not any(p.endswith("results.json") for p in scored["results_after_kill"])
    assert "resumed  requests/lab/tiny-reference/" in scored["second"]
    assert scored["second"].index("tiny-reference") < scored["second"].index("finished requests/lab/tiny-target/")
    assert scored["second"].index("finished requests/lab/tiny-target/") < scored["second"].index("finished requests/lab/tiny-ga/")  # base first
    assert "scored 0 request(s)" in scored["third"]
    records = queue_records(hub)
    finished = {r["model"]: r for r in records.values() if r.get("status") == "finished"}
    assert set(finished) == {"lab/tiny-reference", "lab/tiny-target", "lab/tiny-ga"}
    assert finished["lab/tiny-reference"]["attempts"] == 2 and finished["lab/tiny-target"]["attempts"] == 1
    assert all(r["lease"] is None for r in finished.values())
    # one upload per scored request, never two
    messages = [m for m in hub.requests if m.startswith(f"POST /api/datasets/{RESULTS}/commit/")]
    assert len(messages) == 3, messages
    ref = json.loads(results_files(hub)[f"{finished['lab/tiny-reference']['results_path']}/results.json"])
    assert ref["spec"]["passes"]["score"]["cached"] > 0  # the rerun read what the killed scorer had computed


def test_bad_requests_each_get_one_clear_failure_and_the_queue_goes_on(hub, scored):
    failed = {p: r for p, r in queue_records(hub).items() if r.get("status") == "failed"}
    texts = sorted(r["error"] for r in failed.values())
    assert len(failed) == 5, texts
    assert any("broken/" in t and "not valid JSON" in t for t in texts)
    assert any("model lab/ghost: no such model on the Hub" in t for t in texts)
    assert any("model lab/tiny-target@2222222222222222222222222222222222222222: the model has no revision" in t for t in texts)
    assert any("--forget forget07: not a forget set of this release" in t for t in texts)
    assert any("field commit: 'main' does not match" in t for t in texts)
    assert all("\n" not in t for t in texts)
    broken = next(r for r in failed.values() if "raw" in r)
    assert broken["raw"] == '{"model": "lab/broken", "commit": '  # the original text is kept


def test_results_repo_holds_every_file_of_each_run_and_hub_eval_results(hub, scored):
    files = results_files(hub)
    finished = {r["model"]: r for r in queue_records(hub).values() if r.get("status") == "finished"}
    for model, r in finished.items():
        prefix = r["results_path"]
        assert prefix == f"{model}/{r['commit']}/v1.0.0_forget05"
        for name in (
            "results.json",
            "rows.parquet",
            "request.json",
            "report.md",
            "depth_profile.png",
            "entity_heatmap.png",
            "eval_results.yaml",
            "model_index.yaml",
        ):
            assert f"{prefix}/{name}" in files, (prefix, name)
        assert not any(p.startswith(f"{prefix}/cache/") for p in files)
        assert json.loads(files[f"{prefix}/request.json"])["status"] == "finished"
    target = json.loads(files[f"{finished['lab/tiny-target']['results_path']}/results.json"])
    rows = files[f"{finished['lab/tiny-target']['results_path']}/rows.parquet"]  # the per-item rows travel beside results.json
    assert target["rows_file"] == "rows.parquet" and target["rows_sha256"] == hashlib.sha256(rows).hexdigest() and "rows" not in target
    assert pq.read_table(pa.BufferReader(rows)).num_rows == target["rows_count"] > 0
    metrics = {a["metric"] for a in target["aggregates"]}
    assert {"forget_quality", "surviving_entity_share", "model_utility"} <= metrics  # scored against the reference's result
    ga = json.loads(files[f"{finished['lab/tiny-ga']['results_path']}/results.json"])
    assert any(a["metric"] == "efficacy_prob" for a in ga["aggregates"])  # against its base's result
    entries = yaml.safe_load(files[f"{finished['lab/tiny-ga']['results_path']}/eval_results.yaml"])
    tasks = {e["dataset"]["task_id"]: e for e in entries}
    assert {"forget05_forget_quality", "forget05_model_utility", "forget05_surviving_entity_share"} <= set(tasks)
    fq = tasks["forget05_forget_quality"]
    assert fq["dataset"] == {"id": RELEASE, "task_id": "forget05_forget_quality", "revision": hub.repos[RELEASE].tags["v1.0.0"]}
    value = next(
        a["value"] for a in ga["aggregates"] if (a["metric"], a["set"], a["depth"], a["attack"]) == ("forget_quality", "forget", "d1", "none")
    )
    assert fq["value"] == pytest.approx(value, abs=1e-6) and fq["source"]["url"].endswith(finished["lab/tiny-ga"]["results_path"])
    index = yaml.safe_load(files[f"{finished['lab/tiny-ga']['results_path']}/model_index.yaml"])["model-index"]
    assert index[0]["name"] == "tiny-ga" and {m["type"] for m in index[0]["results"][0]["metrics"]} >= {"forget_quality", "model_utility"}


def test_a_request_scored_after_others_in_one_scorer_equals_the_eval_command(hub, lab, scored, tmp_path):
    """The scorer keeps the release's items and plan between requests (evaluate's memo): the unlearned model, scored
    after its reference and base in the same process, gets the per-item rows a fresh ``eval`` of it gets."""
    finished = {r["model"]: r for r in queue_records(hub).values() if r.get("status") == "finished"}
    hub_rows = pq.read_table(pa.BufferReader(results_files(hub)[f"{finished['lab/tiny-ga']['results_path']}/rows.parquet"]))
    out = tmp_path / "direct"
    argv = ["eval", "--model", str(lab["dir"] / "ga"), "--data", str(lab["release"]), "--forget", "forget05", "--out", str(out)]
    assert main([*argv, "--max-new-tokens", "12", "--quiet"]) == 0
    direct = pq.read_table(out / "rows.parquet")
    assert direct.num_rows == hub_rows.num_rows > 0 and direct.to_pylist() == hub_rows.to_pylist()


def test_open_pr_puts_the_eval_results_and_model_index_on_the_model_repo(hub, scored):
    ga = next(r for r in queue_records(hub).values() if r.get("model") == "lab/tiny-ga")
    repo = hub.repos["models/lab/tiny-ga"]
    assert ga["pr_url"].endswith("/lab/tiny-ga/discussions/1") and "refs/pr/1" in repo.branches
    files = repo.commits[repo.branches["refs/pr/1"]]
    assert repo.commits[repo.branches["main"]].keys() < files.keys()  # main untouched, the PR adds files
    entries = yaml.safe_load(files[".eval_results/entity-unlearn_v1.0.0_forget05.yaml"])
    assert {e["dataset"]["task_id"] for e in entries} >= {"forget05_forget_quality", "forget05_model_utility"}
    card = files["README.md"].decode()
    meta = yaml.safe_load(card.split("---")[1])
    results = meta["model-index"][0]["results"]
    assert results[0]["dataset"]["type"] == RELEASE and results[0]["dataset"]["revision"] == hub.repos[RELEASE].tags["v1.0.0"]
    target = next(r for r in queue_records(hub).values() if r.get("model") == "lab/tiny-target" and r.get("status") == "finished")
    assert target["pr_url"] is None and not any(b.startswith("refs/pr/") for b in hub.repos["models/lab/tiny-target"].branches)


def chromium():
    """Debian's headless Chromium through its chromedriver (installed by `make test` when missing), or a skip saying why."""
    binary, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not binary or not driver:
        pytest.skip("chromium and chromedriver are not installed (apt-get install chromium chromium-driver; `make test` does it as root)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = binary
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(executable_path=driver), options=opts)


@pytest.fixture(scope="module")
def site(hub, lab, scored):
    out = lab["dir"] / "site"
    done = subprocess.run(
        [*CLI, "leaderboard", "--results", RESULTS, "--out", str(out)],
        env=lab["env"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "leaderboard of 3 run(s)" in done.stdout
    return out


def test_leaderboard_files_hold_every_scored_run_with_links_to_exact_revisions(hub, site):
    data = json.loads((site / "leaderboard.json").read_text())
    runs = {r["model"]: r for r in data["runs"]}
    assert set(runs) == {"lab/tiny-reference", "lab/tiny-target", "lab/tiny-ga"}
    ga = runs["lab/tiny-ga"]
    commit = hub.repos["models/lab/tiny-ga"].branches["main"]
    assert ga["model_url"] == f"{hub.url}/lab/tiny-ga/tree/{commit}" and ga["method"] == "ga" and ga["base"] == "lab/tiny-target"
    assert ga["release_url"] == f"{hub.url}/datasets/{RELEASE}/tree/{hub.repos[RELEASE].tags['v1.0.0']}"
    assert ga["values"]["forget_quality"] is not None and runs["lab/tiny-reference"]["values"]["forget_quality"] is None
    keys = [c["key"] for c in data["columns"]]
    assert keys[:5] == ["forget_quality", "model_utility", "model_utility_entity", "surviving_entity_share", "privleak"] and "forget_prob_d4" in keys
    lines = (site / "leaderboard.csv").read_text().splitlines()
    assert len(lines) == 4 and lines[0].startswith("model,commit,role,base,method,forget")
    for r in data["runs"]:
        page = site / r["page"]
        assert page.is_file() and (page.parent / "depth_profile.png").is_file() and (page.parent / "entity_heatmap.png").is_file()
    assert (site / "efficacy_vs_utility.png").stat().st_size > 5000


def test_leaderboard_reads_plain_eval_folders_at_any_depth_and_shows_robustness_when_present(scored, tmp_path):
    run = next((scored["work"] / "runs").glob("lab/tiny-ga/*/*"))
    local = tmp_path / "evals" / "deep" / "npo"
    shutil.copytree(run, local, ignore=shutil.ignore_patterns("request.json", "cache"))
    result = json.loads((local / "results.json").read_text())
    result["aggregates"].append(
        {
            "metric": "recovery",
            "set": "forget",
            "depth": "all",
            "attack": "none",
            "robustness_attack": "relearn",
            "value": 0.25,
            "n": 2,
            "higher_is_better": False,
        }
    )
    (local / "results.json").write_text(json.dumps(result))
    shutil.copytree(run, tmp_path / "evals" / "ga", ignore=shutil.ignore_patterns("request.json"))  # its cache/ holds no result
    assert main(["leaderboard", "--results", str(tmp_path / "evals"), "--out", str(tmp_path / "site")]) == 0
    data = json.loads((tmp_path / "site" / "leaderboard.json").read_text())
    assert sorted(r["slug"] for r in data["runs"]) == ["deep--npo", "ga"]
    npo = next(r for r in data["runs"] if r["slug"] == "deep--npo")
    assert npo["role"] == "local" and npo["values"]["recovery@relearn"] == 0.25 and npo["model_url"] is None
    assert {"key": "recovery@relearn", "higher_is_better": False, "robustness": True} in data["columns"]
    assert "recovery@relearn" in (tmp_path / "site" / "index.html").read_text()
    assert main(["leaderboard", "--results", str(tmp_path / "nothing-here"), "--out", str(tmp_path / "s2")]) == 2


def test_leaderboard_page_sorts_filters_and_loads_every_image_in_headless_chromium(site):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    data = json.loads((site / "leaderboard.json").read_text())
    driver = chromium()
    try:
        driver.get((site / "index.html").as_uri())
        order = lambda: [r.get_attribute("data-slug") for r in driver.find_elements(By.CSS_SELECTOR, "#board tbody tr")]  # noqa: E731
        visible = lambda: [r.get_attribute("data-slug") for r in driver.find_elements(By.CSS_SELECTOR, "#board tbody tr") if r.is_displayed()]  # noqa: E731
        initial = order()
        assert sorted(initial) == sorted(r["slug"] for r in data["runs"]) and len(initial) == 3  # every submission shown

        by_model = {r["slug"]: r["model"] for r in data["runs"]}
        driver.find_element(By.CSS_SELECTOR, 'th[data-key="model"]').click()
        ascending = order()
        assert [by_model[s] for s in ascending] == sorted(by_model.values())
        driver.find_element(By.CSS_SELECTOR, 'th[data-key="model"]').click()
        assert order() == ascending[::-1]  # a second click reverses
        prob = {r["slug"]: r["values"]["forget_prob_d1"] for r in data["runs"]}
        driver.find_element(By.CSS_SELECTOR, 'th[data-key="forget_prob_d1"]').click()
        assert [prob[s] for s in order()] == sorted(prob.values())
        assert driver.find_element(By.CSS_SELECTOR, 'th[data-key="forget_prob_d1"]').get_attribute("aria-sort") == "ascending"

        driver.find_element(By.ID, "filter").send_keys("reference")
        assert visible() == [s for s in order() if by_model[s] == "lab/tiny-reference"]
        assert driver.find_element(By.ID, "shown").text == "1 of 3 shown"
        driver.find_element(By.ID, "filter").clear()
        driver.find_element(By.ID, "filter").send_keys(" ")  # an input event with an empty filter shows everything again
        assert len(visible()) == 3
        Select(driver.find_element(By.ID, "method-filter")).select_by_value("ga")
        assert [by_model[s] for s in visible()] == ["lab/tiny-ga"]

        pages = [site / "index.html", *(site / r["page"] for r in data["runs"])]
        for page in pages:
            driver.get(page.as_uri())
            images = driver.execute_script("return Array.from(document.images).map(i => [i.getAttribute('src'), i.complete && i.naturalWidth > 0])")
            assert images and all(ok for _, ok in images), (page, images)
            links = driver.execute_script("return Array.from(document.links).map(a => a.getAttribute('href'))")
            for href in links:
                if not href.startswith(("http://", "https://")):
                    assert (page.parent / href).resolve().is_file(), (page, href)  # no broken local link
        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        assert not errors, errors
    finally:
        driver.quit()
