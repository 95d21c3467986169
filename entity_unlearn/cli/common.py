"""What every command module shares: the help formatter, option types, the usage error, quieting libraries."""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import warnings

from entity_unlearn.errors import EntityUnlearnError

# A world larger than this is refused unless --max-entities raises the bound: 1e9 entities would fill the disk.
MAX_ENTITIES = 10_000


class UsageError(EntityUnlearnError, ValueError):
    """A command-line option is malformed; the message names it."""


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Every option's help ends with its default (when it has one); the epilog's worked examples keep their lines.

    Commands added by other modules (``audit``, ``export``) take it as ``formatter_class``."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        shown = not (default is None or isinstance(default, bool) or default == argparse.SUPPRESS or default == [])  # 0 is a default, False is not
        if action.option_strings and "%(default)" not in text and shown:
            text += " (default: %(default)s)"
        return text


def add_command(sub, name: str, help: str, example: str, description: str | None = None) -> argparse.ArgumentParser:
    """A subcommand with the shared formatter and an epilog holding a worked example (``example``: command lines)."""
    return sub.add_parser(name, help=help, description=description or help, formatter_class=HelpFormatter, epilog="example:\n" + _indent(example))


def _indent(text: str) -> str:
    return "\n".join("  " + line if line.strip() else line for line in text.strip("\n").splitlines())


def _number(kind: type, text: str) -> int | float:
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not {'an integer' if kind is int else 'a number'}") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def positive_int(text: str) -> int:
    """An integer of at least 1."""
    value = _number(int, text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give a whole number of at least 1")
    return value


def nonnegative_int(text: str) -> int:
    """An integer of at least 0."""
    value = _number(int, text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: give a whole number of at least 0")
    return value


def positive_float(text: str) -> float:
    """A finite number above 0."""
    value = _number(float, text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: give a number above 0")
    return value


def nonnegative_float(text: str) -> float:
    """A finite number of at least 0."""
    value = _number(float, text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: give a number of at least 0")
    return value


def percent(text: str) -> int:
    """A whole percentage strictly between 0 and 100."""
    value = _number(int, text)
    if not 0 < value < 100:
        raise argparse.ArgumentTypeError(f"{text!r}: give a whole percentage between 1 and 99")
    return value


def split_revision(option: str, text: str) -> tuple[str, str | None]:
    """``ORG/NAME@REVISION`` -> (``ORG/NAME``, ``REVISION``); a local path (which may hold an "@") is kept whole."""
    from pathlib import Path

    if "@" not in text or Path(text).exists():
        return text, None
    name, _, revision = text.partition("@")
    if not name or not revision:
        raise UsageError(f"{option} {text!r}: write a local folder, a Hub id, or ORG/NAME@REVISION (a branch, tag or commit)")
    return name, revision


def check_entity_bound(option: str, n: int, bound: int) -> None:
    """Refuse a world of more than ``bound`` entities: the bound is raised deliberately with --max-entities."""
    if n > bound:
        raise UsageError(
            f"{option}: {n:,} entities is above the limit of {bound:,} (a world of this size takes hours and gigabytes); "
            f"pass --max-entities {n} if you mean it"
        )


def quiet_libraries(progress: bool = True) -> None:
    """Silence the libraries' deprecation and advisory messages (they are not the user's to act on); without
    ``progress`` (--quiet) also the progress bars of datasets and transformers (loading, caching, saving)."""
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)
    import os

    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    if progress:
        return
    # a library not imported yet is told through its environment variable, so that --quiet imports nothing
    if "datasets" in sys.modules:
        sys.modules["datasets"].disable_progress_bars()
    else:
        os.environ["HF_DATASETS_DISABLE_PROGRESS_BARS"] = "1"
    if "transformers" in sys.modules:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    else:
        os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"  # transformers reads it at import


def add_num_processes(p: argparse.ArgumentParser, what: str) -> None:
    """``--num-processes N``: the command runs itself as N processes (``launch``)."""
    p.add_argument("--num-processes", type=positive_int, default=1, metavar="N", help=f"run N processes (torch.distributed.run), {what}")


def add_batch_groups(p: argparse.ArgumentParser) -> None:
    """``--batch-groups``, as ``eval`` and ``score-queue`` take it. Its slot bound is ``eval.model.TREE_SLOTS``, written
    out rather than imported (``--help`` imports no evaluation code); a test holds the two equal."""
    p.add_argument(
        "--batch-groups",
        type=positive_int,
        default=16,
        help="most questions per scoring batch (each with all its candidate answers; packed as rows, a batch also stops at 1024 token slots)",
    )


def relaunching(args: argparse.Namespace) -> bool:
    """Whether this command should start ``--num-processes`` copies of itself (not when a launcher started it)."""
    return args.num_processes > 1 and "WORLD_SIZE" not in os.environ


def launch(n: int, argv: list[str]) -> int:
    """Run this same command as ``n`` processes with ``torch.distributed.run`` (what ``accelerate launch`` runs too)."""
    rest, skip = [], False
    for a in argv:
        if skip:
            skip = False
            continue
        if a == "--num-processes":
            skip = True
            continue
        if not a.startswith("--num-processes="):
            rest.append(a)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={n}", "-m", "entity_unlearn", *rest]
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // n)))}
    return subprocess.run(cmd, env=env).returncode
