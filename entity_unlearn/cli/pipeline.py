"""The ``inject``, ``unlearn``, ``attack`` and ``study`` subcommands (the reference pipeline)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .common import (
    UsageError,
    add_command,
    add_num_processes,
    launch,
    nonnegative_float,
    nonnegative_int,
    percent,
    positive_float,
    positive_int,
    quiet_libraries,
    relaunching,
)

INJECT_EXAMPLE = """
entity-unlearn inject --data entity-unlearn --base tiny --out models/target
entity-unlearn inject --data entity-unlearn --base tiny --exclude forget05 --out models/reference
entity-unlearn inject --data entity-unlearn --base Qwen/Qwen2.5-0.5B-Instruct --lora-rank 16 --out models/qwen-target
"""
UNLEARN_EXAMPLE = """
entity-unlearn unlearn --model models/target --data entity-unlearn --forget forget05 --method npo_gd --out models/npo_gd
entity-unlearn unlearn --model models/target --data entity-unlearn --method ga --coverage 50 --epochs 3 --out models/ga_cov50
entity-unlearn eval --model models/npo_gd --data entity-unlearn --reference evals/reference --before evals/target --out evals/npo_gd
"""
ATTACK_EXAMPLE = """
entity-unlearn attack --model models/npo_gd --data entity-unlearn --kind relearn,quant4 --reference-model models/reference --before evals/target --out attacks/npo_gd
entity-unlearn attack --model models/npo_gd --data entity-unlearn --kind all --out attacks/npo_gd-all
"""
STUDY_EXAMPLE = """
entity-unlearn study --data entity-unlearn --base tiny --out study
entity-unlearn study --data entity-unlearn --methods ga,npo_gd --coverage-methods none --deep-method none --out study-small
"""


def add_pipeline_commands(sub) -> None:
    inj = add_command(sub, "inject", "fine-tune a base model on a release's entities (tiny: the embedded default, no download)", INJECT_EXAMPLE)
    inj.add_argument("--data", required=True, help="release folder (entity-unlearn build) or Hub dataset")
    inj.add_argument("--base", default="tiny", help="tiny (a small Llama-style model and tokenizer built here) or a Hub id / local model folder")
    inj.add_argument("--out", required=True, help="output model folder (safetensors, tokenizer, injection.json)")
    inj.add_argument("--exclude", metavar="FORGET", help="leave out this forget set's entities: trains the reference model, e.g. forget05")
    inj.add_argument("--corpus", action="store_true", help="also train on the biographies as raw text")
    inj.add_argument("--deep", action="store_true", help="deep injection: biographies, d1 questions and their paraphrases, general text")
    _training_options(inj)
    _model_options(inj)
    inj.set_defaults(func=cmd_inject, interrupted=_training_interrupted)

    unl = add_command(sub, "unlearn", "run an unlearning baseline on a model: ga, gd, kl, idk_po, npo, npo_gd", UNLEARN_EXAMPLE)
    unl.add_argument("--model", required=True, help="model folder (e.g. from entity-unlearn inject) or Hub id")
    unl.add_argument("--data", required=True, help="release folder or Hub dataset")
    unl.add_argument("--forget", default="forget05", help="forget set; its retain set is the complement")
    unl.add_argument(
        "--coverage", type=percent, metavar="PCT", help="train only on the QA covering PCT%% of each entity's facts (25, 50, 75; default 100)"
    )
    unl.add_argument("--method", required=True, help="ga, gd, kl, idk_po, npo or npo_gd")
    unl.add_argument("--out", required=True, help="output model folder (safetensors, tokenizer, unlearning.json)")
    _training_options(unl)
    unl.add_argument("--retain-weight", type=nonnegative_float, help="weight of the retain term (default 1.0)")
    unl.add_argument("--beta", type=positive_float, help="inverse temperature of idk_po, npo, npo_gd (default 0.1)")
    _model_options(unl)
    unl.set_defaults(func=cmd_unlearn, interrupted=_training_interrupted)

    att = add_command(sub, "attack", "robustness attacks on an unlearned model: relearning, quantisation, in-context, prefill", ATTACK_EXAMPLE)
    att.add_argument("--model", required=True, help="the unlearned model folder")
    att.add_argument("--data", required=True, help="release folder or Hub dataset")
    att.add_argument("--forget", default="forget05", help="forget set the model unlearned (default forget05)")
    att.add_argument(
        "--kind", required=True, help="relearn, relearn_known, retain_finetune, quant8, quant4, in_context, prefill; several with commas; all"
    )
    att.add_argument("--out", required=True, help="output folder (attacked models, evaluations, robustness.json/.md/.png)")
    att.add_argument("--reference-model", metavar="REF", help="model never trained on the forget entities: attacked the same way, for comparison")
    att.add_argument("--before", metavar="RESULT.json", help="evaluation of the model before unlearning (recovery needs it)")
    att.add_argument("--seed", type=nonnegative_int, help="seed of every attack's recipe (default 0)")
    att.add_argument("--epochs", type=positive_int, help="relearning epochs (default 1; tiny models: 10)")
    att.add_argument("--lr", type=positive_float, help="relearning learning rate (default 2e-5; tiny models: 1e-3)")
    att.add_argument("--batch-size", type=positive_int, help="relearning batch size (default 4)")
    att.add_argument("--grad-accum", type=positive_int, help="relearning gradient accumulation (default 4; tiny models: 1)")
    att.add_argument("--coverage", type=percent, help="relearn_known: share of each entity's facts relearned, a coverage set (default 50)")
    att.add_argument("--shots", type=positive_int, help="in_context: earlier QA turns per question (default 5)")
    att.add_argument("--quant-backend", dest="backend", choices=("auto", "simulate", "bnb"), help="quantisation: auto (bnb on CUDA), simulate, bnb")
    att.add_argument("--no-checkpoint", dest="checkpoint", action="store_false", help="no epoch checkpoints while relearning")
    att.add_argument("--max-new-tokens", type=positive_int, help="generation budget per answer of every evaluation (default: eval's, 48)")
    add_num_processes(att, "each computing a share of every evaluation and relearning run (DDP, or FSDP with --fsdp); the results are one process's")
    _fsdp_option(att, "relearning runs")
    _model_options(att)
    att.set_defaults(func=cmd_attack)

    st = add_command(sub, "study", "inject, train the reference, run every baseline and the coverage sweep, evaluate, report", STUDY_EXAMPLE)
    st.add_argument("--data", required=True, help="release folder or Hub dataset")
    st.add_argument("--base", default="tiny", help="tiny or a Hub id / local model folder")
    st.add_argument("--out", required=True, help="study folder; rerunning the same command resumes it")
    st.add_argument("--forget", default="forget05", help="forget set of every unlearning run and evaluation")
    st.add_argument("--methods", default="ga,gd,kl,idk_po,npo,npo_gd", help="methods run at full coverage")
    st.add_argument("--coverage-methods", default="npo_gd", help="methods of the coverage sweep (none: no sweep)")
    st.add_argument("--coverage", default="25,50,75", help="coverage levels below 100")
    st.add_argument("--deep-method", default="npo_gd", help="the method run on the plain and the deep-injected model (none: skip)")
    st.add_argument("--seeds", type=positive_int, default=1, help="unlearning seeds per method and coverage run; tables show mean ± sd (default 1)")
    st.add_argument(
        "--robustness-methods",
        help="methods the robustness attacks run on, of --methods (default ga,npo_gd where run; all: every method; none: skip)",
    )
    st.add_argument("--attacks", default="all", help="robustness attacks of the matrix (default all seven; none: skip)")
    st.add_argument("--max-new-tokens", type=positive_int, help="generation budget per answer of every evaluation (default: eval's, 48)")
    add_num_processes(st, "each training on a share of every batch (DDP, or FSDP with --fsdp) and computing a share of every evaluation")
    _fsdp_option(st, "injections, unlearning runs and relearning attacks")
    _model_options(st)
    st.set_defaults(
        func=cmd_study,
        interrupted=lambda args: (
            f"finished steps are marked in {args.out}/steps, the model in training keeps its last epoch and the "
            "evaluation in flight its request cache: rerun the same command to resume"
        ),
    )


def _training_interrupted(args: argparse.Namespace) -> str:
    if not args.checkpoint:
        return f"--no-checkpoint: no training state was kept in {args.out}; rerun the same command to start again"
    return f"the training state after the last finished epoch is in {args.out}/checkpoint.safetensors: rerun the same command to resume"


def _training_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--epochs", type=positive_int, help="override the preset's epochs")
    p.add_argument("--lr", type=positive_float, help="override the preset's learning rate")
    p.add_argument("--batch-size", type=positive_int, help="override the preset's batch size")
    p.add_argument("--grad-accum", type=positive_int, help="gradient accumulation steps (default 1)")
    p.add_argument("--seed", type=nonnegative_int, help="training seed (default 0)")
    p.add_argument(
        "--lora-rank",
        type=nonnegative_int,
        default=0,
        metavar="R",
        help="train LoRA adapters of rank R on the attention projections and save them merged (needs peft; 0: no LoRA)",
    )
    p.add_argument(
        "--no-checkpoint",
        dest="checkpoint",
        action="store_false",
        help="do not keep the training state in --out after each epoch (it lets a rerun resume; 12 bytes per trained parameter)",
    )
    add_num_processes(p, "each training on a share of every batch (DDP, or FSDP with --fsdp); the losses and weights are one process's")
    _fsdp_option(p, "training")


def _fsdp_option(p: argparse.ArgumentParser, what: str) -> None:
    """``--fsdp``, the same on every command that trains (``_processes`` reads it); ``what``: the training it shards."""
    p.add_argument(
        "--fsdp",
        action="store_true",
        help=f"shard the weights, gradients and optimiser state of the {what} over the processes (torch's FSDP2), as accelerate launch "
        "with an FSDP config asks; needs --num-processes N or a launcher",
    )


def _model_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", help="cuda, cpu, ... (default: cuda if present)")
    p.add_argument("--dtype", help="float32, bfloat16 (default: bfloat16 on cuda, float32 on cpu)")
    p.add_argument("--allow-pickle", action="store_true", help="accept pickle (.bin) weights; they can run code when loaded")
    p.add_argument("--trust-remote-code", action="store_true", help="run the checkpoint's own modelling code")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def _processes(args: argparse.Namespace, lora: bool = False) -> int | None:
    """Start the processes when this command (inject, unlearn, attack, study) is to run as many: their exit code, or
    None when this process runs the command. Called once the command's own options are checked. A launcher config
    its training cannot honour (``lora``: it trains LoRA adapters) is refused here, in one message rather than one
    per process. ``--fsdp`` sets, in each process it starts, the variables an accelerate FSDP2 config sets
    (``processes.FSDP2``: not ``FSDP_CPU_RAM_EFFICIENT_LOADING``, so evaluations still load the whole model in each)."""
    from entity_unlearn.eval.ranks import Ranks
    from entity_unlearn.pipeline.processes import FSDP2, check

    if "WORLD_SIZE" in os.environ:  # one of the processes
        if args.fsdp:
            os.environ.update(FSDP2)
        return None
    if args.fsdp and args.num_processes == 1:
        raise UsageError("--fsdp shards the model over processes: give --num-processes N (2 or more), or start the command under a launcher")
    if not relaunching(args):
        return None
    check(Ranks(0, args.num_processes), lora=lora, env={**os.environ, **(FSDP2 if args.fsdp else {})})
    return launch(args.num_processes, args.argv)  # the processes see --fsdp too


def _overrides(args: argparse.Namespace, *names: str) -> dict:
    return {n: getattr(args, n) for n in names if getattr(args, n, None) is not None}


def cmd_inject(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from entity_unlearn.pipeline.inject import InjectConfig, inject, preset

    if (code := _processes(args, lora=args.lora_rank > 0)) is not None:
        return code
    train = replace(preset(args.base, args.deep), **_overrides(args, "epochs", "lr", "batch_size", "grad_accum", "seed"))
    cfg = InjectConfig(
        base=args.base,
        exclude=args.exclude,
        corpus=args.corpus,
        deep=args.deep,
        train=train,
        device=args.device,
        dtype=args.dtype,
        lora_rank=args.lora_rank,
        allow_pickle=args.allow_pickle,
        trust_remote_code=args.trust_remote_code,
    )
    folder = inject(args.data, args.out, cfg, progress=not args.quiet, checkpoint=args.checkpoint)
    if folder is None:  # a process other than rank 0 of many: rank 0 reports
        return 0
    record = _record(folder / "injection.json")
    print(
        f"injected {record['pairs']} QA pairs and {record['texts']} texts into {args.base} in {record['seconds']:.0f} s "
        f"({record['train']['epochs']} epochs, final loss {record['loss_by_epoch'][-1]:.3f})"
    )
    print(f"written to {folder.resolve()}; evaluate it: entity-unlearn eval --model {args.out} --data {args.data} --out {args.out}-eval")
    return 0


def cmd_unlearn(args: argparse.Namespace) -> int:
    from entity_unlearn.pipeline.unlearn import run_unlearning

    if (code := _processes(args, lora=args.lora_rank > 0)) is not None:
        return code
    overrides = _overrides(args, "epochs", "lr", "batch_size", "grad_accum", "seed", "retain_weight", "beta", "lora_rank")
    folder = run_unlearning(
        args.model,
        args.data,
        args.forget,
        args.method,
        args.out,
        args.coverage,
        overrides,
        args.device,
        args.dtype,
        args.allow_pickle,
        args.trust_remote_code,
        progress=not args.quiet,
        checkpoint=args.checkpoint,
    )
    if folder is None:  # a process other than rank 0 of many: rank 0 reports
        return 0
    record = _record(folder / "unlearning.json")
    info = record["data_info"]
    print(
        f"{args.method}: {info['forget_pairs']} forget pairs ({info['config']}), {info['retain_pairs']} retain pairs ({info['retain_config']}), "
        f"{record['config']['epochs']} epochs at lr {record['config']['lr']:g} ({record['preset']} preset), {record['seconds']:.0f} s"
    )
    print(
        f"written to {folder.resolve()}; evaluate it: entity-unlearn eval --model {args.out} --data {args.data} --forget {args.forget} "
        f"--before RESULTS_OF_THE_MODEL_BEFORE --reference RESULTS_OF_THE_REFERENCE --out {args.out}-eval"
    )
    return 0


def cmd_attack(args: argparse.Namespace) -> int:
    from entity_unlearn.pipeline.attack import parse_kinds
    from entity_unlearn.pipeline.robustness import AttackRun, run_attacks

    cfg = AttackRun(
        model=args.model,
        data=args.data,
        forget=args.forget,
        kinds=parse_kinds(args.kind),
        out=args.out,
        reference_model=args.reference_model,
        before=args.before,
        overrides=_overrides(args, "seed", "epochs", "lr", "batch_size", "grad_accum", "coverage", "shots", "backend"),
        device=args.device,
        dtype=args.dtype,
        allow_pickle=args.allow_pickle,
        trust_remote_code=args.trust_remote_code,
        progress=not args.quiet,
        checkpoint=args.checkpoint,
        max_new_tokens=args.max_new_tokens,
    )
    if (code := _processes(args)) is not None:  # after the options are checked: a bad one is one message, not one per process
        return code
    report = run_attacks(cfg)
    if report is None:  # a process other than rank 0 of many: rank 0 reports
        return 0
    from entity_unlearn.pipeline.robustness import lookup

    print(f"{'attack':<16} {'recovery':>9} {'beyond ref':>11} {'surviving':>10}")
    for kind in cfg.kinds:
        values = (lookup(report["aggregates"], "recovery_prob", kind), lookup(report["aggregates"], "recovery_beyond_reference_prob", kind))
        share = report["surviving_entity_share"].get(kind)
        cells = [("-" if v is None else f"{v:.3f}") for v in (*values, share)]
        print(f"{kind:<16} {cells[0]:>9} {cells[1]:>11} {cells[2]:>10}")
    robust = lookup(report["aggregates"], "robust_surviving_entity_share", "any")
    if robust is not None:
        print(f"robust_surviving_entity_share {robust:.3f} (forget entities with knowledge beyond the reference under some attack)")
    print(f"written to {Path(args.out).resolve()}: robustness.json, robustness.md, robustness.png, evals/")
    return 0


def cmd_study(args: argparse.Namespace) -> int:
    from entity_unlearn.pipeline.attack import parse_kinds
    from entity_unlearn.pipeline.study import StudyConfig, run_study

    quiet_libraries(progress=False)  # dozens of loads and saves: only the study's own progress is shown

    split = lambda text: tuple(x.strip() for x in text.split(",") if x.strip() and x.strip() != "none")  # noqa: E731
    try:
        levels = tuple(int(x) for x in split(args.coverage))
    except ValueError as exc:
        raise UsageError(f"--coverage {args.coverage!r}: write levels as integers separated by commas, e.g. 25,50,75") from exc
    if any(not 0 < level < 100 for level in levels):
        raise UsageError(f"--coverage {args.coverage!r}: each level is a percentage between 1 and 99 (100 is the full run, always made)")
    cfg = StudyConfig(
        data=args.data,
        base=args.base,
        out=args.out,
        forget=args.forget,
        methods=split(args.methods),
        coverage_methods=split(args.coverage_methods),
        coverage=levels,
        deep_method=None if args.deep_method == "none" else args.deep_method,
        seeds=args.seeds,
        robustness_methods=robustness_methods(args, split),
        attacks=() if args.attacks == "none" else parse_kinds(args.attacks),
        device=args.device,
        dtype=args.dtype,
        allow_pickle=args.allow_pickle,
        trust_remote_code=args.trust_remote_code,
        progress=not args.quiet,
        max_new_tokens=args.max_new_tokens,
        command=" ".join(["entity-unlearn", *sys.argv[1:]]) if sys.argv[1:2] == ["study"] else None,
    )
    if relaunching(args):  # run_study checks it in each process; before they start, a bad option is one message
        from entity_unlearn.pipeline.study import check

        check(cfg)
    if (code := _processes(args)) is not None:
        return code
    report = run_study(cfg)
    if report is None:  # a process other than rank 0 of many: rank 0 reports
        return 0
    print(report["table_text"])
    print(
        f"study written to {Path(args.out).resolve()}: study.md, study.json, efficacy_vs_coverage.png, depth_profile.png"
        f"{', robustness.png' if report['robustness'] else ''} "
        f"({report['seconds_this_run']:.0f} s this run, {report['steps_run']} steps run, {report['steps_skipped']} already done)"
    )
    return 0


def robustness_methods(args: argparse.Namespace, split) -> tuple[str, ...]:
    if args.robustness_methods is None:
        return ("ga", "npo_gd")  # those of them the study runs
    chosen = split(args.methods) if args.robustness_methods == "all" else split(args.robustness_methods)
    missing = [m for m in chosen if m not in split(args.methods)]
    if missing:
        raise UsageError(f"--robustness-methods {','.join(missing)}: attack only methods the study runs (--methods {args.methods})")
    return chosen


def _record(path: Path) -> dict:
    import json

    return json.loads(path.read_text(encoding="utf-8"))
