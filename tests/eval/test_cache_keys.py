"""The request cache: a result never reuses an answer computed under other settings, and an interrupted run resumes.

Scores depend on the model (weights, dtype) and the prompt format; generations also on every decoding setting.
Each is changed in turn and must cause a recompute, while what it does not touch stays cached.
"""

from __future__ import annotations

import shutil

import pytest

from entity_unlearn.eval import CausalLM, EvalConfig, Formatter, evaluate, load_items, open_release, plan, read_result, run_passes
from entity_unlearn.eval import passes as passes_module
from entity_unlearn.eval.run import cache_namespaces


@pytest.fixture(scope="module")
def items(tiny_release):
    items, _ = load_items(open_release(str(tiny_release)), "forget05")
    return items[:6]


@pytest.fixture(scope="module")
def other_model(tiny_model, tmp_path_factory):
    """The same architecture and tokenizer with other weights."""
    import torch
    from safetensors.torch import load_file, save_file

    folder = tmp_path_factory.mktemp("other") / "model"
    shutil.copytree(tiny_model, folder)
    weights = load_file(folder / "model.safetensors")
    save_file({k: v + 0.01 * torch.ones_like(v) for k, v in weights.items()}, folder / "model.safetensors", metadata={"format": "pt"})
    return folder


def passes(model, items, cache_dir, *, dtype=None, chat_template="auto", max_new_tokens=4):
    from entity_unlearn.eval import RequestCache

    lm = CausalLM(str(model), "cpu", dtype)
    formatter = Formatter(lm.tokenizer, chat_template)
    score_ns, generate_ns = cache_namespaces(lm, formatter, {"greedy": True, "max_new_tokens": max_new_tokens})
    stats = run_passes(plan(items, formatter), lm, formatter, RequestCache(cache_dir, score_ns, generate_ns), max_new_tokens, progress=False)
    return stats["score"].computed, stats["generate"].computed


def test_every_setting_that_changes_an_answer_is_in_its_cache_key(tiny_model, other_model, items, tmp_path):
    cache = tmp_path / "cache"
    first = passes(tiny_model, items, cache)
    assert first[0] > 0 and first[1] > 0
    assert passes(tiny_model, items, cache) == (0, 0)  # nothing changed: all cached
    assert passes(tiny_model, items, cache, max_new_tokens=1) == (0, first[1])  # decoding: generations only
    assert passes(tiny_model, items, cache, chat_template="none")[0] > 0  # prompt format: everything
    assert passes(tiny_model, items, cache, dtype="bfloat16") == first  # dtype: everything
    assert passes(other_model, items, cache) == first  # weights: everything
    assert passes(tiny_model, items, cache) == (0, 0)  # and the first settings still find their answers


def test_an_interrupted_evaluation_resumes_and_max_new_tokens_recomputes_only_the_generations(tiny_model, tiny_release, tmp_path, monkeypatch):
    out = tmp_path / "eval"
    cfg = EvalConfig(str(tiny_model), str(tiny_release), "forget05", str(out), progress=False, max_new_tokens=6)

    def interrupted(self, *args, **kw):
        raise KeyboardInterrupt

    monkeypatch.setattr(CausalLM, "generate", interrupted)
    with pytest.raises(KeyboardInterrupt):
        evaluate(cfg)
    assert (out / "cache" / "score.jsonl").stat().st_size > 0 and not (out / "results.json").exists()
    assert not [p for p in tmp_path.iterdir() if ".partial-" in p.name]
    monkeypatch.undo()
    resumed = evaluate(cfg)["spec"]["passes"]
    assert resumed["score"]["computed"] == 0 and resumed["score"]["cached"] == resumed["score"]["requests"]
    assert resumed["generate"]["computed"] == resumed["generate"]["requests"] > 0
    shorter = evaluate(EvalConfig(**{**cfg.__dict__, "max_new_tokens": 1}))
    spec = shorter["spec"]
    assert spec["passes"]["score"]["computed"] == 0 and spec["passes"]["generate"]["computed"] == spec["passes"]["generate"]["requests"]
    assert spec["decoding"]["max_new_tokens"] == 1
    saved = read_result(out, "saved")
    assert saved["spec"]["decoding"]["max_new_tokens"] == 1


def test_one_progress_bar_per_pass(tiny_model, items, tmp_path, monkeypatch, capsys):
    from entity_unlearn.eval import RequestCache

    monkeypatch.setattr(passes_module, "CHUNK_GROUPS", 2)  # 6 items: 3 chunks per pass
    lm = CausalLM(str(tiny_model), "cpu")
    formatter = Formatter(lm.tokenizer)
    p = plan(items, formatter)
    run_passes(p, lm, formatter, RequestCache(tmp_path, "ns"), 2, progress=True)
    err = capsys.readouterr().err
    assert err.count("score pass:   0%") == 1 and err.count("generate pass:   0%") == 1, err
    assert f"{p.n_score()}/{p.n_score()}" in err and f"{len(p.contexts)}/{len(p.contexts)}" in err
    assert "score:" not in err and "generate:" not in err  # no bar per chunk


def test_no_library_deprecation_message_while_scoring(tiny_model, items, tmp_path):
    import logging

    logging.Logger.warning_once.cache_clear()  # transformers says each deprecation once per process
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = logging.getLogger("transformers")
    logger.addHandler(handler)
    try:
        passes(tiny_model, items, tmp_path / "cache", max_new_tokens=2)
    finally:
        logger.removeHandler(handler)
    assert not [r.getMessage() for r in records if "deprecat" in r.getMessage().lower()]


def test_min_k_plus_plus_is_computed_for_answers_only_and_recomputed_where_a_cached_score_lacks_it(tiny_model, items, tmp_path):
    import json

    from entity_unlearn.eval import RequestCache

    lm = CausalLM(str(tiny_model), "cpu")
    formatter = Formatter(lm.tokenizer)
    p = plan(items, formatter)
    answers = {keys[0] for _, keys in p.item_keys.values()}
    namespaces = cache_namespaces(lm, formatter, {"greedy": True, "max_new_tokens": 1})
    run_passes(p, lm, formatter, RequestCache(tmp_path, *namespaces), 1, progress=False, generate=False)
    cache = RequestCache(tmp_path, *namespaces)
    assert all(len(s.minkpp) == len(s.logp) if k in answers else s.minkpp == () for k, s in cache.score.items())
    (answer,) = [next(iter(sorted(answers)))]
    whole = cache.score[answer]
    lines = [json.loads(line) for line in (tmp_path / "score.jsonl").read_text().splitlines()]
    (tmp_path / "score.jsonl").write_text("".join(json.dumps({**r, "z": []} if r["k"] == answer else r) + "\n" for r in lines))
    stats = run_passes(p, lm, formatter, RequestCache(tmp_path, *namespaces), 1, progress=False, generate=False)
    again = RequestCache(tmp_path, *namespaces).score[answer]
    assert stats["score"].computed == 1 and len(again.minkpp) == len(whole.minkpp)
    assert max(abs(a - b) for a, b in zip(again.minkpp + again.logp, whole.minkpp + whole.logp)) < 1e-4  # alone in its batch: float32 rounding
