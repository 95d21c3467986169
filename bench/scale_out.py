"""Scale-out figures: the served path's throughput by concurrency, and eval wall time by process count.

    python bench/scale_out.py [--data RELEASE --model DIR] [--items 60] [--latency 0.05] [--concurrency 1,8,32] [--processes 1,2]
                              [--train-epochs 3]

1. served: a local OpenAI-compatible server (tests/model_server.py) serves the model with
   ``--latency`` seconds added to every answer; the score pass of ``--items`` items goes
   through ``eval --backend openai``'s adapter at each concurrency (a fresh request cache
   each time): sequences scored per second, and the same pass in this process for scale;
2. processes: ``entity-unlearn eval`` on the whole release with ``--num-processes`` 1, 2, ...:
   wall time (fresh output folders; the plan cache is warm after the first run);
3. training: ``entity-unlearn inject`` of the tiny base on the release, ``--train-epochs`` epochs, with
   ``--num-processes`` 1, 2, ...: wall time (process start included) and the largest relative
   difference of a step's loss from the one-process run's (0 to skip).

Without --data/--model a 20-person release and an untrained tiny model are built first.
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


def setup(work: Path) -> tuple[str, str]:
    from entity_unlearn.cli import main
    from entity_unlearn.pipeline.inject import release_texts
    from entity_unlearn.pipeline.tiny import TinyConfig, build_model, save, train_tokenizer

    release = work / "release"
    main(["build", "--entities", "20", "--seed", "0", "--version", "1.0.0", "--out", str(release), "--quiet"])
    tok = train_tokenizer(release_texts(str(release)), 600)
    return str(release), str(save(build_model(tok, TinyConfig(vocab_size=600, hidden_size=32, intermediate_size=64)), tok, work / "model"))


def served(args, data: str, model: str, work: Path) -> None:
    from model_server import ModelServer

    from entity_unlearn.eval import CausalLM, Formatter, RequestCache, load_items, open_release, plan, run_passes
    from entity_unlearn.eval.served import ServedLM

    items, _ = load_items(open_release(data), "forget05")
    items = random.Random(0).sample(items, min(args.items, len(items)))
    lm = CausalLM(model)
    fmt = Formatter(lm.tokenizer)
    p = plan(items, fmt)
    start = time.perf_counter()
    run_passes(p, lm, fmt, RequestCache(work / "local", "x"), generate=False, progress=False)
    local = time.perf_counter() - start
    server = ModelServer(model, latency_s=args.latency).start()
    print(f"served score pass: {p.n_score()} sequences in {len(p.contexts)} requests, {args.latency * 1000:.0f} ms added latency per request")
    print(f"{'concurrency':>12} {'seconds':>8} {'sequences/s':>12}")
    try:
        for c in [int(x) for x in args.concurrency.split(",")]:
            remote = ServedLM("bench", server.url, tokenizer=model, cache_dir=work / f"served-{c}", concurrency=c)
            start = time.perf_counter()
            run_passes(p, remote, fmt, RequestCache(work / f"remote-{c}", "x"), generate=False, progress=False)
            took = time.perf_counter() - start
            print(f"{c:>12} {took:>8.2f} {p.n_score() / took:>12.1f}")
    finally:
        server.stop()
    print(f"{'in process':>12} {local:>8.2f} {p.n_score() / local:>12.1f}")


def processes(args, data: str, model: str, work: Path) -> None:
    print(f"\neval of the whole release ({data}) by process count")
    for n in [int(x) for x in args.processes.split(",")]:
        cmd = [sys.executable, "-m", "entity_unlearn", "eval", "--model", model, "--data", data, "--out", str(work / f"eval-{n}"), "--quiet"]
        start = time.perf_counter()
        subprocess.run(cmd + ["--num-processes", str(n), "--max-new-tokens", str(args.max_new_tokens)], check=True, stdout=subprocess.DEVNULL)
        print(f"{n} process{'es' if n > 1 else ''}: {time.perf_counter() - start:.1f} s")


def training(args, data: str, work: Path) -> None:
    import json

    print(f"\ninject (tiny base, {args.train_epochs} epochs) by process count")
    first = None
    for n in [int(x) for x in args.processes.split(",")]:
        out = work / f"inject-{n}"
        cmd = [sys.executable, "-m", "entity_unlearn", "inject", "--data", data, "--out", str(out), "--epochs", str(args.train_epochs), "--quiet"]
        start = time.perf_counter()
        subprocess.run(cmd + ["--num-processes", str(n)], check=True, stdout=subprocess.DEVNULL)
        took = time.perf_counter() - start
        steps = json.loads((out / "injection.json").read_text(encoding="utf-8"))["loss_by_step"]
        first = first or steps
        off = max(abs(a - b) / abs(a) for a, b in zip(first, steps))
        print(
            f"{n} process{'es' if n > 1 else ''}: {took:.1f} s, {len(steps)} steps, final loss {steps[-1]:.4f}, largest step-loss difference {off:.1e}"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data")
    ap.add_argument("--model")
    ap.add_argument("--items", type=int, default=60)
    ap.add_argument("--latency", type=float, default=0.05)
    ap.add_argument("--concurrency", default="1,8,32")
    ap.add_argument("--processes", default="1,2")
    ap.add_argument("--max-new-tokens", type=int, default=48)
    ap.add_argument("--train-epochs", type=int, default=3)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="scale-out-"))
    data, model = (args.data, args.model) if args.data and args.model else setup(work)
    served(args, data, model, work)
    processes(args, data, model, work)
    if args.train_epochs:
        training(args, data, work)


if __name__ == "__main__":
    main()
