"""Where one default evaluation spends its time, and how it compares with the plain path and older code.

    python bench/eval_profile.py --data entity-unlearn [--model DIR] [--forget forget05] [--max-new-tokens 48,200]
                                 [--baseline-rev REV] [--skip-plain] [--skip-profile]
                                 [--openunlearning DIR --openunlearning-python PY] [--repeats 2] [--sweep 3]
                                 [--ours-path .transformers4]

Prints, all measured in this run (timings vary with load: read the ratios):

1. startup: ``entity-unlearn --help`` and the import of the eval command, as multiples of ``python -c pass``;
2. for each generation length: the seconds of every step of one default evaluation in this process
   (import torch, load release, load model, plan, read cache, score pass, generate pass, rows,
   aggregate, write, report and plots; the first length plans with a cold plan cache, the others
   reuse it), and the end-to-end wall time of the ``entity-unlearn eval`` command in a fresh process;
3. the plain path on the same items: every candidate its own sequence, no sharing or deduplication
   (``eval_passes.naive``), and ``model.generate`` run to ``max_new_tokens`` and cut afterwards
   (``CausalLM.generate_reference``); its end to end is ours with our two passes replaced by these;
4. with ``--baseline-rev REV``: the same ``eval`` command run by the code of git revision REV (its
   source tree laid out as the package, on this interpreter), end to end, and the aggregates'
   largest difference from ours (no metric may move: 1e-9);
5. with ``--openunlearning DIR`` (a checkout of locuslab/open-unlearning) and ``--openunlearning-python PY`` (an
   interpreter with what its TOFU evaluation needs): OpenUnlearning's ``src/eval.py experiment=eval/tofu/default``
   on the same checkpoint and release, on this CPU in float32, and our ``eval --compat openunlearning`` restricted to
   the sets theirs reads (forget, retain, holdout, world, real_authors), run alternately ``--repeats`` times, each
   in a fresh process; then the ratio and the largest difference between their headline numbers and ours; and, in
   each round, ours evaluating copies of the checkpoint one after another in one process (``evaluate`` with a memo:
   the scorer's and the study's way; each copy in a new folder, so it is hashed and loaded as a new submission), the
   seconds of each evaluation after the first; and our ``eval`` command given ``--sweep`` copies of the checkpoint (3;
   ``--model`` for each, each copy in a new folder), end to end, against as many of their processes. With
   ``--ours-path DIR``, ours is also timed in each round with DIR first on PYTHONPATH: ``.transformers4``, which
   ``make test`` fills with their transformers (4.45.1), so that both import the same library.
   Their checkout is left as it is: its configs are copied aside with every TOFU dataset pointed at ``--data``
   and a model config for the checkpoint (its chat template, no system prompt: what ours uses).

Without --model, a tiny model is injected on the release first (the default preset). ``--widen 256,4`` times an
untrained wider and deeper copy of it instead (3.5M parameters for the default preset's tokenizer), where the model's
forward passes take most of the time, and generation runs every answer to ``max_new_tokens``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# the command line as the console script runs it, old code (before cli.run) and new alike
CLI = ["-c", "import sys, entity_unlearn.cli as c; c.run() if hasattr(c, 'run') else sys.exit(c.main())"]
# The old code: -P keeps the working directory off sys.path, and the editable install's finder (which maps
# entity_unlearn.builders and .eval to this checkout) is removed, so PYTHONPATH's tree is imported whole.
OLD_CLI = [
    "-P",
    "-c",
    "import sys; sys.meta_path[:] = [f for f in sys.meta_path if not (f.__module__ if isinstance(f, type) else type(f).__module__)"
    ".startswith('__editable__')]; " + CLI[1],
]
PACKAGE_DIRS = {"entity_unlearn": "entity_unlearn", "entity_unlearn/builders": "builders", "entity_unlearn/eval": "eval"}


def wall(cmd: list[str], env: dict | None = None, repeat: int = 1, cwd: Path | None = None) -> float:
    """Best wall time of ``repeat`` runs of ``cmd`` (which must succeed), run in ``cwd``."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        run = subprocess.run(cmd, cwd=cwd, env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if run.returncode:
            raise SystemExit(f"{' '.join(cmd[:2])} ... failed (exit {run.returncode}):\n{run.stderr[-3000:]}")
        best = min(best, time.perf_counter() - start)
    return best


def startup() -> None:
    py = sys.executable
    base = wall([py, "-c", "pass"], repeat=5)
    helps = wall([py, *CLI, "--help"], repeat=5)
    evals = wall([py, "-c", "import entity_unlearn.cli, entity_unlearn.eval.run"], repeat=5)
    print(
        f"startup: python -c pass {base:.3f} s; entity-unlearn --help {helps:.3f} s ({helps / base:.1f}x); import of the eval command {evals:.3f} s"
    )


def old_tree(rev: str) -> Path:
    """The source of ``rev`` laid out as the import package (pyproject's package-dir), for PYTHONPATH."""
    root = Path(tempfile.mkdtemp(prefix=f"entity-unlearn-{rev[:8]}-"))
    src = root / "src"
    src.mkdir()
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(src)], input=archive, check=True)
    pkg = root / "pkg"
    shutil.copytree(src / "entity_unlearn", pkg / "entity_unlearn")
    for name in ("builders", "eval", "prompts", "cards"):
        shutil.copytree(src / name, pkg / "entity_unlearn" / name)
    return pkg


def profile(args, model: str, max_new: int, work: Path) -> dict:
    """One evaluation in this process with its step timings (the first length plans cold, the next reuse
    the plan on disk), then the ``eval`` command end to end in a fresh process (warm plan cache)."""
    from entity_unlearn.eval import EvalConfig, evaluate

    timings: dict[str, float] = {}
    start = time.perf_counter()
    cfg = EvalConfig(model, args.data, args.forget, str(work / f"eval-{max_new}"), max_new_tokens=max_new, progress=False)
    out = {"result": evaluate(cfg, timings=timings), "steps": timings}
    timings["total"] = time.perf_counter() - start
    cli = [sys.executable, *CLI, "eval", "--model", model, "--data", args.data, "--forget", args.forget]
    cli += ["--max-new-tokens", str(max_new), "--quiet"]
    out["e2e"] = wall(cli + ["--out", str(work / f"cli-{max_new}")])
    if args.baseline_rev:
        env = {"PYTHONPATH": str(args.old_pkg), "PYTHONDONTWRITEBYTECODE": "1"}
        old_cli = [sys.executable, *OLD_CLI, *cli[len(CLI) + 1 :]]
        out["baseline_e2e"] = wall(old_cli + ["--out", str(work / f"old-{max_new}")], env=env)
        old = json.loads((work / f"old-{max_new}" / "results.json").read_text())
        out["baseline_diff"] = aggregate_diff(out["result"]["aggregates"], old["aggregates"])
    return out


OU_SETS = "forget,retain,holdout,world,real_authors"  # what their TOFU evaluation reads (retain_perturbed, holdout, wf, ra)
OU_PROBES = ("--depths", "d1", "--attacks", "none")  # TOFU's rows: the plain d1 questions
# One process evaluating checkpoints one after another (as a scorer, a study or a notebook does through evaluate's
# memo): each a fresh copy of the checkpoint in a new folder (hashed and loaded as a new submission is), written into
# an empty folder; prints the seconds of every evaluation after the first (the copy not counted).
RESIDENT = """
import json, shutil, sys, time
from entity_unlearn.eval import EvalConfig, evaluate
model, data, forget, out, sets, n = sys.argv[1:]
memo, times = {}, []
for i in range(int(n) + 1):
    shutil.rmtree(out, ignore_errors=True)
    copy = shutil.copytree(model, f"{out}-model-{i}", dirs_exist_ok=True)
    start = time.perf_counter()
    cfg = EvalConfig(copy, data, forget, out, sets=tuple(sets.split(",")), depths=("d1",), attacks=("none",), compat="openunlearning", progress=False)
    evaluate(cfg, memo)
    times.append(time.perf_counter() - start)
    shutil.rmtree(copy)
print(json.dumps(times[1:]))
"""
RESIDENT_AGAIN = 2  # evaluations timed per round after the first
SWEEP = 3  # checkpoints in the one `eval` command timed per round (copies of the checkpoint, each in a new folder)


def ou_configs(ou: Path, data: str, model: str, work: Path) -> Path:
    """A copy of the checkout's configs with every TOFU dataset read from the release folder, and a model config."""
    configs = work / "ou-configs"
    shutil.copytree(ou / "configs", configs)
    release = str(Path(data).resolve())
    for path in (configs / "data" / "datasets").glob("TOFU_*.yaml"):
        path.write_text(path.read_text().replace('path: "locuslab/TOFU"', f'path: "{release}"'))
    model = str(Path(model).resolve())
    (configs / "model" / "entity-unlearn.yaml").write_text(
        f'model_args:\n  pretrained_model_name_or_path: "{model}"\n  torch_dtype: float32\n  device_map: cpu\n'
        f'tokenizer_args:\n  pretrained_model_name_or_path: "{model}"\n'
        "template_args:\n  apply_chat_template: True\n"
    )
    return configs


def versus_openunlearning(args, model: str, work: Path) -> None:
    """Their TOFU evaluation and ours on the same sets, alternately, each a fresh process; wall times and the ratio."""
    ou = Path(args.openunlearning).resolve()
    configs = ou_configs(ou, args.data, model, work)
    forget = args.forget
    theirs_cmd = [
        args.openunlearning_python,
        "src/eval.py",
        f"--config-path={configs}",
        "experiment=eval/tofu/default",
        "model=entity-unlearn",
        f"model.model_args.pretrained_model_name_or_path={Path(model).resolve()}",  # the experiment names its own model
        f"forget_split={forget}",
        f"holdout_split={forget.replace('forget', 'holdout')}",
        "task_name=entity-unlearn-bench",
        f"paths.output_dir={work / 'ou-out'}",
        "eval.tofu.overwrite=true",
    ]

    def on_their_rows(models: list[str], out: str) -> list[str]:
        """Our eval command on the rows their evaluation reads, with their decoding."""
        cmd = [sys.executable, *CLI, "eval", *(a for m in models for a in ("--model", m)), "--data", args.data, "--forget", forget]
        return [*cmd, "--sets", OU_SETS, *OU_PROBES, "--compat", "openunlearning", "--quiet", "--out", str(work / out)]

    ours_cmd = on_their_rows([model], "ours-vs-ou")
    on_path_cmd = on_their_rows([model], "ours-on-path")  # its own folder: no request cached by the run before it
    # Both interpreters write their bytecode in the warm-up round (a pip install compiles it too), so neither
    # run is timed compiling its imports: where PYTHONDONTWRITEBYTECODE is set that costs 10-20 s a process.
    env = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONDONTWRITEBYTECODE": ""}
    on_path_env = {**env, "PYTHONPATH": str(Path(args.ours_path).resolve())} if args.ours_path else None
    # and our full default evaluation (every set, depth and attack, 48 new tokens), which should take no longer than theirs
    full_cmd = [sys.executable, *CLI, "eval", "--model", model, "--data", args.data, "--forget", forget, "--quiet", "--out", str(work / "ours-full")]
    resident_cmd = [sys.executable, "-c", RESIDENT, model, args.data, forget, str(work / "ours-resident"), OU_SETS, str(RESIDENT_AGAIN)]
    times: dict[str, list[float]] = {"ours": [], "theirs": [], "full": [], "resident": [], "sweep": [], "ours_on_path": []}
    for n in range(args.repeats + 1):  # the first round fills our plan cache and their datasets cache: not counted
        for folder in ("ours-vs-ou", "ours-on-path", "ours-full", "ours-sweep"):
            shutil.rmtree(work / folder, ignore_errors=True)  # no request cache carried over: every run computes
        ours = wall(ours_cmd, env)
        # ours importing the libraries of --ours-path first (e.g. .transformers4: the transformers their evaluation runs on)
        on_path = wall(on_path_cmd, on_path_env) if on_path_env else None
        full = wall(full_cmd, env)
        theirs = wall(theirs_cmd, env, cwd=ou)
        # the eval command with several checkpoints, as a user evaluates the steps of a run: new copies each round
        copies = [str(shutil.copytree(model, work / f"sweep-models-{n}" / f"checkpoint-{i}")) for i in range(args.sweep)]
        sweep = wall(on_their_rows(copies, "ours-sweep"), env)
        shutil.rmtree(work / f"sweep-models-{n}")
        done = subprocess.run(resident_cmd, env={**os.environ, **env}, capture_output=True, text=True)
        if done.returncode:
            raise SystemExit(f"the resident evaluations failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
        if n:
            times["ours"].append(ours)
            times["full"].append(full)
            times["theirs"].append(theirs)
            times["sweep"].append(sweep)
            if on_path is not None:
                times["ours_on_path"].append(on_path)
            times["resident"] += json.loads(done.stdout.strip().splitlines()[-1])
    fmt = lambda xs: ", ".join(f"{x:.1f}" for x in xs)  # noqa: E731
    best = {k: min(v) for k, v in times.items() if v}
    print(
        f"\nOpenUnlearning ({ou}) against ours on {forget} and the sets {OU_SETS}, {args.repeats} alternate runs, fresh processes, "
        f"float32 on CPU, 200 new tokens, after one warm-up round each: theirs {fmt(times['theirs'])} s, ours {fmt(times['ours'])} s; "
        f"best against best {best['theirs'] / best['ours']:.2f}x faster"
    )
    print(
        f"our full default evaluation ({forget}: every set, depth and attack, 48 new tokens) in the same rounds: {fmt(times['full'])} s; "
        f"best {best['full']:.1f} s against their best {best['theirs']:.1f} s ({best['theirs'] / best['full']:.2f}x)"
    )
    print(
        f"ours in one process evaluating {RESIDENT_AGAIN} more copies of the checkpoint per round, each in a new folder (evaluate() with a"
        f" memo, as the scorer, a study and a notebook run; their evaluator starts a process per run): {fmt(times['resident'])} s each;"
        f" best {best['resident']:.1f} s against their best {best['theirs']:.1f} s ({best['theirs'] / best['resident']:.2f}x)"
    )
    extra = [(s - o) / (args.sweep - 1) for s, o in zip(times["sweep"], times["ours"])]
    print(
        f"ours, one eval command with {args.sweep} checkpoints (copies, each in a new folder) in the same rounds: {fmt(times['sweep'])} s;"
        f" theirs, a process per checkpoint: {args.sweep} x {best['theirs']:.1f} = {args.sweep * best['theirs']:.1f} s at best"
        f" ({args.sweep * best['theirs'] / best['sweep']:.2f}x); each checkpoint after the first (the command's time less ours for one,"
        f" over {args.sweep - 1}): {fmt(extra)} s"
    )
    if args.ours_path:
        found = json.loads((work / "ours-on-path" / "results.json").read_text())
        differ = aggregate_diff(found["aggregates"], json.loads((work / "ours-vs-ou" / "results.json").read_text())["aggregates"])
        print(
            f"ours with {args.ours_path} first on PYTHONPATH (transformers {found['spec']['package']['transformers']}), same command, same"
            f" rounds: {fmt(times['ours_on_path'])} s; best {best['ours_on_path']:.1f} s against their best {best['theirs']:.1f} s"
            f" ({best['theirs'] / best['ours_on_path']:.2f}x); its aggregates' largest difference from ours: {differ:.1e}"
        )
    summary = json.loads((work / "ou-out" / "TOFU_SUMMARY.json").read_text())
    mine = json.loads((work / "ours-vs-ou" / "openunlearning.json").read_text())
    shared = [k for k in summary if isinstance(summary[k], (int, float)) and isinstance(mine.get(k), (int, float))]
    diffs = {k: abs(summary[k] - mine[k]) for k in shared}
    worst = max(diffs, key=diffs.get) if diffs else None
    print(
        f"headline numbers in both: {len(shared)} ({', '.join(shared)}); largest difference "
        + (f"{diffs[worst]:.1e} ({worst})" if worst else "none to compare")
        + " (both on the plain d1 questions, TOFU's rows; ROUGE agrees exactly, while their probabilities also score what"
        " the chat template puts after the end-of-turn token and the tokenizer's EOS, which ours leave out: README, OpenUnlearning)"
    )


def aggregate_diff(a: list[dict], b: list[dict]) -> float:
    key = lambda x: (x["metric"], x["set"], x["depth"], x["attack"])  # noqa: E731
    theirs = {key(x): x["value"] for x in b}
    if set(theirs) != {key(x) for x in a}:
        return float("inf")
    return max((abs(x["value"] - theirs[key(x)]) for x in a if x["value"] is not None and theirs[key(x)] is not None), default=0.0)


def plain(args, model: str, max_news: list[int]) -> dict:
    sys.path.insert(0, str(Path(__file__).parent))
    from eval_passes import naive

    from entity_unlearn.eval import CausalLM, Formatter, load_items, open_release, plan

    lm = CausalLM(model)
    fmt = Formatter(lm.tokenizer)
    items, _ = load_items(open_release(args.data), args.forget)
    p = plan(items, fmt)
    start = time.perf_counter()
    rows_per_batch = max(1, round(p.n_score() / max(1, len(p.contexts)) * 16))
    naive(lm, items, fmt, p, rows_per_batch)
    out = {"score": time.perf_counter() - start}
    contexts = [p.contexts[p.item_keys[i.item_id][0]] for i in items]  # one prompt per item, as a plain loop asks them
    for max_new in max_news:
        start = time.perf_counter()
        lm.generate_reference(contexts, fmt.stop_ids(), max_new)
        out[f"generate {max_new}"] = time.perf_counter() - start
    return out


def widened(model: str, hidden: int, layers: int, out: Path) -> str:
    """An untrained Llama like ``model`` but ``hidden`` wide (4 heads, 2.7x as wide MLP) and ``layers`` deep, seed 0,
    with ``model``'s tokenizer files copied as they are (so an older transformers, OpenUnlearning's, reads them too).
    Untrained, it never emits its end token: every answer is generated to ``max_new_tokens``, by both evaluators."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = json.loads((Path(model) / "config.json").read_text())
    config.update(hidden_size=hidden, intermediate_size=round(hidden * 2.6875), num_hidden_layers=layers, head_dim=hidden // 4)
    config.update(num_attention_heads=4, num_key_value_heads=4)
    torch.manual_seed(0)
    wide = LlamaForCausalLM(LlamaConfig(**{k: v for k, v in config.items() if k not in ("architectures", "transformers_version")}))
    wide.save_pretrained(out)
    for f in Path(model).iterdir():
        if f.is_file() and f.name not in ("config.json", "model.safetensors") and not f.name.startswith("injection"):
            shutil.copy(f, out / f.name)
    print(f"widened: {sum(p.numel() for p in wide.parameters()):,} parameters (hidden {hidden}, {layers} layers), untrained, in {out}")
    return str(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--model")
    ap.add_argument("--forget", default="forget05")
    ap.add_argument("--max-new-tokens", default="48,200")
    ap.add_argument("--baseline-rev", help="git revision whose eval command is timed on the same work")
    ap.add_argument("--skip-plain", action="store_true", help="do not time the plain per-candidate path")
    ap.add_argument("--skip-profile", action="store_true", help="only the OpenUnlearning comparison (with --openunlearning)")
    ap.add_argument("--openunlearning", metavar="DIR", help="a checkout of locuslab/open-unlearning to time on the same work")
    ap.add_argument("--openunlearning-python", metavar="PY", help="the interpreter its evaluation runs with (its requirements installed)")
    ap.add_argument("--repeats", type=int, default=2, help="alternate runs of theirs and ours")
    ap.add_argument("--sweep", type=int, default=SWEEP, help=f"checkpoints in the one eval command timed each round (default {SWEEP}, at least 2)")
    ap.add_argument(
        "--ours-path",
        metavar="DIR",
        help="also time ours with DIR first on PYTHONPATH, e.g. .transformers4 (make test installs OpenUnlearning's transformers 4.45.1"
        " there): both evaluators then import the same transformers",
    )
    ap.add_argument(
        "--widen",
        metavar="HIDDEN,LAYERS",
        help="time an untrained copy of --model this wide and deep instead (its tokenizer files, random weights of seed 0):"
        " a checkpoint whose forward passes, not start-up, take the time",
    )
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="eval-profile-"))
    os.environ["ENTITY_UNLEARN_CACHE"] = str(work / "cache")  # a cold plan cache first
    model = args.model
    if model is None:
        from entity_unlearn.pipeline.inject import InjectConfig, inject

        model = str(inject(args.data, work / "tiny", InjectConfig(), checkpoint=False))
    if args.widen:
        hidden, layers = (int(x) for x in args.widen.split(","))
        model = widened(model, hidden, layers, work / f"widened-{hidden}x{layers}")
    if args.sweep < 2:
        ap.error("--sweep: give 2 or more checkpoints (what each one after the first adds is the point)")
    if args.openunlearning and not args.openunlearning_python:
        ap.error("--openunlearning needs --openunlearning-python, the interpreter with its requirements")
    args.old_pkg = old_tree(args.baseline_rev) if args.baseline_rev else None
    if args.skip_profile:
        if args.openunlearning:
            versus_openunlearning(args, model, work)
        print(f"outputs in {work}")
        return
    startup()
    max_news = [int(x) for x in args.max_new_tokens.split(",")]
    runs = {m: profile(args, model, m, work) for m in max_news}
    spec = runs[max_news[0]]["result"]["spec"]
    print(
        f"\n{args.data} ({args.forget}): {spec['plan']['items']} items, {spec['plan']['continuations_unique']} scored sequences, "
        f"{spec['plan']['contexts']} prompts; model {model} ({spec['model']['dtype']}, {spec['model']['device']})"
    )
    steps = list(runs[max_news[0]]["steps"])
    print(f"{'step (s)':<20}" + "".join(f"{f'{m} new tokens':>16}" for m in max_news))
    for step in steps:
        print(f"{step:<20}" + "".join(f"{runs[m]['steps'].get(step, 0):>16.2f}" for m in max_news))
    for m in max_news:
        r, t = runs[m], runs[m]["steps"]
        outside = t["total"] - t["score pass"] - t["generate pass"]
        line = f"max_new_tokens {m}: outside the passes {outside:.1f} s; generate / score pass {t['generate pass'] / t['score pass']:.2f}"
        line += f"; eval command end to end {r['e2e']:.1f} s"
        if args.baseline_rev:
            line += f"; at {args.baseline_rev} {r['baseline_e2e']:.1f} s ({r['baseline_e2e'] / r['e2e']:.2f}x ours), aggregates differ by {r['baseline_diff']:.1e}"
        print(line)
    if not args.skip_plain:
        base = plain(args, model, max_news)
        for m in max_news:
            r = runs[m]["steps"]
            theirs = r["total"] - r["score pass"] - r["generate pass"] + base["score"] + base[f"generate {m}"]
            print(
                f"plain path, max_new_tokens {m}: score {base['score']:.1f} s (ours {r['score pass']:.1f}), generate {base[f'generate {m}']:.1f} s "
                f"(ours {r['generate pass']:.1f}); end to end {theirs:.1f} s against ours {r['total']:.1f} s: {theirs / r['total']:.2f}x"
            )
    if args.openunlearning:
        versus_openunlearning(args, model, work)
    print(f"outputs in {work}")


if __name__ == "__main__":
    main()
