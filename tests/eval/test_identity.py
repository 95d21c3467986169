"""A model's recorded identity: ORG/NAME@REVISION, the resolved Hub commit, the files' SHA-256 (hashed once, cached)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hub_server import HubServer

from entity_unlearn.eval import identity
from entity_unlearn.eval.identity import ModelIdentityError, files_sha256, resolve_model, split_model_arg

REPO = "lab/tiny-target"


def test_model_argument_splits_at_the_revision_unless_it_is_a_folder(tmp_path):
    assert split_model_arg("org/name@v1.0") == ("org/name", "v1.0")
    assert split_model_arg("org/name") == ("org/name", None)
    odd = tmp_path / "a@b"
    odd.mkdir()
    assert split_model_arg(str(odd)) == (str(odd), None)
    with pytest.raises(ModelIdentityError, match="a local folder has no revisions"):
        resolve_model(str(tmp_path / "a@b"), revision="main")
    with pytest.raises(ModelIdentityError, match="names revision 'v1' but --revision is 'v2'"):
        resolve_model("org/name@v1", revision="v2")
    with pytest.raises(ModelIdentityError, match="--model nope: no such folder"):
        resolve_model("nope")


def test_file_hashes_are_computed_once_and_cached_by_size_and_mtime(tmp_path, monkeypatch):
    f = tmp_path / "model.safetensors"
    f.write_bytes(b"weights v1")
    assert files_sha256([f])[0] == hashlib.sha256(b"weights v1").hexdigest()
    cache = json.loads((identity.cache_dir() / "file-sha256.json").read_text())
    assert cache[str(f.resolve())]["size"] == len(b"weights v1")
    # a new process (empty memo) reads the digest back instead of hashing: a planted digest proves it
    cache[str(f.resolve())]["sha256"] = "planted"
    (identity.cache_dir() / "file-sha256.json").write_text(json.dumps(cache))
    monkeypatch.setattr(identity, "_MEMO", {})
    assert files_sha256([f])[0] == "planted"
    f.write_bytes(b"weights v2, longer")  # size and mtime change: hashed again
    assert files_sha256([f])[0] == hashlib.sha256(b"weights v2, longer").hexdigest()
    local = resolve_model(str(tmp_path))
    assert local.commit is None and local.files_sha256 == {"model.safetensors": hashlib.sha256(b"weights v2, longer").hexdigest()}


def test_the_hash_cache_is_written_once_per_model_and_forgets_files_that_are_gone(tmp_path, monkeypatch):
    """A scorer or a sweep meets a new folder per model: one read and one write of the cache each, not one per file, and
    the cache keeps no entry for a file deleted since (it would otherwise grow with every copy ever evaluated)."""
    gone = tmp_path / "copy" / "model.safetensors"
    gone.parent.mkdir()
    gone.write_bytes(b"an evaluated copy")
    files_sha256([gone])
    gone.unlink()
    model = tmp_path / "model"
    model.mkdir()
    for name in ("config.json", "model.safetensors", "tokenizer.json"):
        (model / name).write_text(name)
    writes = []
    monkeypatch.setattr(identity, "write_atomic", lambda path, text: writes.append(path) or Path(path).write_text(text))
    assert resolve_model(str(model)).files_sha256 == {
        n: hashlib.sha256(n.encode()).hexdigest() for n in ("config.json", "model.safetensors", "tokenizer.json")
    }
    cache = json.loads((identity.cache_dir() / "file-sha256.json").read_text())
    assert (
        len(writes) == 1
        and str(gone.resolve()) not in cache
        and {str((model / n).resolve()) for n in ("config.json", "tokenizer.json")} <= set(cache)
    )
    monkeypatch.setattr(identity, "_MEMO", {})
    resolve_model(str(model))  # a new process: read back, nothing written
    assert len(writes) == 1


def _hub_env(hub: HubServer, tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING"))}
    return {
        **env,
        "HF_ENDPOINT": hub.url,
        "HF_HOME": str(tmp_path / "hf_home_sub"),
        "HF_HUB_OFFLINE": "0",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "HF_HUB_DISABLE_PROGRESS_BARS": "1",
        "HF_HUB_DISABLE_XET": "1",
    }


def _cli(env: dict[str, str], *argv: str) -> subprocess.CompletedProcess:
    code = "import sys; from entity_unlearn.cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run([sys.executable, "-c", code, *argv], env=env, capture_output=True, text=True, timeout=600)


def test_a_hub_model_at_a_revision_is_evaluated_with_its_commit_and_hashes_recorded(release, lab_models, tmp_path):
    folder = Path(lab_models("target")["target"])
    files = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}
    with HubServer() as hub:
        v1 = hub.put_files(REPO, files, tag="v1")
        later = hub.put_files(REPO, {**files, "config.json": files["config.json"] + b"\n"})  # main moves on
        env = _hub_env(hub, tmp_path)
        out = tmp_path / "eval"
        done = _cli(env, "eval", "--model", f"{REPO}@v1", "--data", release, "--out", str(out), "--quiet")
        assert done.returncode == 0, done.stderr[-3000:] + f"\nunknown requests: {hub.unknown}"
        model = json.loads((out / "results.json").read_text())["spec"]["model"]
        assert model["path"] == REPO and model["revision"] == "v1" and model["commit"] == v1 != later
        assert model["files_sha256"]["model.safetensors"] == hashlib.sha256(files["model.safetensors"]).hexdigest()
        assert json.loads((out / "results.json").read_text())["spec"]["run"]["command"].startswith(f"entity-unlearn eval --model {REPO}@v1")
        # the same id at main is another commit: another fingerprint, so the request cache serves it nothing stale
        probe = "import sys, json; from entity_unlearn.eval.identity import resolve_model; i = resolve_model(sys.argv[1]); print(json.dumps([i.commit, i.files_sha256['config.json']]))"
        head = subprocess.run([sys.executable, "-c", probe, REPO], env=env, capture_output=True, text=True, timeout=120)
        assert head.returncode == 0, head.stderr[-2000:]
        assert json.loads(head.stdout) == [later, hashlib.sha256(files["config.json"] + b"\n").hexdigest()]
    # offline, from the cache alone: the same commit, no server
    offline = subprocess.run(
        [sys.executable, "-c", probe, f"{REPO}@v1"], env={**env, "HF_HUB_OFFLINE": "1"}, capture_output=True, text=True, timeout=120
    )
    assert offline.returncode == 0, offline.stderr[-2000:]
    assert json.loads(offline.stdout)[0] == v1
