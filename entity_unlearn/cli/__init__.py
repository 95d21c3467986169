"""The ``entity-unlearn`` command line: one module per command group, this one assembles them.

``world`` (generate, build, publish), ``evaluate`` (eval), ``pipeline`` (inject, unlearn,
study); ``common`` holds what they share. Command modules import their stage lazily,
so ``entity-unlearn --help`` imports no torch.
"""

from __future__ import annotations

import argparse
import sys


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="entity-unlearn", description="Fictitious-entity worlds, releases and unlearning evaluation.")
    sub = parser.add_subparsers(dest="command", required=True)
    from .evaluate import add_eval_command
    from .pipeline import add_pipeline_commands
    from .world import add_world_commands

    add_world_commands(sub)
    add_eval_command(sub)
    add_pipeline_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from entity_unlearn.builders import (
        LLMError,
        PublishError,
        ReleaseError,
        SamplingError,
        SpecError,
        SplitError,
        TemplateProblem,
        WorldFileError,
        WorldInvariantError,
        WorldKnowledgeError,
    )
    from entity_unlearn.eval import DataError, FormatError, ModelLoadError
    from entity_unlearn.pipeline.attack import AttackError
    from entity_unlearn.pipeline.finetune import TrainingError
    from entity_unlearn.pipeline.inject import InjectError
    from entity_unlearn.pipeline.study import StudyError
    from entity_unlearn.pipeline.unlearn import UnlearnError

    from .common import UsageError, quiet_libraries

    if getattr(args, "quiet", False):
        quiet_libraries()
    try:
        return args.func(args)
    except (
        UsageError,
        SpecError,
        TemplateProblem,
        SamplingError,
        WorldInvariantError,
        WorldFileError,
        ReleaseError,
        SplitError,
        WorldKnowledgeError,
        PublishError,
        LLMError,
        DataError,
        FormatError,
        ModelLoadError,
        InjectError,
        UnlearnError,
        StudyError,
        TrainingError,
        AttackError,
        KeyError,
    ) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) else str(exc)
        print(f"entity-unlearn {args.command}: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
