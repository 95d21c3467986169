"""The ``entity-unlearn`` command line."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


class UsageError(ValueError):
    """A command-line option is malformed; the message names it."""


def parse_types(text: str) -> dict[str, int]:
    """``person=150,organisation=30`` -> {"person": 150, "organisation": 30}."""
    counts: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, n = part.partition("=")
        if not sep or not n.strip().isdigit():
            raise UsageError(f"--types: cannot read {part!r}; write TYPE=COUNT pairs separated by commas, e.g. person=150,place=20")
        counts[name.strip()] = int(n)
    if not counts:
        raise UsageError("--types: give at least one TYPE=COUNT pair")
    return counts


def cmd_generate(args: argparse.Namespace) -> int:
    from entity_unlearn.builders import default_registry, generate_world, split_counts, write_world

    registry = default_registry(tuple(args.type_spec))
    if args.types:
        counts = parse_types(args.types)
    elif args.entities is not None:
        counts = split_counts(args.entities)
    else:
        raise UsageError("give --entities N or --types TYPE=COUNT,...")
    for extra in registry.names():
        counts.setdefault(extra, 0)
    start = time.perf_counter()
    world = generate_world(counts, seed=args.seed, k_perturbed=args.k, registry=registry, progress=not args.quiet)
    manifest = write_world(world, args.out)
    took = time.perf_counter() - start
    print(f"world: {manifest['n_entities']} entities {manifest['counts']}, {manifest['n_facts']} facts, {manifest['n_probes']} probes")
    print(f"probes by depth: {manifest['probes_by_depth']}")
    print(f"probes by attack: {manifest['probes_by_attack']}")
    print(f"seed {args.seed}, K={args.k}, {took:.1f} s ({manifest['n_entities'] / took:.0f} entities/s, {manifest['n_probes'] / took:.0f} probes/s)")
    print(f"written to {Path(args.out).resolve()} (manifest.json lists file hashes)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="entity-unlearn", description="Fictitious-entity worlds, releases and unlearning evaluation.")
    sub = parser.add_subparsers(dest="command", required=True)
    gen = sub.add_parser("generate", help="sample a world and render its biographies and probes as JSONL")
    gen.add_argument("--entities", type=int, help="number of entities, split 75%% persons, 15%% organisations, 10%% places")
    gen.add_argument("--types", help="exact mix, e.g. person=150,organisation=30,place=20 (overrides --entities)")
    gen.add_argument("--seed", type=int, default=0)
    gen.add_argument("--k", type=int, default=5, help="perturbed (wrong) answers per probe (default 5)")
    gen.add_argument("--type-spec", action="append", default=[], metavar="FILE", help="an extra entity type (TOML); its templates live beside it")
    gen.add_argument("--out", required=True, help="output folder")
    gen.add_argument("--quiet", action="store_true", help="no progress bar")
    gen.set_defaults(func=cmd_generate)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from entity_unlearn.builders import SamplingError, SpecError, TemplateProblem, WorldFileError, WorldInvariantError

    try:
        return args.func(args)
    except (UsageError, SpecError, TemplateProblem, SamplingError, WorldInvariantError, WorldFileError, KeyError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) else str(exc)
        print(f"entity-unlearn {args.command}: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
