"""The ``entity-unlearn`` command line: one module per command group, this one assembles them.

``world`` (generate, build, publish), ``audit`` (audit), ``evaluate`` (eval), ``export`` (export), ``pipeline`` (inject, unlearn,
study), ``hub`` (submit, score-queue, leaderboard); ``common`` holds what they share (the help
formatter, option types, the usage error). Command modules import their stage lazily, so
``entity-unlearn --help`` imports no torch.

Errors: a user-fixable error (``EntityUnlearnError``), an ``OSError`` or a network error
prints one line and exits 2 (1 for the last two); Ctrl-C prints what was saved and how to
resume and exits 130; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import atexit
import os
import shlex
import sys
import threading

from .common import HelpFormatter


class VersionAction(argparse.Action):
    """``--version``: the installed version, looked up only when asked (importlib.metadata would cost ``--help`` a
    third of its time)."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help=None) -> None:
        super().__init__(option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        from entity_unlearn import __version__

        print(f"entity-unlearn {__version__}")
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="entity-unlearn",
        description="Fictitious-entity worlds, releases and unlearning evaluation.",
        formatter_class=HelpFormatter,
        epilog="Run `entity-unlearn COMMAND --help` for a command's options and a worked example.",
    )
    parser.add_argument("--version", action=VersionAction, help="print the version and exit")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    from .audit import add_audit_command
    from .evaluate import add_eval_command
    from .export import add_export_command
    from .hub import add_hub_commands
    from .pipeline import add_pipeline_commands
    from .world import add_world_commands

    add_world_commands(sub)
    add_audit_command(sub)
    add_eval_command(sub)
    add_export_command(sub)
    add_pipeline_commands(sub)
    add_hub_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    from entity_unlearn.errors import EntityUnlearnError, user_message

    from .common import quiet_libraries

    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # the command as given (eval --num-processes relaunches it)
    args.command_line = shlex.join(["entity-unlearn", *(sys.argv[1:] if argv is None else argv)])  # recorded in outputs
    quiet_libraries(progress=not getattr(args, "quiet", False))
    try:
        return args.func(args)
    except KeyboardInterrupt:
        saved = args.interrupted(args) if hasattr(args, "interrupted") else "rerun the same command"
        print(f"entity-unlearn {args.command}: interrupted; {saved}", file=sys.stderr)
        return 130
    except Exception as exc:
        message = user_message(exc)
        if message is None:
            raise  # a bug: its traceback is what a report needs
        print(f"entity-unlearn {args.command}: error: {' '.join(message.split())}", file=sys.stderr)
        return 2 if isinstance(exc, EntityUnlearnError) else 1


def run() -> None:
    """The console script: ``main()``, then out of the process without the interpreter's teardown.

    Once torch and transformers are imported, Python's finalisation (freeing every module and object one
    at a time) takes 0.3-0.8 s after the work is written: a quarter of a small evaluation's overhead. Every
    file this package writes is closed by then (``with`` blocks), so the exit handlers run (logging,
    multiprocessing, tqdm), stdout and stderr are flushed, and the process ends with ``os._exit``. An
    exception leaves the usual way (its traceback, argparse's exits), and so does a run that leaves a
    non-daemon thread working, which the usual exit waits for."""
    code = main() or 0
    if any(t.is_alive() and not t.daemon for t in threading.enumerate() if t is not threading.main_thread()):
        sys.exit(code)
    atexit._run_exitfuncs()  # what the interpreter runs first at exit; the teardown after it is what is skipped
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe or a full disk: the status Python gives an unflushable stdout
            code = code or 120
    os._exit(code)


if __name__ == "__main__":
    run()
