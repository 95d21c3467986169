"""The GPU check script runs its whole path (build, inject, eval, unlearn, eval; with LoRA) on CPU in smoke mode."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

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
