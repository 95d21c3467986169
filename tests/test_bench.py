"""The GPU check script runs its whole path (build, inject, eval, unlearn, eval; with LoRA) on CPU in smoke mode, and its
served mode evaluates through a server it starts (the test suite's tiny-model server standing in for vLLM's)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

import pytest

from entity_unlearn.eval import read_result

SCRIPT = Path(__file__).resolve().parents[1] / "bench" / "gpu_pipeline.py"


def test_gpu_pipeline_script_runs_end_to_end_in_smoke_mode(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    run = subprocess.run(
        [sys.executable, str(SCRIPT), "--smoke", "--lora-rank", "4", "--out", str(tmp_path / "run")],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    summary = json.loads((tmp_path / "run" / "gpu_timings.json").read_text())
    assert list(summary["timings_s"]) == ["build", "random base", "inject", "eval target", "unlearn npo_gd", "eval unlearned", "attack quant4"]
    assert summary["quant4"]["backend"] == "simulate" and 0 <= summary["quant4"]["nf4_codes_changed_by_unlearning"] < 1
    assert summary["device"] == "cpu" and summary["peak_gpu_memory_gib"] is None and summary["entities"] == 10 and summary["lora_rank"] == 4
    result = read_result(tmp_path / "run" / "eval-unlearned", "eval-unlearned", rows=False)
    assert any(a["metric"] == "efficacy_prob" for a in result["aggregates"])  # scored against the model before unlearning
    injection = json.loads((tmp_path / "run" / "target" / "injection.json").read_text())
    assert injection["autocast"] == "bfloat16" and injection["train"]["grad_accum"] == 2 and injection["config"]["lora_rank"] == 4
    assert json.loads((tmp_path / "run" / "unlearned" / "unlearning.json").read_text())["config"]["lora_rank"] == 4


def load_bench(name: str, monkeypatch):
    """A bench/ script as a module (its folder on sys.path, as when it runs)."""
    monkeypatch.syspath_prepend(str(SCRIPT.parent))
    spec = importlib.util.spec_from_file_location(name, SCRIPT.parent / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_served_mode_scores_through_a_server_it_starts_and_stops(tiny_release, tiny_model, tmp_path, monkeypatch, capsys):
    """--served with the test suite's tiny-model server for vLLM's: timings, and per-item values equal to the local path's."""
    gpu_pipeline = load_bench("gpu_pipeline", monkeypatch)
    server = f"{sys.executable} {Path(__file__).parent / 'model_server.py'} --model {{model}} --name {{name}} --port {{port}}"
    argv = ["gpu_pipeline.py", "--smoke", "--served", "--data", str(tiny_release), "--model", str(tiny_model), "--sets", "forget"]
    monkeypatch.setattr(sys, "argv", argv + ["--server-command", server, "--out", str(tmp_path / "run")])
    gpu_pipeline.main()
    printed = capsys.readouterr().out
    summary = json.loads((tmp_path / "run" / "gpu_timings.json").read_text())
    assert summary["mode"] == "served" and list(summary["timings_s"]) == ["eval local", "server start", "eval served"]
    assert summary["max_model_len"] == 512  # the tiny model's context: vLLM refuses a longer one
    assert summary["server_command"][-1] == str(urlparse(printed.split("answering at ")[1].split()[0]).port)
    served, local = summary["passes"]["served"], summary["passes"]["local"]
    assert served["sequences"] == local["sequences"] > 0 and served["sequences_per_s"] > 0 and served["answers"] == local["answers"] > 0
    parity = summary["parity"]
    assert parity["items"] > 0 and parity["max_abs_logp_diff"] < 1e-4 and parity["token_count_mismatches"] == parity["unscored_on_either_side"] == 0
    assert parity["identical_generations"] == parity["items"]
    assert "== server: stopped" in printed
    with pytest.raises(urllib.error.URLError):  # the server is gone
        urllib.request.urlopen(f"http://127.0.0.1:{summary['server_command'][-1]}/v1/models", timeout=5)


def test_served_mode_without_vllm_or_a_server_command_is_one_clear_error(monkeypatch, capsys):
    gpu_pipeline = load_bench("gpu_pipeline", monkeypatch)
    monkeypatch.setattr(gpu_pipeline.importlib.util, "find_spec", lambda name: None)
    monkeypatch.setattr(sys, "argv", ["gpu_pipeline.py", "--served"])
    with pytest.raises(SystemExit):
        gpu_pipeline.parse()
    assert 'vllm is not installed: pip install -e ".[vllm]" on a GPU machine, or give --server-command' in capsys.readouterr().err


def static_server(tmp_path: Path, name: str) -> list[str]:
    """A server answering GET /v1/models with ``name`` (python's file server over a folder holding that answer)."""
    (tmp_path / "www" / "v1").mkdir(parents=True)
    (tmp_path / "www" / "v1" / "models").write_text(json.dumps({"object": "list", "data": [{"id": name}]}))
    return [sys.executable, "-m", "http.server", "{port}", "--bind", "127.0.0.1", "--directory", str(tmp_path / "www")]


def test_the_server_is_stopped_on_ctrl_c_and_a_dead_or_foreign_server_is_one_error(tmp_path, monkeypatch):
    sp = load_bench("server_process", monkeypatch)
    port = sp.free_port()
    command = [part.format(port=port) for part in static_server(tmp_path, "served")]
    url = f"http://127.0.0.1:{port}/v1"
    with pytest.raises(KeyboardInterrupt):
        with sp.ServerProcess(command, url, "served", tmp_path / "a.log", timeout_s=60) as server:
            assert server.models() == ["served"]
            raise KeyboardInterrupt
    assert server.proc.poll() is not None and server.models() is None
    with pytest.raises(sp.ServerError, match="lists \\['served'\\], not 'other': another server holds the port"):
        with sp.ServerProcess(command, url, "other", tmp_path / "b.log", timeout_s=60):
            pass
    dies = [sys.executable, "-c", "print('CUDA out of memory while loading'); raise SystemExit(3)"]
    with pytest.raises(sp.ServerError, match="(?s)exited with code 3 before answering .*/v1/models; the end of .*c.log:\nCUDA out of memory"):
        with sp.ServerProcess(dies, url, "served", tmp_path / "c.log", timeout_s=60):
            pass
    with pytest.raises(sp.ServerError, match="--server-command .*: {gpus} is not a placeholder; use {model}, {port}"):
        sp.fill("serve {model} --tp {gpus}", model="m", port=1)
