"""Planted secrets (a URL password, an LLM API key, an HF token) reach no output file and no output stream.

The whole path a user with credentials takes: generate with an LLM behind a URL with user:password@, build a release
from that world, publish it with a token; and the failures on the way (endpoint down, key refused, Hub unreachable).
Every file under the test folder and everything printed is searched for each secret.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from hub_server import HubServer
from openai_server import ScriptedServer

from entity_unlearn.cli import main

PASSWORD = "pw-Zq81xK7"
API_KEY = "sk-planted-4f9a1c"
HF_TOKEN = "hf_planted_8d2e7b"
SECRETS = (PASSWORD, API_KEY, HF_TOKEN, "alice:", "bob:")
WORLD = ["generate", "--types", "person=6,organisation=2,place=3", "--llm", "test-model", "--quiet"]


@contextlib.contextmanager
def refused_port():
    """A port on which connections are refused for as long as the block runs: bound here, never listened on, so no
    other test's server (another pytest worker's) can take it meanwhile and answer requests meant to fail."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield s.getsockname()[1]


def with_credentials(url: str, user: str = "alice") -> str:
    return url.replace("http://", f"http://{user}:{PASSWORD}@")


def cli(env: dict[str, str], *argv: str) -> subprocess.CompletedProcess:
    code = "import sys; from entity_unlearn.cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run([sys.executable, "-c", code, *argv], env=env, capture_output=True, text=True, timeout=300)


def hub_env(endpoint: str, tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING"))}
    hub = {"HF_ENDPOINT": endpoint, "HF_TOKEN": HF_TOKEN, "HF_HOME": str(tmp_path / "hf_home_sub"), "HF_HUB_OFFLINE": "0"}
    return {**env, **hub, "HF_HUB_DISABLE_XET": "1", "HF_HUB_DISABLE_TELEMETRY": "1"}  # the test Hub speaks LFS, not Xet


@pytest.fixture()
def server():
    s = ScriptedServer().start()
    yield s
    s.stop()


def test_planted_secrets_reach_no_file_and_no_stream(server, tmp_path, monkeypatch, capfd):
    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
    monkeypatch.setenv("HF_TOKEN", HF_TOKEN)

    async def no_wait(seconds):
        return None

    monkeypatch.setattr("entity_unlearn.builders.llm.backend.asyncio.sleep", no_wait)  # the endpoint-down case retries
    world, release = tmp_path / "world", tmp_path / "release"
    assert main([*WORLD, "--llm-base-url", with_credentials(server.url), "--out", str(world)]) == 0
    assert server.requests and all(r["body"]["model"] == "test-model" for r in server.requests)
    assert main(["build", "--world", str(world), "--version", "1.0.0", "--out", str(release), "--quiet"]) == 0
    with refused_port() as port:
        assert main([*WORLD, "--llm-base-url", with_credentials(f"http://127.0.0.1:{port}/v1"), "--out", str(tmp_path / "down")]) == 2
    keyed = ScriptedServer(api_key="the-right-key").start()
    try:
        assert main([*WORLD, "--llm-base-url", with_credentials(keyed.url), "--out", str(tmp_path / "refused")]) == 2
    finally:
        keyed.stop()
    streams = capfd.readouterr()
    printed = streams.out + streams.err
    assert "127.0.0.1" in printed and "refused the API key" in printed and "no answer after" in printed
    with refused_port() as port:
        unreachable = cli(hub_env(with_credentials(f"http://127.0.0.1:{port}", "bob"), tmp_path), "publish", str(release), "--repo", "lab/x")
    assert unreachable.returncode == 1 and "network error" in unreachable.stderr and "Traceback" not in unreachable.stderr
    assert len(unreachable.stderr.strip().splitlines()) == 1, unreachable.stderr
    with HubServer(token=HF_TOKEN) as hub:
        published = cli(hub_env(hub.url, tmp_path), "publish", str(release), "--repo", "lab/entity-unlearn")
        assert published.returncode == 0, published.stderr
        uploaded = b"".join(data for files in hub.repos["lab/entity-unlearn"].commits.values() for data in files.values())
    printed += unreachable.stdout + unreachable.stderr + published.stdout + published.stderr
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.name == "manifest.json" for p in files) and any(".llm-cache" in p.parts for p in files)
    for secret in SECRETS:
        assert secret not in printed, secret
        assert secret.encode() not in uploaded, secret
        for path in files:
            assert secret.encode() not in path.read_bytes(), (secret, path)
