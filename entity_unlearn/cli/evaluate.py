"""The ``entity-unlearn eval`` subcommand."""

from __future__ import annotations

import argparse
from pathlib import Path

from .common import UsageError, add_batch_groups, add_command, add_num_processes, launch, positive_int, relaunching, split_revision

EVAL_EXAMPLE = """
entity-unlearn eval --model models/reference --data entity-unlearn --out evals/reference
entity-unlearn eval --model models/npo_gd --data entity-unlearn --reference evals/reference --before evals/target --out evals/npo_gd
entity-unlearn eval --model Qwen/Qwen2.5-0.5B-Instruct@main --data my-org/entity-unlearn@v1.0.0 --out evals/qwen
entity-unlearn eval --model runs/npo/step-* --data entity-unlearn --reference evals/reference --before evals/target --out evals/npo
"""


def add_eval_command(sub) -> None:
    ev = add_command(sub, "eval", "score a causal LM checkpoint on a release: forget, retain, knowledge depth", EVAL_EXAMPLE)
    ev.add_argument(
        "--model",
        required=True,
        action="extend",
        nargs="+",
        metavar="DIR_OR_REPO[@REVISION]",
        help="local folder or Hub id of the checkpoint, optionally @branch, tag or commit (--backend openai: the served model's name); "
        "several (--model A B, --model runs/step-*, or --model repeated) are evaluated one after another in this process, in the "
        "order given, each into --out/NAME (NAME: its folder's or repository's name), the release read and the tokenised "
        "questions prepared once",
    )
    ev.add_argument("--revision", help="revision of a Hub model (the same as MODEL@REVISION); the resolved commit is recorded")
    ev.add_argument(
        "--backend",
        default="local",
        choices=("local", "openai", "vllm"),
        help="local: load the model here; openai: score it through an OpenAI-compatible server; vllm: vLLM's offline engine (GPU, vllm installed)",
    )
    ev.add_argument("--base-url", metavar="URL", help="--backend openai: the server's base URL, e.g. http://localhost:8000/v1")
    ev.add_argument("--tokenizer", metavar="DIR_OR_ID", help="--backend openai: the served model's tokenizer (default: --model)")
    ev.add_argument("--api-key-env", default="OPENAI_API_KEY", metavar="VAR", help="--backend openai: environment variable holding the API key")
    ev.add_argument("--concurrency", type=positive_int, default=32, help="--backend openai: requests in flight")
    ev.add_argument("--data", required=True, metavar="DIR_OR_REPO[@REVISION]", help="release folder or Hub dataset")
    ev.add_argument("--forget", default="forget05", help="forget set; retain, neighbour and holdout sets follow from it")
    ev.add_argument(
        "--sets",
        metavar="SET,SET",
        help="evaluate only these sets (of forget, retain, neighbor, holdout, world, real_authors; default all); "
        "OpenUnlearning's TOFU evaluation reads forget,retain,holdout,world,real_authors",
    )
    ev.add_argument(
        "--depths",
        metavar="D,D",
        help="evaluate only probes of these depths (of d0-d4; default all); TOFU's questions are d1 (the world and real-author sets are d1)",
    )
    ev.add_argument(
        "--attacks",
        metavar="ATTACK,ATTACK",
        help="evaluate only probes of these attack kinds (none and the release's attacks; default all); TOFU's questions are none",
    )
    ev.add_argument(
        "--reference", metavar="RESULT.json", help="result of a model never trained on the forget entities (forget quality, privleak, survival)"
    )
    ev.add_argument("--before", metavar="RESULT.json", help="result of the model before unlearning (forget efficacy per depth)")
    ev.add_argument(
        "--out",
        required=True,
        help="output folder (results.json, rows.parquet, report.md, plots, cache; several --model: one such folder per model in it); "
        "a rerun into it resumes",
    )
    ev.add_argument(
        "--force", action="store_true", help="write into an existing --out that is not an evaluation (only the evaluation's own files are replaced)"
    )
    ev.add_argument("--chat-template", default="auto", help="auto (the tokenizer's, else plain), none (plain Question/Answer), or a Jinja FILE")
    ev.add_argument("--device", help="cuda, cpu, ... (default: cuda if present)")
    ev.add_argument("--dtype", help="float32, bfloat16, float16 (default: bfloat16 on cuda, float32 on cpu)")
    ev.add_argument("--allow-pickle", action="store_true", help="accept pickle (.bin) weights; they can run code when loaded")
    ev.add_argument("--trust-remote-code", action="store_true", help="run the checkpoint's own modelling code")
    ev.add_argument(
        "--max-new-tokens",
        type=positive_int,
        help="generation budget per answer (default 48, and the answer is cut at its first newline; OpenUnlearning: 200, no cut)",
    )
    ev.add_argument(
        "--compat",
        choices=["openunlearning"],
        help="OpenUnlearning's settings (200 new tokens, no newline cut) and openunlearning.json with their metric names",
    )
    add_batch_groups(ev)
    ev.add_argument(
        "--batch-generate",
        type=positive_int,
        help="questions per generation batch (default: as many as 1 GiB of KV cache holds, from 32 to 256; 32 for a served model)",
    )
    ev.add_argument(
        "--plan-cache",
        metavar="DIR",
        help="folder of tokenised plans reused across runs (default $ENTITY_UNLEARN_CACHE/plans or ~/.cache/entity-unlearn/plans; none: off)",
    )
    add_num_processes(ev, "each computing a share of the passes; the result equals one process's")
    ev.add_argument("--quiet", action="store_true", help="no progress bars")
    ev.set_defaults(func=cmd_eval, interrupted=_interrupted)


def _interrupted(args: argparse.Namespace) -> str:
    where = f"{args.out}/cache" if len(args.model) == 1 else f"each model's {args.out}/NAME/cache"
    return f"every finished batch is cached in {where}: rerun the same command to resume"


def cmd_eval(args: argparse.Namespace) -> int:
    from entity_unlearn.builders.schema import DEPTHS
    from entity_unlearn.builders.world.probes import ATTACKS
    from entity_unlearn.eval.model import check_whole_model_loading
    from entity_unlearn.eval.report import summary_text
    from entity_unlearn.eval.run import EvalConfig, evaluate

    models = [split_revision("--model", m) for m in args.model]
    outs = [args.out] if len(models) == 1 else sweep_folders(args, models)
    (model, revision), *_ = models
    if revision and args.revision and revision != args.revision:
        raise UsageError(f"--model {args.model[0]} names revision {revision!r} but --revision is {args.revision!r}; give one")
    if relaunching(args):
        check_whole_model_loading(args.num_processes)
        return launch(args.num_processes, args.argv)

    cfg = EvalConfig(
        model=model,
        sets=parse_sets(args.sets),
        depths=parse_choices("--depths", args.depths, DEPTHS),
        attacks=parse_choices("--attacks", args.attacks, ("none", *ATTACKS)),
        revision=revision or args.revision,
        force=args.force,
        data=args.data,
        forget=args.forget,
        out=outs[0],
        reference=args.reference,
        before=args.before,
        chat_template=args.chat_template,
        device=args.device,
        dtype=args.dtype,
        allow_pickle=args.allow_pickle,
        trust_remote_code=args.trust_remote_code,
        max_new_tokens=args.max_new_tokens,
        batch_groups=args.batch_groups,
        batch_generate=args.batch_generate,
        progress=not args.quiet,
        command=args.command_line,
        compat=args.compat,
        plan_cache=args.plan_cache,
        backend=args.backend,
        base_url=args.base_url,
        tokenizer=args.tokenizer,
        api_key_env=args.api_key_env,
        concurrency=args.concurrency,
    )
    if len(models) > 1:
        return sweep(cfg, models, outs)
    result = evaluate(cfg)
    if result is None:  # a process other than rank 0 of many: rank 0 reports
        return 0
    print(summary_text(result))
    passes = result["spec"]["passes"]
    print(
        f"score pass {passes['score']['seconds']:.1f} s ({passes['score']['computed']} computed, {passes['score']['cached']} cached); "
        f"generate pass {passes['generate']['seconds']:.1f} s"
    )
    print(f"written: {Path(args.out).resolve() / 'results.json'}, rows.parquet, report.md, depth_profile.png, entity_heatmap.png")
    return 0


def sweep_folders(args: argparse.Namespace, models: list[tuple[str, str | None]]) -> list[str]:
    """Each model's output folder, ``--out/NAME``, once every model is known to be loadable from here: several models
    are evaluated by the local backend, each named by its folder or repository, no two alike, each folder complete."""
    from entity_unlearn.eval.model import check_checkpoint, looks_like_hub_id
    from entity_unlearn.eval.run import is_sweep_output
    from entity_unlearn.outputs import check_output

    if args.backend != "local":
        raise UsageError(f"--backend {args.backend} takes one --model; run one eval per served model")
    if args.revision:
        raise UsageError(f"--revision with {len(models)} models: write each Hub model's revision as ORG/NAME@REVISION")
    seen: dict[str, str] = {}  # folder name -> the --model value it came from
    for (model, revision), given in zip(models, args.model):
        if looks_like_hub_id(model):
            name = model.split("/")[1] + (f"@{revision}" if revision else "")
        else:
            check_checkpoint(model, args.allow_pickle)  # before the first evaluation, not after it
            name = Path(model).resolve().name
        if name in seen:
            raise UsageError(
                f"--model {seen[name]} and --model {given} would both be written to {Path(args.out) / name}; "
                "evaluate them in separate commands, or copy one to a folder of another name"
            )
        seen[name] = given
    check_output(args.out, "eval", is_sweep_output, args.force)
    return [str(Path(args.out) / name) for name in seen]


def sweep(cfg, models: list[tuple[str, str | None]], outs: list[str]) -> int:
    """Evaluate each model in turn into its folder, sharing one memo (the release's items, the tokenised plans), and
    print one line of headline numbers per model."""
    from dataclasses import replace

    from entity_unlearn.eval.ranks import ranks_from_env
    from entity_unlearn.eval.report import sweep_table, sweep_text, write_sweep
    from entity_unlearn.eval.run import SWEEP_FILES, evaluate
    from entity_unlearn.outputs import staged

    memo: dict = {}
    done = []
    for n, ((model, revision), out) in enumerate(zip(models, outs), 1):
        if cfg.progress and ranks_from_env().main:
            print(f"[{n}/{len(models)}] {model}{'@' + revision if revision else ''} -> {out}", flush=True)
        result = evaluate(replace(cfg, model=model, revision=revision, out=out), memo)
        if result is not None:  # None: a process other than rank 0 of many; rank 0 reports
            done.append((Path(out).name, result))
    if done:
        parent = Path(outs[0]).parent
        table = sweep_table(done)
        with staged(parent, SWEEP_FILES) as tmp:
            write_sweep(done, table, tmp)
        print(sweep_text(done, table))
        print(f"written: {parent.resolve()}/sweep.md, sweep.png and {{{','.join(name for name, _ in done)}}}/results.json, report.md, plots")
    return 0


def parse_sets(text: str | None) -> tuple[str, ...] | None:
    """``--sets forget,retain``: the sets in the order given, each one known (None: every set)."""
    from entity_unlearn.eval.catalog import SETS

    return parse_choices("--sets", text, SETS)


def parse_choices(option: str, text: str | None, known: tuple[str, ...]) -> tuple[str, ...] | None:
    """``--sets forget,retain``, ``--depths d1``: the names in the order given, each one of ``known`` (None: all)."""
    if text is None:
        return None
    names = tuple(dict.fromkeys(s.strip() for s in text.split(",") if s.strip()))
    unknown = [s for s in names if s not in known]
    if unknown or not names:
        noun = option[2:].rstrip("s")
        raise UsageError(
            f"{option} {text}: {', '.join(unknown) or 'nothing'} is not {'an' if noun[0] in 'aeiou' else 'a'} {noun}; choose among {','.join(known)}; give a comma-separated list of them"
        )
    return names
