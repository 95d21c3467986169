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


# Errors that mean bad input: one line on stderr, exit code 2. Found by name in sys.modules (a raised
# exception's module is loaded), so that a command imports only the stage it runs, not every stage.
USER_ERRORS = (
    ("entity_unlearn.cli.common", "UsageError"),
    ("entity_unlearn.builders.world.spec", "SpecError"),
    ("entity_unlearn.builders.world.templates", "TemplateProblem"),
    ("entity_unlearn.builders.world.sampler", "SamplingError"),
    ("entity_unlearn.builders.world.invariants", "WorldInvariantError"),
    ("entity_unlearn.builders.world.files", "WorldFileError"),
    ("entity_unlearn.builders.release.build", "ReleaseError"),
    ("entity_unlearn.builders.release.splits", "SplitError"),
    ("entity_unlearn.builders.release.world_knowledge", "WorldKnowledgeError"),
    ("entity_unlearn.builders.release.hub", "PublishError"),
    ("entity_unlearn.builders.llm.backend", "LLMError"),
    ("entity_unlearn.eval.data", "DataError"),
    ("entity_unlearn.eval.formatting", "FormatError"),
    ("entity_unlearn.eval.model", "ModelLoadError"),
    ("entity_unlearn.eval.served", "ServedError"),
    ("entity_unlearn.pipeline.inject", "InjectError"),
    ("entity_unlearn.pipeline.unlearn", "UnlearnError"),
    ("entity_unlearn.pipeline.study", "StudyError"),
    ("entity_unlearn.pipeline.finetune", "TrainingError"),
)


def is_user_error(exc: BaseException) -> bool:
    if isinstance(exc, KeyError):  # registries' "did you mean"
        return True
    return any(isinstance(exc, getattr(sys.modules[m], name)) for m, name in USER_ERRORS if m in sys.modules)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # the command as given (eval --num-processes relaunches it)
    from .common import quiet_libraries

    if getattr(args, "quiet", False):
        quiet_libraries()
    try:
        return args.func(args)
    except (ValueError, KeyError) as exc:
        if not is_user_error(exc):
            raise
        message = exc.args[0] if isinstance(exc, KeyError) else str(exc)
        print(f"entity-unlearn {args.command}: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
