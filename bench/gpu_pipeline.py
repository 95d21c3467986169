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
"""

from __future__ import annotations

import argparse
import json
import os
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", help="Hub id or local folder of a 0.5-1B causal LM (default: a random-init 0.5B Llama)")
    ap.add_argument("--out", default=os.environ.get("OUT", "gpu-run"), help="work folder (default $OUT or ./gpu-run)")
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
    args = ap.parse_args()
    import torch

    if args.smoke:
        args.entities, args.epochs, args.base = 10, 1, None
    elif not torch.cuda.is_available():
        sys.exit("no CUDA device: this script checks the GPU path (--smoke runs it on CPU with a tiny model)")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    release = str(out / "entity-unlearn")
    timings: dict[str, float] = {}
    timed("build", ["build", "--entities", str(args.entities), "--seed", "0", "--version", "1.0.0", "--out", release, "--quiet"], timings)
    lr = args.lr
    if args.base:
        base = args.base
    else:
        start = time.perf_counter()
        base = random_base(release, out / "random-base", args.smoke)
        timings["random base"] = round(time.perf_counter() - start, 1)
        lr = args.lr if args.lr != 1e-5 else 1e-4
    lora = ["--lora-rank", str(args.lora_rank)] if args.lora_rank else []
    answers = ["--max-new-tokens", "8"] if args.smoke else []  # a random model never ends its answer: keep the smoke run short
    train = ["--epochs", str(args.epochs), "--lr", str(lr), "--batch-size", "16", "--grad-accum", "2", "--dtype", "bfloat16", *lora, "--quiet"]
    timed("inject", ["inject", "--data", release, "--base", base, "--out", str(out / "target"), *train], timings)
    timed("eval target", ["eval", "--model", str(out / "target"), "--data", release, "--out", str(out / "eval-target"), *answers, "--quiet"], timings)
    timed(
        f"unlearn {args.method}",
        [
            "unlearn",
            "--model",
            str(out / "target"),
            "--data",
            release,
            "--method",
            args.method,
            "--out",
            str(out / "unlearned"),
            "--dtype",
            "bfloat16",
            *lora,
            "--quiet",
        ],
        timings,
    )
    timed(
        "eval unlearned",
        [
            "eval",
            "--model",
            str(out / "unlearned"),
            "--data",
            release,
            "--before",
            str(out / "eval-target"),
            "--out",
            str(out / "eval-unlearned"),
            *answers,
            "--quiet",
        ],
        timings,
    )
    gpu = torch.cuda.is_available() and not args.smoke
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
    import transformers

    summary = {
        "device": torch.cuda.get_device_name(0) if gpu else "cpu",
        "base": base,
        "method": args.method,
        "entities": args.entities,
        "lora_rank": args.lora_rank,
        "inject_epochs": args.epochs,
        "inject_lr": lr,
        "timings_s": timings,
        "quant4": quant4,
        "total_s": round(sum(timings.values()), 1),
        "peak_gpu_memory_gib": round(torch.cuda.max_memory_allocated() / 2**30, 1) if gpu else None,
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
    }
    (out / "gpu_timings.json").write_text(json.dumps(summary, indent=1), encoding="utf-8")
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
