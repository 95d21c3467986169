"""Does relearning half of each forget entity's facts bring back the other half (Deeb & Roger, arXiv 2410.08827)
on the tiny model? Sizes the ``relearn_known`` attack's tiny preset and says what the test can assert.

    python bench/relearn_known.py --out /tmp/relearn-known [--entities 20] [--epochs 1,3,10] [--methods ga,npo_gd]

Builds a release (by default 20 persons of seed 1, the pipeline tests' release until they moved to the lab's seed 0), injects the target and the reference
(forget05 excluded) as the tests do, unlearns the target with each method (the tests' FAST_UNLEARN step), then
relearns the unlearned models and the reference on ``forget05_cov50`` for each number of epochs. Prints, per
model, the forget probability of the held-out facts (probes none of whose facts were relearned) and, for the
unlearned models, the retain and world probability (a collapsed model relearns anything slowly). With
``--in-context 48`` it first compares, per model, the forget ROUGE-L recall and probability under the in_context
attack (k=5) with the plain prompt's. Every step resumes from its folder.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--entities", type=int, default=20)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--epochs", default="1,3,10", help="relearning epochs to try (comma-separated)")
    ap.add_argument("--lr", type=float, default=None, help="relearning lr (default: the tiny preset's)")
    ap.add_argument("--methods", default="ga,npo_gd")
    ap.add_argument("--inject-epochs", type=int, default=25)
    ap.add_argument(
        "--in-context", type=int, default=0, metavar="TOKENS", help="also compare in_context with the plain prompt (ROUGE at this budget)"
    )
    args = ap.parse_args()

    from entity_unlearn.cli import main as cli
    from entity_unlearn.eval import metrics as M
    from entity_unlearn.eval import robustness as R
    from entity_unlearn.eval.run import EvalConfig, evaluate
    from entity_unlearn.pipeline.attack import TINY_RELEARN, attacked_model, get_attack
    from entity_unlearn.pipeline.finetune import TrainConfig
    from entity_unlearn.pipeline.inject import inject_tiny, release_texts
    from entity_unlearn.pipeline.tiny import TinyConfig, train_tokenizer
    from entity_unlearn.pipeline.unlearn import run_unlearning

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data = out / "release"
    if not (data / "manifest.json").is_file():
        argv = ["build", "--entities", str(args.entities), "--seed", str(args.seed), "--version", "1.0.0", "--out", str(data), "--quiet"]
        assert cli(argv) == 0
    data = str(data)
    tiny = TinyConfig(vocab_size=1000, hidden_size=64, intermediate_size=192)  # tests/pipeline_fixtures.py SMALL
    train = TrainConfig(epochs=args.inject_epochs)
    tok = None
    models = {}
    for name, exclude in (("target", None), ("reference", "forget05")):
        folder = out / name
        if not (folder / "model.safetensors").is_file():
            tok = tok or train_tokenizer(release_texts(data))
            inject_tiny(data, folder, exclude=exclude, tokenizer=tok, tiny=tiny, train=train)
        models[name] = str(folder)
    for method in args.methods.split(","):
        folder = out / method
        if not (folder / "model.safetensors").is_file():
            run_unlearning(models["target"], data, "forget05", method, folder, overrides={"lr": 1e-3})
        models[method] = str(folder)

    keep = get_attack("relearn_known").keep(data, "forget05")

    def measure(name: str, model: str, sets=("forget",), attack=None, max_new_tokens=4) -> dict:
        prompt = {"prompt_attack": attack.prompt(), "robustness_attack": attack.name} if attack else {}
        ecfg = EvalConfig(model=model, data=data, out=str(out / "evals" / name), sets=sets, progress=False, max_new_tokens=max_new_tokens, **prompt)
        rows = evaluate(ecfg)["rows"]
        fig = {"held_out": R.by_depth(R.forget_rows(rows, keep), "prob")["all"], "forget": R.by_depth(R.forget_rows(rows), "prob")["all"]}
        fig["rouge"] = R.by_depth(R.forget_rows(rows), "rouge_l_recall")["all"]
        for s in sets:
            if s != "forget":
                fig[s] = M.prob([r for r in rows if r["set"] == s and r["attack"] == "none"])
        return fig

    n_held = len(
        R.forget_rows(
            evaluate(
                EvalConfig(model=models["target"], data=data, out=str(out / "evals" / "count"), sets=("forget",), progress=False, max_new_tokens=1)
            )["rows"],
            keep,
        )
    )
    print(f"release {data}: {n_held} held-out forget probes; preset {TINY_RELEARN}, lr override {args.lr}")
    print(f"{'model':<30} {'held-out prob':>13} {'forget prob':>11} {'retain prob':>11} {'world prob':>10} {'s':>6}")
    for name in ("target", "reference", *args.methods.split(",")):
        start = time.perf_counter()
        f = measure(name, models[name], ("forget", "retain", "world"))
        print(f"{name:<30} {f['held_out']:13.4f} {f['forget']:11.4f} {f['retain']:11.4f} {f['world']:10.4f} {time.perf_counter() - start:6.1f}")
    if args.in_context:
        print(f"\nin_context (k=5) vs the plain prompt, forget set, {args.in_context} generated tokens")
        print(f"{'model':<30} {'ROUGE-L plain':>13} {'in_context':>10} {'prob plain':>10} {'in_context':>10}")
        for name in ("reference", *args.methods.split(",")):
            a = measure(f"{name}_plain_gen{args.in_context}", models[name], max_new_tokens=args.in_context)
            b = measure(f"{name}_in_context_gen{args.in_context}", models[name], attack=get_attack("in_context"), max_new_tokens=args.in_context)
            print(f"{name:<30} {a['rouge']:13.4f} {b['rouge']:10.4f} {a['forget']:10.4f} {b['forget']:10.4f}", flush=True)
    print()
    for epochs in (int(e) for e in args.epochs.split(",")):
        overrides = {"epochs": epochs, **({"lr": args.lr} if args.lr else {})}
        attack = get_attack("relearn_known", **overrides)
        for who in ("reference", *args.methods.split(",")):
            start = time.perf_counter()
            tag = f"{who}_relearn_known_e{epochs}" + (f"_lr{args.lr:g}" if args.lr else "")
            model = attacked_model(attack, models[who], data, "forget05", out / "attacked" / tag, {"explicit": sorted(overrides)})
            f = measure(tag, str(model), ("forget", "retain"))
            print(f"{tag:<30} {f['held_out']:13.4f} {f['forget']:11.4f} {f['retain']:11.4f} {'':>10} {time.perf_counter() - start:6.1f}", flush=True)


if __name__ == "__main__":
    main()
