"""Publishing through the real huggingface_hub client to a local Hub-compatible server, then loading back.

The parquet files go through the git-LFS upload path (batch, PUT, verify, ``lfsFile`` pointers) and come back
through the Hub's LFS redirect, as on the real Hub; ``HF_HUB_DISABLE_XET=1`` keeps the client off the Xet transfer,
which the test server does not emulate (tests/hub_server.py).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from hub_server import HubServer
from release_fixtures import hf_offline, release, release_world  # noqa: F401

from entity_unlearn.builders import PublishError, publish_release

TOKEN = "hf_test_write_token"
REPO = "lab/entity-unlearn"
LOAD_ALL = """
import json, sys
from datasets import load_dataset
repo, out, names = sys.argv[1], sys.argv[2], sys.argv[3].split(",")
got = {n: load_dataset(repo, n, revision="v1.0.0")["train"].to_list() for n in names}
got["<default>"] = load_dataset(repo, revision="v1.0.0")["train"].num_rows
open(out, "w").write(json.dumps(got))
"""


def hub_env(hub: HubServer, tmp_path: Path, token: str = TOKEN) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING"))}
    return {
        **env,
        "HF_ENDPOINT": hub.url,
        "HF_TOKEN": token,
        "HF_HOME": str(tmp_path / "hf_home_sub"),
        "HF_HUB_OFFLINE": "0",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "HF_HUB_DISABLE_PROGRESS_BARS": "1",
        "HF_HUB_DISABLE_XET": "1",
    }


def cli(env: dict[str, str], *argv: str) -> subprocess.CompletedProcess:
    code = "import sys; from entity_unlearn.cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run([sys.executable, "-c", code, *argv], env=env, capture_output=True, text=True, timeout=120)


def test_publish_tags_the_version_and_every_config_loads_back_by_repo_id(release, tmp_path):
    _, manifest, folder = release
    with HubServer(token=TOKEN) as hub:
        env = hub_env(hub, tmp_path)
        done = cli(env, "publish", str(folder), "--repo", REPO)
        assert done.returncode == 0, done.stderr
        assert "tag v1.0.0" in done.stdout
        repo = hub.repos[REPO]
        files = repo.commits[repo.tags["v1.0.0"]]
        assert sorted(files) == sorted([*manifest["files"], "manifest.json"])
        assert all(hashlib.sha256(files[p]).hexdigest() == info["sha256"] for p, info in manifest["files"].items())
        parquet = {p for p in manifest["files"] if p.endswith(".parquet")}
        assert repo.lfs_paths == parquet and len(parquet) == len(manifest["configs"])  # README.md, manifest.json: git blobs
        assert sorted(hub.lfs_uploads) == sorted(manifest["files"][p]["sha256"] for p in parquet)
        assert sum(r.startswith("PUT /lfs-upload/") for r in hub.requests) == len(parquet)

        out = tmp_path / "loaded.json"
        names = list(manifest["configs"])
        loaded = subprocess.run(
            [sys.executable, "-c", LOAD_ALL, REPO, str(out), ",".join(names)], env=env, capture_output=True, text=True, timeout=300
        )
        assert loaded.returncode == 0, loaded.stderr[-3000:] + f"\nunknown requests: {hub.unknown}"
        got = json.loads(out.read_text())
        for name in names:
            local = pq.read_table(folder / manifest["configs"][name]["path"]).to_pylist()
            assert got[name] == json.loads(json.dumps(local)), name
        assert got["<default>"] == manifest["configs"]["full"]["rows"]
        assert any(r.startswith("GET /lfs-objects/") for r in hub.requests)  # the parquet bytes came through the LFS redirect

        again = cli(env, "publish", str(folder), "--repo", REPO)
        assert again.returncode == 2
        assert "tag v1.0.0 already exists" in again.stderr and "--version" in again.stderr
        assert len(repo.commits) == 2 and list(repo.tags) == ["v1.0.0"]
        assert not hub.unknown


def test_publish_refuses_a_wrong_token_and_an_edited_release(release, tmp_path):
    _, manifest, folder = release
    with HubServer(token=TOKEN) as hub:
        done = cli(hub_env(hub, tmp_path, token="hf_wrong"), "publish", str(folder), "--repo", REPO)
        assert done.returncode == 2 and "refused (401)" in done.stderr and "HF_TOKEN" in done.stderr
        assert REPO not in hub.repos
        with pytest.raises(PublishError, match="HF_HUB_OFFLINE is set"):
            publish_release(folder, REPO, token=TOKEN, endpoint=hub.url)
    edited = tmp_path / "edited"
    edited.mkdir()
    for rel in [*manifest["files"], "manifest.json"]:
        (edited / rel).parent.mkdir(parents=True, exist_ok=True)
        (edited / rel).write_bytes((folder / rel).read_bytes())
    (edited / "README.md").write_text("edited\n", encoding="utf-8")
    with pytest.raises(PublishError, match="README.md: content differs from manifest.json"):
        publish_release(edited, REPO, token=TOKEN, endpoint="http://127.0.0.1:9")
    with pytest.raises(PublishError, match="ORG/NAME"):
        publish_release(folder, "no-slash", token=TOKEN, endpoint="http://127.0.0.1:9")
    (edited / "manifest.json").unlink()
    with pytest.raises(ValueError, match="no release manifest"):
        publish_release(edited, REPO, token=TOKEN, endpoint="http://127.0.0.1:9")


def test_private_never_changes_the_visibility_of_an_existing_repo(release, tmp_path):
    _, manifest, folder = release
    with HubServer(token=TOKEN) as hub:
        env = hub_env(hub, tmp_path)
        hub.new_repo(REPO)  # exists and is public
        refused = cli(env, "publish", str(folder), "--repo", REPO, "--private")
        assert refused.returncode == 2
        assert f"--private: {REPO} exists and is public" in refused.stderr and "update_repo_settings" in refused.stderr
        assert not hub.repos[REPO].tags and not hub.lfs_uploads  # refused before anything was uploaded
        assert "public" in cli(env, "publish", "--help").stdout.split("--private", 1)[1]

        done = cli(env, "publish", str(folder), "--repo", "lab/secret", "--private")
        assert done.returncode == 0, done.stderr
        assert hub.repos["lab/secret"].private and "lab/secret (private)" in done.stdout


def test_a_private_repo_stays_private_when_published_to_without_the_flag(release, tmp_path):
    _, manifest, folder = release
    with HubServer(token=TOKEN) as hub:
        hub.new_repo(REPO, private=True)
        done = cli(hub_env(hub, tmp_path), "publish", str(folder), "--repo", REPO)
        assert done.returncode == 0, done.stderr
        assert hub.repos[REPO].private and f"{REPO} (private)" in done.stdout and list(hub.repos[REPO].tags) == ["v1.0.0"]
