"""The ``submit``, ``score-queue`` and ``leaderboard`` subcommands (scoring checkpoints through the Hub)."""

from __future__ import annotations

import argparse
import sys

from .common import add_batch_groups, add_command, positive_float, positive_int

SUBMIT_EXAMPLE = """
entity-unlearn submit --model my-org/npo-model@main --queue my-org/eu-queue --release my-org/entity-unlearn@v1.0.0 \\
    --reference-model my-org/reference --base my-org/target --method npo_gd
"""
SCORE_QUEUE_EXAMPLE = """
entity-unlearn score-queue --queue my-org/eu-queue --results my-org/eu-results --once
entity-unlearn score-queue --queue my-org/eu-queue --results my-org/eu-results --poll 300 --device cuda
"""
LEADERBOARD_EXAMPLE = """
entity-unlearn leaderboard --results my-org/eu-results --out site
entity-unlearn leaderboard --results evals/ --out site
"""


def add_hub_commands(sub) -> None:
    s = add_command(sub, "submit", "queue a Hub model for scoring: one request file in the queue dataset", SUBMIT_EXAMPLE)
    s.add_argument("--model", required=True, metavar="ORG/NAME[@REV]", help="the checkpoint; its revision is resolved to a commit hash")
    s.add_argument("--queue", required=True, metavar="ORG/NAME", help="the queue dataset repo")
    s.add_argument("--release", required=True, metavar="ORG/NAME@REV", help="the release and its version, e.g. my-lab/entity-unlearn@v1.0.0")
    s.add_argument("--forget", default="forget05", help="forget set")
    s.add_argument("--reference-model", metavar="ORG/NAME[@REV]", help="a model never trained on the forget entities; queued too if new")
    s.add_argument("--base", metavar="ORG/NAME[@REV]", help="the model before unlearning (forget efficacy once it is scored)")
    s.add_argument("--method", help="name of the unlearning method, shown on the leaderboard")
    s.add_argument("--notes", default="", help="free text shown with the request")
    s.add_argument("--dtype", default="auto", help="auto, float32, bfloat16 or float16 (default auto: bfloat16 on GPU, float32 on CPU)")
    s.add_argument("--chat-template", default="auto", help="auto (the tokenizer's, else plain) or none (plain Question/Answer)")
    s.add_argument("--open-pr", action="store_true", help="once scored, open a pull request on the model repo with the results")
    s.set_defaults(func=cmd_submit)

    q = add_command(sub, "score-queue", "score pending requests of a queue and upload the results", SCORE_QUEUE_EXAMPLE)
    q.add_argument("--queue", required=True, metavar="ORG/NAME", help="the queue dataset repo")
    q.add_argument("--results", required=True, metavar="ORG/NAME", help="the results dataset repo (created if missing)")
    mode = q.add_mutually_exclusive_group()
    mode.add_argument("--once", action="store_true", help="score every pending request, then exit (the default)")
    mode.add_argument("--poll", type=positive_float, metavar="SECONDS", help="keep running: look for new requests every SECONDS")
    q.add_argument("--work", default="scorer-work", help="local folder: downloaded models, request caches (a rerun resumes), lease id")
    q.add_argument("--lease-hours", type=positive_float, default=6.0, help="how long a claim holds before another scorer may retry it")
    q.add_argument("--limit", type=positive_int, help="stop after scoring this many requests")
    q.add_argument("--device", help="cuda, cpu, ... (default: cuda if present)")
    q.add_argument(
        "--max-new-tokens", type=positive_int, default=48, help="greedy answer length, as eval's (keep it the same for every run of a leaderboard)"
    )
    add_batch_groups(q)
    q.add_argument("--batch-generate", type=positive_int, default=32, help="questions per generation batch")
    q.add_argument("--no-pull-requests", action="store_true", help="never open pull requests on model repos, even when asked")
    q.add_argument("--quiet", action="store_true", help="no progress bars")
    q.set_defaults(func=cmd_score_queue)

    lb = add_command(sub, "leaderboard", "write the static leaderboard site from a results dataset or local eval folders", LEADERBOARD_EXAMPLE)
    lb.add_argument("--results", required=True, metavar="ORG/NAME|DIR", help="results dataset repo, or a folder of eval outputs at any depth")
    lb.add_argument("--out", default="site", help="output folder")
    lb.add_argument("--hub-url", help="base URL of links to models and releases (default HF_ENDPOINT, else https://huggingface.co)")
    lb.set_defaults(func=cmd_leaderboard)


def cmd_submit(args: argparse.Namespace) -> int:
    from entity_unlearn.eval.hub import SubmitConfig, submit

    written = submit(
        SubmitConfig(
            model=args.model,
            queue=args.queue,
            release=args.release,
            forget=args.forget,
            reference_model=args.reference_model,
            base=args.base,
            method=args.method,
            notes=args.notes,
            dtype=args.dtype,
            chat_template=args.chat_template,
            open_pr=args.open_pr,
        )
    )
    for r in written:
        print(f"queued {r.role}: {r.model}@{r.commit} on {r.release}@{r.release_revision} {r.forget} -> {args.queue}/{r.path}")
    return 0


def cmd_score_queue(args: argparse.Namespace) -> int:
    from entity_unlearn.eval.hub import ScorerConfig, score_queue

    done = score_queue(
        ScorerConfig(
            queue=args.queue,
            results=args.results,
            work=args.work,
            poll=args.poll,
            lease_seconds=args.lease_hours * 3600,
            limit=args.limit,
            device=args.device,
            max_new_tokens=args.max_new_tokens,
            batch_groups=args.batch_groups,
            batch_generate=args.batch_generate,
            progress=not args.quiet,
            open_prs=not args.no_pull_requests,
        ),
        log=lambda line: print(line, flush=True),
    )
    finished = sum(o.status == "finished" for o in done)
    print(f"scored {len(done)} request(s): {finished} finished, {len(done) - finished} failed")
    return 0


def cmd_leaderboard(args: argparse.Namespace) -> int:
    from entity_unlearn.eval.hub import SiteConfig, build_site

    made = build_site(SiteConfig(results=args.results, out=args.out, hub_url=args.hub_url))
    print(f"leaderboard of {made['runs']} run(s): {made['out']}/index.html ({made['bytes'] / 1024:.0f} KiB in all)", file=sys.stdout)
    return 0
