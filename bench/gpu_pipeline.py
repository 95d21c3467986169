"""The GPU path in one short run: build -> inject -> one unlearning method -> evaluate, with timings.

    python bench/gpu_pipeline.py --base Qwen/Qwen2.5-0.5B-Instruct        # a Hub id or a local model folder
    python bench/gpu_pipeline.py                                          # no model at hand: a random-init 0.5B Llama
    python bench/gpu_pipeline.py --smoke [--lora-rank 4]                  # CPU, tiny random model, 10 persons: checks the script

Runs the same commands a user runs (``entity-unlearn build / inject / unlearn / eval / attack``) on
one GPU in bf16 autocast with gradient accumulation, and prints the seconds of each
step. The last step is the 4-bit attack through bitsandbytes (``attack --kind quant4 --quant-backend bnb``),
with bitsandbytes' CUDA NF4 codes and scales compared to the package's simulation (``pip install -e ".[quant]"``).
Target: under 8 minutes on one H100 for a 0.5-1B model. Without ``--base`` (a
machine with no Hub access), it builds a 0.5B Llama-shaped model with random weights
and a tokenizer trained on the release: it checks the mechanics and the speed of the
GPU path, not what a pretrained model learns.

Second mode, ``--served``: scoring through a vLLM server that the script starts.

    python bench/gpu_pipeline.py --served [--base ID]                           # build, inject, then evaluate locally and served
    python bench/gpu_pipeline.py --served --model DIR --data RELEASE            # an existing model and release

After build and inject (or on the ``--model`` and ``--data`` given), the model is evaluated here
(``eval``, ``--eval-dtype``), then served by vLLM's OpenAI-compatible server
(``python -m vllm.entrypoints.openai.api_server --model DIR --served-model-name NAME --port PORT
--dtype DTYPE --max-model-len N``, N the model's context length up to 4096, on 127.0.0.1 and a free port unless ``--port``), which the
script waits for (``GET /v1/models``, up to ``--server-timeout``; a server that dies is one error
quoting its log's last lines) and evaluates through (``eval --backend openai --base-url ...``). It
prints the server's start time, the served score and generation passes (sequences/s, answers/s) next
to the local ones, and the per-item comparison: the largest log-prob difference over every scored
answer, token-count mismatches, identical greedy answers. The server is stopped at the end, on Ctrl-C,
on SIGTERM and on an error (its log: ``<out>/server.log``). The vLLM server needs a GPU and
``pip install -e ".[vllm]"``: this path runs only on a machine with both (a GPU check), never in the
test suite; ``--server-command`` runs any other OpenAI-compatible server instead, with ``{model}``,
``{name}``, ``{port}``, ``{dtype}`` and ``{max_model_len}`` filled in (the tests serve a tiny model with
``python tests/model_server.py --model {model} --name {name} --port {port}`` and ``--smoke``).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import sys
import time
from pathlib import Path


def timed(label: str, argv: list[str], timings: dict) -> None:
    from entity_unlearn.cli import main

    print(f"== {label}: entity-unlearn {' '.join(argv)}", flush=True)
    start = time.perf_counter()
    code = main(argv)
    timings[label] = round(time.perf_counter() - start, 1)
    print(f"== {label}: {timings[label]:.1f} s (exit {code})", flush=True)
    if code:
        sys.exit(code)


def random_base(release: str, out: Path, smoke: bool = False) -> str:
    """A 0.5B Llama-shaped model (hidden 1024, 24 layers, MLP 4096) with random weights, saved as safetensors
    (``smoke``: the tiny default's shape)."""
    from entity_unlearn.pipeline.inject import release_texts
    from entity_unlearn.pipeline.tiny import TinyConfig, build_model, save, train_tokenizer

    shape = (
        TinyConfig(vocab_size=1000)
        if smoke
        else TinyConfig(vocab_size=4000, hidden_size=1024, intermediate_size=4096, num_hidden_layers=24, num_attention_heads=16)
    )
    tok = train_tokenizer(release_texts(release), shape.vocab_size)
    model = build_model(tok, shape)
    print(f"random base: {sum(p.numel() for p in model.parameters()) / 1e6:.2f}M parameters", flush=True)
    return str(save(model, tok, out))


def nf4_agreement(model: str) -> dict:
    """bitsandbytes' CUDA NF4 codes and scales against the package's simulation, layer by layer: absmax should be
    equal, codes equal but for weights within a rounding of a threshold (CUDA's fast reciprocal)."""
    import bitsandbytes as bnb
    import torch
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    from entity_unlearn.pipeline import quant

    plain = dict(quant.quantisable(AutoModelForCausalLM.from_pretrained(model, dtype=torch.float32)))
    config = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=False, bnb_4bit_compute_dtype=torch.bfloat16)
    loaded = AutoModelForCausalLM.from_pretrained(model, quantization_config=config, device_map="cuda")
    total = codes_equal = absmax_equal = blocks = 0
    for name, layer in loaded.named_modules():
        if not isinstance(layer, bnb.nn.Linear4bit):
            continue
        codes, absmax = quant.nf4_quantize(plain[name].weight.to(torch.bfloat16).cuda())  # bnb quantises the bf16 weight it loads
        packed = layer.weight.data.reshape(-1).view(torch.uint8)
        theirs = torch.stack([packed >> 4, packed & 0xF], 1).reshape(-1)[: codes.numel()]
        total += codes.numel()
        codes_equal += int((theirs == codes).sum())
        blocks += absmax.numel()
        absmax_equal += int((layer.weight.quant_state.absmax.float() == absmax).sum())
    return {"weights": total, "codes_equal": codes_equal / total, "blocks": blocks, "absmax_equal": absmax_equal / blocks}


def parse() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", help="Hub id or local folder of a 0.5-1B causal LM (default: a random-init 0.5B Llama)")
    ap.add_argument("--out", default=os.environ.get("OUT", "gpu-run"), help="work folder (default $OUT or ./gpu-run)")
    ap.add_argument("--data", help="an existing release folder (default: build one of --entities persons)")
    ap.add_argument("--method", default="npo_gd")
    ap.add_argument("--entities", type=int, default=200)
    ap.add_argument("--epochs", type=int, default=5, help="injection epochs (default 5, TOFU's)")
    ap.add_argument("--lr", type=float, default=1e-5, help="injection learning rate (default 1e-5, TOFU's; 1e-4 for the random base)")
    ap.add_argument(
        "--lora-rank", type=int, default=0, help="train LoRA adapters of this rank in inject and unlearn (needs peft; default: full fine-tune)"
    )
    ap.add_argument(
        "--smoke",
        action="store_true",
        help="run on CPU with a tiny random model, 10 persons, 1 epoch, 8-token answers: checks the script, not the GPU",
    )
    served = ap.add_argument_group("the served mode (--served; vLLM needs a GPU and vllm installed)")
    served.add_argument("--served", action="store_true", help="evaluate the model here and through a vLLM OpenAI server the script starts")
    served.add_argument("--model", help="serve this model folder (default: the one injected from --base)")
    served.add_argument(
        "--server-command",
        metavar="CMD",
        help="the server's command line, with {model} {name} {port} {dtype} {max_model_len} filled in (default: vLLM's OpenAI server)",
    )
    served.add_argument("--port", type=int, default=0, help="the server's port (default: a free one)")
    served.add_argument("--eval-dtype", default="float32", help="dtype of the local evaluation and of the server (default float32: parity)")
    served.add_argument(
        "--max-model-len",
        type=int,
        help="the server's context length (vLLM --max-model-len; default: the model's max_position_embeddings, at most 4096)",
    )
    served.add_argument("--server-timeout", type=float, default=900, help="seconds to wait for the server's /v1/models (default 900)")
    served.add_argument("--concurrency", type=int, default=64, help="requests in flight to the server (default 64)")
    served.add_argument("--sets", help="evaluate only these sets (eval --sets; default all)")
    args = ap.parse_args()
    if args.model and not args.served:
        ap.error("--model serves an existing model: it goes with --served (the pipeline mode injects its own)")
    if args.served and not args.server_command and importlib.util.find_spec("vllm") is None:
        ap.error('--served starts vLLM\'s server and vllm is not installed: pip install -e ".[vllm]" on a GPU machine, or give --server-command')
    return args


def main() -> None:
    args = parse()
    import torch

    if args.smoke:
        args.entities, args.epochs, args.base = 10, 1, None
    elif not torch.cuda.is_available() and not args.server_command:
        sys.exit("no CUDA device: this script checks the GPU path (--smoke runs it on CPU with a tiny model)")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    release = args.data or str(out / "entity-unlearn")
    if not args.data:
        timed("build", ["build", "--entities", str(args.entities), "--seed", "0", "--version", "1.0.0", "--out", release, "--quiet"], timings)
    lr = args.lr
    if args.model:
        base = target = args.model
    else:
        if args.base:
            base = args.base
        else:
            start = time.perf_counter()
            base = random_base(release, out / "random-base", args.smoke)
            timings["random base"] = round(time.perf_counter() - start, 1)
            lr = args.lr if args.lr != 1e-5 else 1e-4
        lora = ["--lora-rank", str(args.lora_rank)] if args.lora_rank else []
        train = ["--epochs", str(args.epochs), "--lr", str(lr), "--batch-size", "16", "--grad-accum", "2", "--dtype", "bfloat16", *lora, "--quiet"]
        target = str(out / "target")
        timed("inject", ["inject", "--data", release, "--base", base, "--out", target, *train], timings)
    answers = ["--max-new-tokens", "8"] if args.smoke else []  # a random model never ends its answer: keep the smoke run short
    answers += ["--sets", args.sets] if args.sets else []
    gpu = torch.cuda.is_available() and not args.smoke
    import transformers

    summary = {
        "mode": "served" if args.served else "pipeline",
        "device": torch.cuda.get_device_name(0) if gpu else "cpu",
        "base": base,
        "entities": args.entities if not args.data else None,
        "data": release,
        "inject_epochs": None if args.model else args.epochs,
        "inject_lr": None if args.model else lr,
    }
    if args.served:
        summary.update(served(args, release, target, answers, out, timings))
    else:
        summary.update(pipeline(args, release, answers, out, timings, gpu))
    summary.update(
        timings_s=timings,
        total_s=round(sum(timings.values()), 1),
        peak_gpu_memory_gib=round(torch.cuda.max_memory_allocated() / 2**30, 1) if gpu else None,
        versions={"torch": torch.__version__, "transformers": transformers.__version__, "vllm": _version("vllm")},
    )
    (out / "gpu_timings.json").write_text(json.dumps(summary, indent=1), encoding="utf-8")
    print(json.dumps(summary, indent=1))


def pipeline(args, release: str, answers: list[str], out: Path, timings: dict, gpu: bool) -> dict:
    """The first mode: eval, unlearn, eval, 4-bit attack on the injected model."""
    lora = ["--lora-rank", str(args.lora_rank)] if args.lora_rank else []
    timed("eval target", ["eval", "--model", str(out / "target"), "--data", release, "--out", str(out / "eval-target"), *answers, "--quiet"], timings)
    timed(
        f"unlearn {args.method}",
        ["unlearn", "--model", str(out / "target"), "--data", release, "--method", args.method, "--out", str(out / "unlearned")]
        + ["--dtype", "bfloat16", *lora, "--quiet"],
        timings,
    )
    timed(
        "eval unlearned",
        ["eval", "--model", str(out / "unlearned"), "--data", release, "--before", str(out / "eval-target"), "--out", str(out / "eval-unlearned")]
        + [*answers, "--quiet"],
        timings,
    )
    backend = "bnb" if gpu else "simulate"  # bitsandbytes' own NF4 on the GPU; its CPU dequantiser is wrong at the smoke model's sizes
    timed(
        "attack quant4",
        ["attack", "--model", str(out / "unlearned"), "--data", release, "--kind", "quant4", "--quant-backend", backend]
        + ["--before", str(out / "eval-target" / "results.json"), "--out", str(out / "attack"), "--quiet"],
        timings,
    )
    robustness = json.loads((out / "attack" / "robustness.json").read_text(encoding="utf-8"))
    quant4 = {
        "backend": robustness["attacked_models"]["quant4"]["backend"],
        "recovery_prob": next((a["value"] for a in robustness["aggregates"] if a["metric"] == "recovery_prob" and a["depth"] == "all"), None),
        "nf4_codes_changed_by_unlearning": robustness["bin_crossing"]["nf4"]["code_changed"] if robustness["bin_crossing"] else None,
        "codes_vs_simulation": nf4_agreement(str(out / "unlearned")) if gpu else None,
    }
    return {"method": args.method, "lora_rank": args.lora_rank, "quant4": quant4}


def served(args, release: str, model: str, answers: list[str], out: Path, timings: dict) -> dict:
    """The second mode: the model evaluated here, then through the server started here; timings and the per-item comparison."""
    from server_process import ServerError, ServerProcess, fill, free_port, vllm_command

    from entity_unlearn.eval import read_result

    name = "entity-unlearn-served"
    port = args.port or free_port()
    values = {"model": model, "name": name, "port": port, "dtype": args.eval_dtype, "max_model_len": args.max_model_len or context_length(model)}
    try:
        command = fill(args.server_command, **values) if args.server_command else vllm_command(**values)
    except ServerError as exc:
        sys.exit(f"error: {exc}")
    url = f"http://127.0.0.1:{port}/v1"
    local, remote = out / "eval-local", out / "eval-served"
    for folder in (local, remote):
        shutil.rmtree(folder, ignore_errors=True)  # measured afresh: a rerun would be answered from the request cache
    timed("eval local", ["eval", "--model", model, "--data", release, "--out", str(local), "--dtype", args.eval_dtype, *answers, "--quiet"], timings)
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()  # the local evaluation's cached blocks: vLLM sizes its KV cache from the free GPU memory
    try:
        with ServerProcess(command, url, name, out / "server.log", args.server_timeout) as server:
            timings["server start"] = server.start_s
            timed(
                "eval served",
                ["eval", "--backend", "openai", "--model", name, "--base-url", url, "--tokenizer", model, "--data", release, "--out", str(remote)]
                + ["--concurrency", str(args.concurrency), *answers, "--quiet"],
                timings,
            )
    except ServerError as exc:
        sys.exit(f"error: {exc}")
    a, b = read_result(local, "eval-local"), read_result(remote, "eval-served")
    passes = {"local": throughput(a), "served": throughput(b)}
    print(f"{'':8} {'score s':>8} {'seq/s':>8} {'generate s':>11} {'answers/s':>10}")
    for where, t in passes.items():
        print(f"{where:8} {t['score_s']:>8.1f} {t['sequences_per_s']:>8.1f} {t['generate_s']:>11.1f} {t['answers_per_s']:>10.1f}")
    parity = compare_rows(a["rows"], b["rows"])
    print(
        f"served vs local over {parity['items']} items: largest log-prob difference {parity['max_abs_logp_diff']:.2e}, "
        f"{parity['token_count_mismatches']} token-count mismatches, {parity['identical_generations']} identical answers"
    )
    return {
        "server_command": command,
        "server_start_s": timings["server start"],
        "passes": passes,
        "parity": parity,
        "eval_dtype": args.eval_dtype,
        "max_model_len": values["max_model_len"],
    }


def context_length(model: str, most: int = 4096) -> int:
    """The model's own context length (vLLM refuses a --max-model-len above it), at most ``most``."""
    from transformers import AutoConfig

    return min(most, getattr(AutoConfig.from_pretrained(model), "max_position_embeddings", None) or most)


def throughput(result: dict) -> dict:
    """An evaluation's score and generation passes: seconds, sequences scored and answers generated per second."""
    score, generate = result["spec"]["passes"]["score"], result["spec"]["passes"]["generate"]
    per_s = lambda n, s: round(n / s, 1) if s else None  # noqa: E731
    return {
        "score_s": round(score["seconds"], 2),
        "sequences": score["computed"],
        "sequences_per_s": per_s(score["computed"], score["seconds"]),
        "generate_s": round(generate["seconds"], 2),
        "answers": generate["computed"],
        "answers_per_s": per_s(generate["computed"], generate["seconds"]),
    }


def compare_rows(local: list[dict], served: list[dict]) -> dict:
    """Per item: the largest |log p| difference over every scored candidate, token counts, identical greedy answers."""
    a, b = {r["item_id"]: r for r in local}, {r["item_id"]: r for r in served}
    if a.keys() != b.keys():
        sys.exit(f"the served evaluation has {len(b)} items and the local one {len(a)}: they did not evaluate the same sets")
    worst, unscored, mismatched, same = 0.0, 0, 0, 0
    for item_id, x in a.items():
        y = b[item_id]
        values = lambda r: [r["logp_answer"], r["logp_paraphrase"], *r["logp_perturbed"], *r["logp_options"]]  # noqa: E731
        pairs = list(zip(values(x), values(y)))
        unscored += sum(u is None or v is None for u, v in pairs)  # a NaN is written as null
        worst = max([worst] + [abs(u - v) for u, v in pairs if u is not None and v is not None])
        counts = lambda r: (r["ntok_answer"], r["ntok_paraphrase"], r["ntok_perturbed"], r["ntok_options"])  # noqa: E731
        mismatched += counts(x) != counts(y)
        same += x.get("generation") == y.get("generation")
    return {
        "items": len(a),
        "max_abs_logp_diff": worst,
        "unscored_on_either_side": unscored,
        "token_count_mismatches": mismatched,
        "identical_generations": same,
        "identical_generation_share": round(same / len(a), 4) if a else None,
    }


def _version(package: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return None


if __name__ == "__main__":
    main()
