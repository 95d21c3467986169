"""End to end on CPU: tiny models trained on a tiny release, evaluated through the public interface."""

from __future__ import annotations

import hashlib
import json
import random
import re
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from entity_unlearn.cli import main
from entity_unlearn.eval import CausalLM, DataError, EvalConfig, Formatter, ModelLoadError, evaluate, load_items, open_release, plan, read_result
from entity_unlearn.pipeline.tiny import TinyConfig, build_model, save, train_tokenizer


def value(result, metric, set_="forget", depth="d1", attack="none"):
    (a,) = [a for a in result["aggregates"] if (a["metric"], a["set"], a["depth"], a["attack"]) == (metric, set_, depth, attack)]
    return a["value"]


def test_injected_model_knows_the_forget_entities_and_the_reference_does_not(results):
    t, r = results["target"], results["ref"]
    assert value(t, "prob") > 0.6 and value(r, "prob") < value(t, "prob") - 0.3
    assert value(t, "rouge_l_recall") > 0.6 > value(r, "rouge_l_recall")
    assert value(t, "mc_accuracy") > value(r, "mc_accuracy")
    assert value(t, "prob", depth="d1") > value(t, "prob", depth="d3")  # trained wording is known best


def test_forget_quality_separates_the_injected_model_from_a_second_reference(results):
    target, ref2 = results["target"], results["ref2"]
    assert value(target, "forget_quality", depth="all") < 0.05 < 0.5 < value(ref2, "forget_quality", depth="all")
    assert value(target, "forget_quality") < value(ref2, "forget_quality") / 10  # d1, TOFU's set
    assert value(target, "surviving_entity_share", depth="all", attack="all") == 1.0
    assert value(target, "surviving_entity_share", depth="d1", attack="all") == 1.0


def test_result_is_self_describing(results, release):
    res = read_result(results["dir"] / "target", "result")
    spec = res["spec"]
    assert spec["dataset"]["version"] == "1.0.0" and len(spec["dataset"]["manifest_sha256"]) == 64
    assert spec["model"]["files_sha256"]["model.safetensors"] and spec["prompt_format"]["kind"] == "chat"
    assert spec["passes"]["score"]["computed"] == spec["plan"]["continuations_unique"] < spec["plan"]["continuations_requested"]
    for a in res["aggregates"]:
        assert set(a) == {"metric", "set", "depth", "attack", "value", "stderr", "n", "higher_is_better", "robustness_attack"}
        assert a["robustness_attack"] == "none"  # no robustness attack: the probes' own prompt attacks stay under "attack"
        assert a["stderr"] is None or (a["value"] is not None and a["stderr"] >= 0)
    assert spec["bootstrap"]["replicates"] == 200 and spec["bootstrap"]["seed"] == 0
    assert spec["run"]["date"].startswith("20") and spec["run"]["command"] and spec["run"]["project"]["commit"]
    assert spec["inputs"]["reference"]["path"] == str((results["dir"] / "ref" / "results.json").resolve())
    assert spec["inputs"]["reference"]["sha256"] == hashlib.sha256((results["dir"] / "ref" / "results.json").read_bytes()).hexdigest()
    assert spec["inputs"]["before"] is None and spec["model"]["commit"] is None  # a local folder has no Hub commit
    assert set(spec["metrics"]) == {a["metric"] for a in res["aggregates"]}  # every metric written is registered, with its card
    assert all(r["question"] and r["item_id"].endswith(r["item_id"].split(":", 1)[1]) for r in res["rows"])  # rows join by question or probe id
    sets = {a["set"] for a in res["aggregates"]}
    assert {"forget", "retain", "neighbor", "holdout", "world", "real_authors"} <= sets
    assert {a["depth"] for a in res["aggregates"] if a["set"] == "forget"} == {"all", "d0", "d1", "d2", "d3", "d4"}
    attacks = {a["attack"] for a in res["aggregates"] if a["set"] == "forget"}
    assert {"none", "all"} < attacks and attacks - {"none", "all"} <= {
        "prefix_injection",
        "role_play",
        "in_context_hint",
        "multiple_choice",
        "alias",
        "misspelt_name",
    }
    assert {"model_utility", "model_utility_entity", "mia_auc_loss", "mia_auc_min_k_plus_plus", "privleak_min_k", "forget_quality"} <= {
        a["metric"] for a in res["aggregates"]
    }
    report = (results["dir"] / "target" / "report.md").read_text()
    assert "| forget |" in report and "depth_profile.png" in report
    assert (results["dir"] / "target" / "depth_profile.png").stat().st_size > 5000
    assert (results["dir"] / "target" / "entity_heatmap.png").stat().st_size > 3000


def test_privleak_is_the_formula_applied_to_the_reported_aucs(results):
    for attack in ("loss", "zlib", "min_k", "min_k_plus_plus"):
        auc, ref_auc = value(results["target"], f"mia_auc_{attack}"), value(results["ref"], f"mia_auc_{attack}")
        assert value(results["target"], f"privleak_{attack}") == pytest.approx((ref_auc - auc) / (1 - ref_auc) * 100)
    assert value(results["target"], "mia_auc_loss") > 0.9 and value(results["target"], "privleak_loss") < -50  # it kept the forget set


def test_compat_openunlearning_takes_their_decoding_and_writes_their_names(results, release, models, tmp_path):
    out = tmp_path / "ou"
    shutil.copytree(results["dir"] / "target" / "cache", out / "cache")
    cfg = EvalConfig(models["target"], release, "forget05", str(out), reference=str(results["dir"] / "ref"), compat="openunlearning", progress=False)
    res = evaluate(cfg)
    assert res["spec"]["decoding"]["max_new_tokens"] == 200 and res["spec"]["decoding"]["cut_at_newline"] is False
    assert res["spec"]["passes"]["score"]["computed"] == 0  # the scores are the default run's
    assert res["spec"]["passes"]["generate"]["computed"] == res["spec"]["plan"]["contexts"]  # other decoding: generated again
    summary = json.loads((out / "openunlearning.json").read_text())
    assert summary["privleak"] == value(res, "privleak_min_k") and summary["forget_Q_A_Prob"] == value(res, "prob")
    assert summary["model_utility"] == value(res, "model_utility", "retain+real_authors+world")
    assert summary["ra_Q_A_Prob_normalised"] == value(res, "prob", "real_authors")
    assert {"forget_quality", "forget_truth_ratio", "forget_Q_A_ROUGE", "wf_Truth_Ratio", "mia_min_k"} <= set(summary)
    with pytest.raises(DataError, match="--compat lm-eval: not a preset; choose one of \\['openunlearning'\\]"):
        evaluate(replace(cfg, compat="lm-eval"))


def test_rerun_resumes_from_the_cache(results, release, models):
    again = evaluate(
        EvalConfig(models["target"], release, "forget05", str(results["dir"] / "target"), reference=str(results["dir"] / "ref"), progress=False)
    )
    assert again["spec"]["passes"]["score"]["computed"] == 0 and again["spec"]["passes"]["generate"]["computed"] == 0
    assert again["aggregates"] == results["target"]["aggregates"]


def test_interrupted_run_recomputes_only_what_is_missing(results, release, models, tmp_path):
    out = tmp_path / "partial"
    shutil.copytree(results["dir"] / "target" / "cache", out / "cache")
    lines = (out / "cache" / "score.jsonl").read_text().splitlines()
    keep = len(lines) // 2
    (out / "cache" / "score.jsonl").write_text("\n".join(lines[:keep]) + "\n" + lines[keep][:20])  # a crash mid-line
    res = evaluate(EvalConfig(models["target"], release, "forget05", str(out), reference=str(results["dir"] / "ref"), progress=False))
    assert res["spec"]["passes"]["score"]["cached"] == keep
    assert res["spec"]["passes"]["score"]["computed"] == len(lines) - keep
    # batches are composed differently, so floats may differ in the last digits
    same_aggregates(res["aggregates"], results["target"]["aggregates"])


def same_aggregates(a, b, tol=1e-6):
    floats = ("value", "stderr")
    assert [{k: v for k, v in x.items() if k not in floats} for x in a] == [{k: v for k, v in x.items() if k not in floats} for x in b]
    for x, y in zip(a, b):
        for k in floats:
            assert (x[k] is None and y[k] is None) or x[k] == pytest.approx(y[k], rel=tol, abs=tol), (k, x)


@pytest.mark.parametrize("tree", [True, False], ids=["one-row-per-group", "context-cache"])
def test_shared_context_batches_match_one_sequence_at_a_time(release, models, tree):
    """Both scoring paths: each group packed as one row with its continuations' prefix tree (what a Llama-style
    model gets) and the context's cache copied to each continuation (the others)."""
    lm = CausalLM(models["target"])
    assert lm._tree
    lm._tree = tree
    fmt = Formatter(lm.tokenizer)
    items, _ = load_items(open_release(release), "forget05")
    p = plan(random.Random(0).sample(items, 40), fmt)
    groups = [(p.contexts[k], list(c.values())) for k, c in p.continuations.items()]
    batched = lm.score(groups, batch_groups=7)
    for (ctx, conts), scores in zip(groups, batched):
        for cont, s in zip(conts, scores):
            one = lm.score_one(ctx, cont)
            # float32 sums in other orders: up to 5e-6 relative in log p and 1.1e-5 in z (which divides by σ) here
            assert max(abs(a - b) / max(1.0, abs(b)) for a, b in zip(s.logp, one.logp)) < 1e-5
            assert max(abs(a - b) / max(1.0, abs(b)) for a, b in zip(s.minkpp, one.minkpp)) < 2e-5


def drop_custom_mask(lm) -> None:
    """Make ``lm``'s body drop a 4D attention mask, as an attention implementation that ignores one (flash) would."""

    def hook(module, args, kwargs):
        mask = kwargs.get("attention_mask")
        return args, {**kwargs, "attention_mask": None} if mask is not None and mask.dim() == 4 else kwargs

    lm._body.register_forward_pre_hook(hook, with_kwargs=True)


def test_a_model_that_ignores_a_custom_attention_mask_is_scored_one_continuation_per_row(release, models):
    """Attention that drops a 4D mask (as flash attention does) would let a prefix-tree slot see its siblings: the
    load-time check finds the packed scores wrong, and scoring takes the context-cache path, which is right."""
    lm = CausalLM(models["target"])
    drop_custom_mask(lm)
    lm._tree = lm._tree_agrees()
    assert not lm._tree
    items, _ = load_items(open_release(release), "forget05")
    p = plan(random.Random(3).sample(items, 10), Formatter(lm.tokenizer))
    groups = [(p.contexts[k], list(c.values())) for k, c in p.continuations.items()]
    for (ctx, conts), scores in zip(groups, lm.score(groups)):
        for cont, s in zip(conts, scores):
            assert max(abs(a - b) for a, b in zip(s.logp, lm.score_one(ctx, cont).logp)) < 1e-5


def test_a_question_longer_than_a_sliding_window_keeps_the_cache_path(release, models):
    """A packed row's mask lets every slot see the whole context, a sliding-window model's own mask does not: a group
    whose context and longest answer reach past the window is scored through the context cache."""
    lm = CausalLM(models["target"])
    items, _ = load_items(open_release(release), "forget05")
    p = plan(random.Random(4).sample(items, 20), Formatter(lm.tokenizer))
    groups = [(p.contexts[k], list(c.values())) for k, c in p.continuations.items()]
    reach = sorted(len(c) + max(map(len, cs)) for c, cs in groups)
    lm.model.config.sliding_window = reach[len(reach) // 2]  # Llama has none: it scores as before, routed by this
    assert lm._window() == reach[len(reach) // 2]
    scores = lm.score(groups)
    longer = [g for g in groups if len(g[0]) + max(map(len, g[1])) > lm._window()]
    assert 0 < len(longer) < len(groups)
    # a packed group is one forwarded row; a cached one is its context's row and one per answer
    assert lm.counters["forward_rows"] == len(groups) + sum(len(cs) for _, cs in longer)
    for (ctx, conts), row in zip(groups, scores):
        for cont, s in zip(conts, row):
            assert max(abs(a - b) / max(1.0, abs(b)) for a, b in zip(s.logp, lm.score_one(ctx, cont).logp)) < 1e-5


def test_a_16_bit_model_is_scored_in_packed_rows_and_one_that_ignores_the_mask_is_not(models):
    """The load-time check allows 16-bit rounding (a bfloat16 model on a GPU is the common case) and still finds a
    mask that is ignored: a continuation's scores change with a sibling it must not see."""
    lm = CausalLM(models["target"], dtype="bfloat16")
    assert lm._tree
    drop_custom_mask(lm)
    assert not lm._tree_agrees()


def test_projecting_only_the_scored_positions_gives_the_full_logits_scores(release, models):
    """Scoring projects only the positions it reads onto the vocabulary where the model's logits are its output
    embedding of the last hidden states (checked at load); a model that changes its logits after the head (here
    doubled by a hook, as a soft-capped or scaled model would) is scored from its whole logits."""
    lm = CausalLM(models["target"])
    assert lm._split_head
    fmt = Formatter(lm.tokenizer)
    items, _ = load_items(open_release(release), "forget05")
    p = plan(random.Random(1).sample(items, 30), fmt)
    groups = [(p.contexts[k], list(c.values())) for k, c in p.continuations.items()]
    split = lm.score(groups, batch_groups=5)
    lm._split_head = False
    whole = lm.score(groups, batch_groups=5)
    pairs = [(a, b) for sa, sb in zip(split, whole) for x, y in zip(sa, sb) for a, b in zip(x.logp + x.minkpp, y.logp + y.minkpp)]
    assert len(pairs) > 1000 and max(abs(a - b) / max(1.0, abs(b)) for a, b in pairs) < 1e-5
    lm.model.register_forward_hook(lambda module, args, out: out.__setitem__("logits", out.logits * 2) or out)
    assert not lm._head_is_last()


def test_preallocated_and_growing_kv_caches_decode_the_same_tokens(release, models):
    """This transformers lets the KV cache be allocated once and written in place, so the generation tests run that
    path; the cache grown by concatenation (other versions) must decode the same tokens, dropping rows alike."""
    from entity_unlearn.eval.decode import greedy_batch, preallocated_cache

    lm = CausalLM(models["target"])
    fmt = Formatter(lm.tokenizer)
    assert preallocated_cache(lm.model, 64) is not None
    items, _ = load_items(open_release(release), "forget05")
    contexts = list(plan(random.Random(2).sample(items, 40), fmt).contexts.values())
    runs = {}
    for preallocate in (True, False):
        counters: dict = {}
        tokens = greedy_batch(lm.model, lm.tokenizer, contexts, fmt.stop_ids(), 40, lm._cache_arg, lm.device, counters, preallocate=preallocate)
        runs[preallocate] = (tokens, counters["decode_rows"])
    assert runs[True] == runs[False]
    assert sum(map(len, runs[True][0])) > 100 and runs[True][1] < len(contexts) * 39  # rows left the batch


def test_scored_span_ends_at_the_end_of_turn_token(models):
    lm = CausalLM(models["target"])
    fmt = Formatter(lm.tokenizer)
    # the tiny chat template writes "\n" after <|eot|>; the continuation must stop at the token
    assert fmt.continuation("Who?", "Ilse.") == "Ilse.<|eot|>"
    assert lm.tokenizer.convert_ids_to_tokens(list(fmt.encode("Who?", "Ilse.").continuation))[-1] == "<|eot|>"
    plain = Formatter(lm.tokenizer, "none")
    assert plain.context("Who?").endswith("Answer:") and plain.continuation("Who?", "Ilse.") == " Ilse.<|eot|>"


def test_bad_inputs_get_one_clear_error(results, release, models, tmp_path, monkeypatch):
    with pytest.raises(DataError, match=r"--forget forget07: not a forget set of this release; choose one of \['forget01', 'forget05', 'forget10'\]"):
        evaluate(EvalConfig(models["target"], release, "forget07", str(tmp_path / "x"), progress=False))
    with pytest.raises(DataError, match="the release has no config 'retain_perturbd'"):
        open_release(release).load("retain_perturbd")
    other = tmp_path / "entity-unlearn-1.0.1"
    assert main(["build", "--entities", "20", "--seed", "0", "--version", "1.0.1", "--out", str(other), "--quiet"]) == 0
    with pytest.raises(DataError, match="version 1.0.0 .* not on .* version 1.0.1"):
        evaluate(EvalConfig(models["target"], str(other), "forget05", str(tmp_path / "y"), reference=str(results["dir"] / "ref"), progress=False))
    tok = train_tokenizer(["a few words to learn from"] * 10, 300)
    pickled = save(build_model(tok, TinyConfig(hidden_size=16, intermediate_size=32)), tok, tmp_path / "pickled")
    import torch

    model = build_model(tok, TinyConfig(hidden_size=16, intermediate_size=32))
    for f in pickled.glob("*.safetensors"):
        f.unlink()
    torch.save(model.state_dict(), pickled / "pytorch_model.bin")  # an old-style pickle checkpoint
    with pytest.raises(ModelLoadError, match="only pickle weights .* pass --allow-pickle"):
        CausalLM(str(pickled))
    assert CausalLM(str(pickled), allow_pickle=True).model is not None
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelLoadError, match="no config.json"):
        CausalLM(str(tmp_path / "empty"))
    release_obj = open_release(release)
    real_load = type(release_obj).load
    monkeypatch.setattr(
        type(release_obj),
        "load",
        lambda self, c, columns=None, keep=None: (
            [{**r, "splits": []} for r in real_load(self, c, columns)] if c == "entities" else real_load(self, c, columns, keep)
        ),
    )
    with pytest.raises(DataError, match="forget set is empty"):
        load_items(release_obj, "forget05")


def test_a_config_is_read_filtered_alike_from_a_folder_and_through_datasets(release):
    """``Release.load(keep=...)``: the rows whose values are among those kept, in the file's order, with the columns
    asked for; the same rows when the config is read by ``datasets`` (a Hub release) as when pyarrow reads the file."""
    local = open_release(release)
    every = local.load("probes", ("probe_id", "entity_id"))
    kept = {every[0]["entity_id"], every[-1]["entity_id"]}
    rows = local.load("probes", ("probe_id", "entity_id", "nothing"), keep={"entity_id": kept})
    assert rows == [r for r in every if r["entity_id"] in kept] and 0 < len(rows) < len(every)
    manifest = json.loads(json.dumps(local.manifest))
    manifest["configs"]["probes"]["path"] = "not-here.parquet"  # no file to read: the datasets branch
    through_datasets = replace(local, manifest=manifest)
    assert through_datasets.load("probes", ("probe_id", "entity_id"), keep={"entity_id": kept}) == rows
    assert local.load("probes", ("probe_id",), keep={"entity_id": set()}) == []


def with_template(model: str, folder, template: str | None, drop=()) -> str:
    """A copy of ``model`` whose chat template is ``template`` (None: none), also dropped from tokenizer_config.json
    (transformers 4.x saves it inline), with the config keys ``drop`` removed."""
    shutil.copytree(model, folder)
    config = json.loads((folder / "tokenizer_config.json").read_text())
    for key in ("chat_template", *drop):
        config.pop(key, None)
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    if template is None:
        (folder / "chat_template.jinja").unlink()
    else:
        (folder / "chat_template.jinja").write_text(template)
    return str(folder)


def test_tokenizer_without_pad_token_or_chat_template_gets_documented_defaults(release, models, tmp_path):
    bare = with_template(models["target"], tmp_path / "bare", None, drop=("pad_token",))
    lm = CausalLM(bare)
    assert lm.tokenizer.pad_token == lm.tokenizer.eos_token and lm.pad_note.startswith("no pad token")
    assert Formatter(lm.tokenizer).kind == "plain"
    res = evaluate(EvalConfig(bare, release, "forget05", str(tmp_path / "out"), progress=False))
    assert res["spec"]["prompt_format"]["kind"] == "plain" and res["spec"]["model"]["padding"].startswith("no pad token")
    assert value(res, "prob", "retain") is not None


def test_cli_eval_prints_a_summary(release, models, results, capsys, tmp_path):
    code = main(
        [
            "eval",
            "--model",
            models["target"],
            "--data",
            release,
            "--forget",
            "forget05",
            "--out",
            str(results["dir"] / "target"),
            "--reference",
            str(results["dir"] / "ref" / "results.json"),
            "--before",
            str(results["dir"] / "target"),
            "--quiet",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0 and "forget" in out and "model_utility" in out and "report.md" in out
    again = read_result(results["dir"] / "target", "result")
    assert value(again, "efficacy_prob", depth="d1") == pytest.approx(0.0, abs=1e-6)  # the same model before and after
    assert value(again, "efficacy_prob", depth="d3") == pytest.approx(0.0, abs=1e-6)
    assert main(["eval", "--model", str(tmp_path / "nope"), "--data", release, "--out", str(tmp_path / "o")]) == 2
    assert "no such folder" in capsys.readouterr().err


def test_a_memo_shared_across_evaluations_reuses_items_and_plan_and_changes_no_number(release, models, results, tmp_path):
    bare = with_template(models["target"], tmp_path / "bare-model", None)  # the same tokenizer, no chat template: another plan
    plain = evaluate(EvalConfig(bare, release, "forget05", str(tmp_path / "plain"), progress=False))
    memo: dict = {}
    shared = {
        name: evaluate(EvalConfig(path, release, "forget05", str(tmp_path / name), progress=False), memo)
        for name, path in (("ref", models["ref"]), ("ref2", models["ref2"]), ("bare", bare))
    }
    assert sum(k[0] == "items" for k in memo) == 1 and sum(k[0] == "plan" for k in memo) == 2
    for name, alone in (("ref", results["ref"]), ("bare", plain)):
        assert shared[name]["rows"] == alone["rows"] and shared[name]["spec"]["selection"] == alone["spec"]["selection"]
    assert shared["bare"]["spec"]["prompt_format"]["kind"] == "plain"
    assert shared["ref"]["aggregates"] == results["ref"]["aggregates"]


def test_a_long_lived_memo_keeps_one_release_and_the_most_recently_used_plans(release, models, tmp_path, monkeypatch):
    """A scorer's memo meets a new tokenizer or template per submission: it keeps ``MEMO_PLANS`` plans, the least
    recently used leaving first, and a plan planned again scores as before."""
    from transformers import AutoTokenizer

    from entity_unlearn.eval import run

    monkeypatch.setattr(run, "MEMO_PLANS", 2)
    chat = (Path(models["ref"]) / "chat_template.jinja").read_text()
    formats = {
        "chat": models["ref"],
        "bare": with_template(models["ref"], tmp_path / "bare-model", None),
        "other": with_template(models["ref"], tmp_path / "other-model", "{{- '' }}" + chat),  # the same template written otherwise
    }
    fingerprint = {name: Formatter(AutoTokenizer.from_pretrained(path)).fingerprint() for name, path in formats.items()}
    assert len(set(fingerprint.values())) == 3
    memo: dict = {}
    runs = []
    for n, name in enumerate(("chat", "bare", "chat", "other", "bare")):
        cfg = EvalConfig(formats[name], release, "forget05", str(tmp_path / f"run{n}"), sets=("forget", "retain"), depths=("d1",), progress=False)
        runs.append(evaluate(cfg, memo)["rows"])
        plans = [k[2] for k in memo if k[0] == "plan"]
        if n == 3:  # chat was used after bare: bare left when other came
            assert plans == [fingerprint["chat"], fingerprint["other"]]
    assert plans == [fingerprint["other"], fingerprint["bare"]] and sum(k[0] == "items" for k in memo) == 1
    assert runs[0] == runs[2] == runs[3]  # from the memo, and from a template that renders the same prompts
    assert runs[1] == runs[4] and runs[1] != runs[0]  # bare planned again after it left: as the first time


def test_several_models_in_one_eval_command_each_get_the_result_of_their_own(release, models, results, capsys, tmp_path):
    """``eval --model A --model B``: each into --out/NAME, equal to its evaluation alone, and a line of numbers each."""
    reference = str(results["dir"] / "ref" / "results.json")
    argv = ["eval", "--model", models["target"], models["ref2"], "--data", release, "--reference", reference, "--quiet"]  # or --model twice
    assert main([*argv, "--out", str(tmp_path / "sweep")]) == 0
    table = capsys.readouterr().out.splitlines()
    header = re.split(r"\s{2,}", table[0])
    assert header[:5] == ["model", "forget prob", "forget rouge_l_recall", "retain prob", "retain rouge_l_recall"]
    report = (tmp_path / "sweep" / "sweep.md").read_text()
    for name in ("target", "ref2"):
        folder = tmp_path / "sweep" / Path(models[name]).name
        swept = read_result(folder, name)
        assert swept["rows"] == results[name]["rows"] and swept["aggregates"] == results[name]["aggregates"]
        (line,) = [t for t in table if t.split()[0] == folder.name]
        shown = [f"{value(swept, m, s_):.3f}" for s_ in ("forget", "retain") for m in ("prob", "rouge_l_recall")]
        assert line.split()[1:5] == shown
        assert line.split()[header.index("forget_quality")] == f"{value(swept, 'forget_quality'):.3f}"
        assert f"| [{folder.name}]({folder.name}/report.md) | {' | '.join(shown)} |" in report and f"`{swept['spec']['model']['path']}`" in report
    assert (tmp_path / "sweep" / "sweep.png").read_bytes().startswith(b"\x89PNG") and "](sweep.png)" in report
    assert main([*argv, "--out", str(tmp_path / "sweep")]) == 0  # a rerun into the sweep's folder: its own output
    # refused before anything is evaluated: two models that would share a folder, a missing one, a served backend,
    # an --out holding other files
    (tmp_path / "theirs").mkdir()
    (tmp_path / "theirs" / "notes.txt").write_text("mine")
    for extra, out, message in (
        (["--model", models["target"] + "/"], "refused", "would both be written to"),
        (["--model", str(tmp_path / "nope")], "refused", "no such folder"),
        (["--backend", "openai", "--base-url", "http://127.0.0.1:9/v1"], "refused", "takes one --model"),
        ([], "theirs", "not a previous output of `entity-unlearn eval`"),
    ):
        assert main([*argv, *extra, "--out", str(tmp_path / out)]) == 2
        assert message in capsys.readouterr().err and not (tmp_path / "refused").exists()
    assert [p.name for p in (tmp_path / "theirs").iterdir()] == ["notes.txt"]


def test_lean_generation_gives_the_answers_of_plain_generate(release, models, tmp_path):
    """Rows stopped while decoding (end-of-turn token, first line), dropped from the batch, duplicates decoded once:
    the same greedy answers as model.generate run to the end and cut afterwards, on the trained model and on an
    untrained one that never ends its turn; the trained model's rows stop early."""
    from entity_unlearn.eval.decode import answer_text, settled

    items, _ = load_items(open_release(release), "forget05")
    raw = save(
        build_model(CausalLM(models["target"]).tokenizer, TinyConfig(vocab_size=1000, hidden_size=64, intermediate_size=192)),
        CausalLM(models["target"]).tokenizer,
        tmp_path / "untrained",
    )
    for path, max_new in ((models["target"], 96), (str(raw), 12)):  # 96: longer than a d1 answer sentence
        lm = CausalLM(path)
        fmt = Formatter(lm.tokenizer)
        contexts = list(plan(random.Random(0).sample(items, 60), fmt).contexts.values())
        contexts += contexts[:4]  # duplicates are decoded once, answered for each
        lean = lm.generate(contexts, fmt.stop_ids(), max_new_tokens=max_new, batch_size=16)
        assert lean == lm.generate_reference(contexts, fmt.stop_ids(), max_new_tokens=max_new, batch_size=16)
        if path == models["target"]:
            assert sum(a != "" for a in lean) > len(lean) / 2
            assert lm.counters["decode_rows"] < 0.5 * (len(contexts) - 4) * max_new  # finished rows left their batches
    tok = lm.tokenizer
    ids = tok("Kessmar\nWho else", add_special_tokens=False)["input_ids"]
    assert settled(tok, ids) and answer_text(tok, ids) == "Kessmar"
    assert not settled(tok, tok("\n Kess", add_special_tokens=False)["input_ids"])  # a leading newline does not end an answer


def test_depths_and_attacks_restrict_the_items_and_move_no_number(results, release, models, tmp_path):
    out = tmp_path / "d1"
    shutil.copytree(results["dir"] / "target" / "cache", out / "cache")  # scores and answers of the full run
    cfg = EvalConfig(
        models["target"], release, "forget05", str(out), sets=("forget", "retain", "holdout"), depths=("d1",), attacks=("none",), progress=False
    )
    res = evaluate(cfg)
    assert {(r["set"], r["depth"], r["attack"]) for r in res["rows"]} == {(s, "d1", "none") for s in ("forget", "retain", "holdout")}
    assert res["spec"]["passes"]["score"]["computed"] == 0 and (res["spec"]["depths"], res["spec"]["attacks"]) == (["d1"], ["none"])
    full = {(a["metric"], a["set"], a["depth"], a["attack"]): a["value"] for a in results["target"]["aggregates"]}
    mine = {(a["metric"], a["set"], a["depth"], a["attack"]): a["value"] for a in res["aggregates"]}
    same = [k for k in mine if k in full and k[2:] == ("d1", "none")]  # the "all" rows hold other depths in the full run
    assert len(same) >= 10 and [(k, mine[k], full[k]) for k in same if mine[k] != full[k]] == []
    with pytest.raises(DataError, match="--sets world, --depths d3: no probe of .* is left to evaluate; widen the selection"):
        evaluate(replace(cfg, out=str(tmp_path / "none"), sets=("world",), depths=("d3",), attacks=None))


def test_the_plan_cache_name_does_not_depend_on_string_hashing(models):
    """The formatter's fingerprint names the plan on disk: another process (another hash seed) must find it."""
    import os
    import subprocess
    import sys

    from transformers import AutoTokenizer

    code = "import sys; from transformers import AutoTokenizer; from entity_unlearn.eval import Formatter; "
    code += "print(Formatter(AutoTokenizer.from_pretrained(sys.argv[1])).fingerprint())"
    mine = Formatter(AutoTokenizer.from_pretrained(models["target"])).fingerprint()
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        run = subprocess.run([sys.executable, "-c", code, models["target"]], env=env, capture_output=True, text=True, check=True)
        assert run.stdout.strip() == mine
