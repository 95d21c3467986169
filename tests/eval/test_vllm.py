"""vLLM's offline engine as a backend: the same numbers and answers as the local path (needs vllm and a GPU),
and one clear error where vllm is not installed."""

from __future__ import annotations

import importlib.util
import random

import pytest

from entity_unlearn.cli import main
from entity_unlearn.eval import CausalLM, Formatter, RequestCache, load_items, open_release, plan, run_passes
from entity_unlearn.eval.rows import build_rows
from entity_unlearn.pipeline.finetune import TrainConfig
from entity_unlearn.pipeline.inject import inject_tiny
from entity_unlearn.pipeline.tiny import TinyConfig

HAS_VLLM = importlib.util.find_spec("vllm") is not None


@pytest.mark.skipif(HAS_VLLM, reason="vllm is installed here")
def test_backend_vllm_without_vllm_is_one_clear_error(release, tmp_path, capsys):
    assert main(["eval", "--backend", "vllm", "--model", str(tmp_path / "any"), "--data", release, "--out", str(tmp_path / "o")]) == 2
    assert "--backend vllm needs vllm installed" in capsys.readouterr().err


@pytest.mark.skipif(not HAS_VLLM, reason="vllm is not installed (a GPU machine's extra)")
def test_vllm_engine_scores_and_answers_as_the_local_path(release, tmp_path):
    import torch

    if not torch.cuda.is_available():
        pytest.skip("vLLM's engine needs a GPU")
    from entity_unlearn.eval.vllm_engine import VLLMEngineLM

    model = str(inject_tiny(release, tmp_path / "tiny", tiny=TinyConfig(hidden_size=64, intermediate_size=128), train=TrainConfig(epochs=10)))
    items, _ = load_items(open_release(release), "forget05")
    items = random.Random(0).sample(items, 40)
    local_lm = CausalLM(model, device="cuda", dtype="float32")
    fmt = Formatter(local_lm.tokenizer)
    p = plan(items, fmt)
    local, engine = RequestCache(tmp_path / "l", "x"), RequestCache(tmp_path / "v", "x")
    run_passes(p, local_lm, fmt, local, max_new_tokens=16, progress=False)
    run_passes(p, VLLMEngineLM(model, dtype="float32"), fmt, engine, max_new_tokens=16, progress=False)
    for x, y in zip(build_rows(items, p, local), build_rows(items, p, engine)):
        assert x["logp_answer"] == pytest.approx(y["logp_answer"], abs=1e-4)
        assert all(u == pytest.approx(v, abs=1e-4) for u, v in zip(x["logp_perturbed"], y["logp_perturbed"]))
        assert x["generation"] == y["generation"]
