"""The ``audit`` subcommand: the validity report of a release or world folder."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .common import add_command


def add_audit_command(sub) -> None:
    aud = add_command(
        sub,
        "audit",
        help="check that a release or world measures knowledge, not shortcuts (heuristic baselines, leakage, variety, consistency, splits)",
        example="entity-unlearn build --entities 200 --seed 0 --out entity-unlearn\n"
        "entity-unlearn audit entity-unlearn --json audit.json --strict   # exit status 1 if a threshold is broken",
    )
    aud.add_argument(
        "folder", metavar="RELEASE_OR_WORLD", help="a release folder (`entity-unlearn build`) or a world folder (`entity-unlearn generate`)"
    )
    aud.add_argument("--json", metavar="OUT", help="also write the whole report (every number, examples) as JSON to this file")
    aud.add_argument("--strict", action="store_true", help="exit with status 1 when any threshold is broken")
    aud.add_argument("--thresholds", metavar="FILE", help="thresholds TOML (default: the package's builders/audit/thresholds.toml)")
    aud.add_argument("--quiet", action="store_true", help="no progress bar")
    aud.set_defaults(func=cmd_audit)


def cmd_audit(args: argparse.Namespace) -> int:
    from entity_unlearn.builders.audit import THRESHOLDS_FILE, audit_folder, load_thresholds, render_audit

    thresholds = load_thresholds(args.thresholds or THRESHOLDS_FILE)
    report = audit_folder(args.folder, thresholds=thresholds, progress=not args.quiet)
    print(render_audit(report), end="")
    if args.json:
        out = Path(args.json)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(out.name + ".tmp")
        tmp.write_text(json.dumps(report, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")
        tmp.replace(out)
        print(f"report written to {out.resolve()}")
    if args.strict and report["verdict"] != "pass":
        print(f"entity-unlearn audit: {len(report['failures'])} threshold(s) broken (--strict)", file=sys.stderr)
        return 1
    return 0
