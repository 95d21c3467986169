"""The ``export`` subcommand: an evaluation in another tool's layout (lm-evaluation-harness)."""

from __future__ import annotations

import argparse

from .common import add_command

EXAMPLE = """\
entity-unlearn eval --model my-model --data entity-unlearn --out eval-out
entity-unlearn export eval-out --format lm-eval --out eval-out-lmeval
# eval-out-lmeval/results_<date>.json: per task entity_unlearn_<set> (forget, retain, ...) "<metric>,none" and
# "<metric>_stderr,none", configs, versions, n-samples, config (model args), git_hash, date;
# samples_entity_unlearn_<set>_<date>.jsonl: one line per item (doc, target, arguments, resps, its metrics)"""


def add_export_command(sub) -> None:
    ex = add_command(
        sub,
        "export",
        help="write an evaluation in lm-evaluation-harness's layout (results_<date>.json + samples_<task>_<date>.jsonl)",
        example=EXAMPLE,
    )
    ex.add_argument("eval_dir", metavar="EVAL_DIR", help="an `entity-unlearn eval` output folder (or its results.json)")
    ex.add_argument("--format", default="lm-eval", choices=["lm-eval"], help="the layout to write")
    ex.add_argument("--out", required=True, help="output folder (created if needed)")
    ex.add_argument("--force", action="store_true", help="write into an --out that holds other files (only the export's own files are replaced)")
    ex.set_defaults(func=cmd_export)


def cmd_export(args: argparse.Namespace) -> int:
    from entity_unlearn.eval.lmeval_export import export

    files = export(args.eval_dir, args.out, args.format, args.force)
    for path in files:
        print(f"written: {path.resolve()}")
    return 0
