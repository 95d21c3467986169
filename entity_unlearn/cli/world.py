"""The ``generate``, ``build`` and ``publish`` subcommands (worlds and releases)."""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from .common import MAX_ENTITIES, UsageError, add_command, check_entity_bound, nonnegative_int, positive_float, positive_int

GENERATE_EXAMPLE = """
entity-unlearn generate --entities 200 --seed 0 --out world
entity-unlearn generate --types person=20,organisation=4,place=3,band=10 --type-spec my_types/band.toml --out bands
entity-unlearn generate --entities 50 --llm llama3.1:8b --llm-base-url http://localhost:8000/v1 --out world-llm
"""
BUILD_EXAMPLE = """
entity-unlearn build --entities 200 --seed 0 --version 1.0.0 --out entity-unlearn
entity-unlearn build --world world-llm --version 1.1.0 --previous entity-unlearn --out entity-unlearn-1.1
python -c "from datasets import load_dataset; print(load_dataset('entity-unlearn', 'forget05'))"
"""
PUBLISH_EXAMPLE = """
HF_TOKEN=hf_... entity-unlearn publish entity-unlearn --repo my-org/entity-unlearn
python -c "from datasets import load_dataset; print(load_dataset('my-org/entity-unlearn', 'forget05', revision='v1.0.0'))"
"""


def add_world_commands(sub) -> None:
    gen = add_command(sub, "generate", "sample a world and render its biographies and probes as JSONL", GENERATE_EXAMPLE)
    gen.add_argument("--entities", type=positive_int, help="number of entities, split 75%% persons, 15%% organisations, 10%% places")
    gen.add_argument("--types", help="exact mix, e.g. person=150,organisation=30,place=20 (overrides --entities)")
    gen.add_argument("--max-entities", type=positive_int, default=MAX_ENTITIES, metavar="N", help="refuse a world of more entities than this")
    gen.add_argument("--seed", type=nonnegative_int, default=0, help="world seed: the same seed and version give the same files")
    gen.add_argument("--k", type=positive_int, default=5, help="perturbed (wrong) answers per probe")
    gen.add_argument("--type-spec", action="append", default=[], metavar="FILE", help="an extra entity type (TOML); its templates live beside it")
    gen.add_argument("--out", required=True, help="output folder (written aside and moved into place when complete)")
    gen.add_argument(
        "--force", action="store_true", help="write into an existing --out that is not a world (only the world's own files are replaced)"
    )
    gen.add_argument("--quiet", action="store_true", help="no progress bar")
    gen.add_argument(
        "--llm",
        metavar="MODEL",
        help="write biographies, paraphrases and wrong answers with this model "
        "(any OpenAI-compatible endpoint); every output is checked against the fact graph",
    )
    gen.add_argument("--llm-base-url", metavar="URL", help="endpoint base URL, e.g. http://localhost:8000/v1 (default $OPENAI_BASE_URL, else OpenAI)")
    gen.add_argument("--llm-api-key-env", default="OPENAI_API_KEY", metavar="NAME", help="environment variable holding the API key")
    gen.add_argument("--llm-concurrency", type=positive_int, default=32, metavar="N", help="requests in flight")
    gen.add_argument("--llm-timeout", type=positive_float, default=60.0, metavar="S", help="seconds before a request is retried")
    gen.add_argument("--llm-attempts", type=positive_int, default=3, metavar="N", help="answers per task before falling back to the template wording")
    gen.add_argument("--llm-cache", metavar="DIR", help="answer cache; rerunning with it resumes and costs nothing (default <out>/.llm-cache)")
    gen.add_argument("--llm-tasks", default="bio,paraphrase,perturb", help="which wording the LLM writes")
    gen.set_defaults(func=cmd_generate, interrupted=_generate_interrupted)
    bld = add_command(sub, "build", "build a versioned release (parquet configs, dataset card, manifest) from a new or given world", BUILD_EXAMPLE)
    bld.add_argument(
        "--entities", type=positive_int, help="training persons; organisations (N/5), places (2N/15) and holdout persons (N/10) are added"
    )
    bld.add_argument(
        "--max-entities", type=positive_int, default=MAX_ENTITIES, metavar="N", help="refuse a release of more training persons than this"
    )
    bld.add_argument("--seed", type=nonnegative_int, help="world seed (default 0)")
    bld.add_argument("--world", metavar="DIR", help="use this generated world folder instead of generating one")
    bld.add_argument("--version", required=True, help="release version X.Y.Z (the Hub tag is vX.Y.Z)")
    bld.add_argument("--out", required=True, help="release folder (written aside and moved into place when complete)")
    bld.add_argument(
        "--force", action="store_true", help="write into an existing --out that is not a release (only the release's own files are replaced)"
    )
    bld.add_argument("--k", type=positive_int, default=5, help="perturbed (wrong) answers per probe")
    bld.add_argument("--world-knowledge", metavar="FILE", help="world-knowledge questions (JSONL; default builders/vocab/world_knowledge.jsonl)")
    bld.add_argument("--previous", metavar="DIR", help="the previous release folder, for the card's changelog")
    bld.add_argument("--default-config", default="full", help="config loaded when no name is given")
    bld.add_argument("--repo", metavar="ORG/NAME", help="Hub repo the card's loading example and citation name")
    bld.add_argument("--quiet", action="store_true", help="no progress bar")
    bld.set_defaults(func=cmd_build, interrupted=lambda args: f"nothing was written to {args.out}; rerun the same command")
    pub = add_command(sub, "publish", "upload a release folder to the Hub and tag its version (honours HF_ENDPOINT, HF_TOKEN)", PUBLISH_EXAMPLE)
    pub.add_argument("folder", help="release folder written by `entity-unlearn build`")
    pub.add_argument("--repo", required=True, metavar="ORG/NAME", help="dataset repository, created if needed")
    pub.add_argument(
        "--private",
        action="store_true",
        help="create the repository private; for a repository that exists and is public this is an error (publishing never changes visibility)",
    )
    pub.set_defaults(
        func=cmd_publish,
        interrupted=lambda args: (
            f"the upload to {args.repo} may be incomplete and is not tagged; rerun the same command (the Hub skips files it has)"
        ),
    )


def _generate_interrupted(args: argparse.Namespace) -> str:
    if not args.llm:
        return f"nothing was written to {args.out}; rerun the same command"
    from entity_unlearn.builders.world.files import LLM_CACHE

    cache = args.llm_cache or str(Path(args.out) / LLM_CACHE)
    return f"nothing was written to the world in {args.out}; every LLM answer received is cached in {cache}: rerun the same command to resume"


def parse_types(text: str) -> dict[str, int]:
    """``person=150,organisation=30`` -> {"person": 150, "organisation": 30}; each type once, the world not empty."""
    counts: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, n = part.partition("=")
        name, n = name.strip(), n.strip()
        if not sep or not name or not n.isascii() or not n.isdigit():
            raise UsageError(f"--types: cannot read {part!r}; write TYPE=COUNT pairs separated by commas, e.g. person=150,place=20")
        if name in counts:
            raise UsageError(f"--types: {name!r} is given twice; give each type once")
        counts[name] = int(n)
    if not counts:
        raise UsageError("--types: give at least one TYPE=COUNT pair")
    if not sum(counts.values()):
        raise UsageError(f"--types {text}: every count is 0, so the world would be empty; give at least one entity")
    return counts


def cmd_generate(args: argparse.Namespace) -> int:
    from entity_unlearn.builders import default_registry, generate_world, split_counts, write_world
    from entity_unlearn.builders.world.files import is_world
    from entity_unlearn.builders.world.sampler import complete_counts
    from entity_unlearn.outputs import check_output

    check_output(args.out, "generate", is_world, args.force)  # before any work: refused at once, not after the LLM
    registry = default_registry(tuple(args.type_spec))
    if args.types:
        counts = parse_types(args.types)
    elif args.entities is not None:
        counts = split_counts(args.entities)
    else:
        raise UsageError("give --entities N or --types TYPE=COUNT,...")
    check_entity_bound("--types" if args.types else "--entities", sum(counts.values()), args.max_entities)
    for extra in registry.names():
        counts.setdefault(extra, 0)
    counts, added = complete_counts(registry, counts)
    for etype, n in added.items():
        print(f"added {n} {etype} entit{'y' if n == 1 else 'ies'}: a required relation of the world's entities links to a {etype}")
    llm = llm_config(args)
    start = time.perf_counter()
    world = generate_world(counts, seed=args.seed, k_perturbed=args.k, registry=registry, progress=not args.quiet)
    report = None
    if llm is not None:
        from entity_unlearn.builders import enrich_world

        world, report = enrich_world(world, llm, registry=registry, progress=not args.quiet)
    manifest = write_world(world, args.out, force=args.force)
    took = time.perf_counter() - start
    if report is not None:
        print_llm_report(report)
    print(f"world: {manifest['n_entities']} entities {manifest['counts']}, {manifest['n_facts']} facts, {manifest['n_probes']} probes")
    print(f"probes by depth: {manifest['probes_by_depth']}")
    print(f"probes by attack: {manifest['probes_by_attack']}")
    print(f"seed {args.seed}, K={args.k}, {took:.1f} s ({manifest['n_entities'] / took:.0f} entities/s, {manifest['n_probes'] / took:.0f} probes/s)")
    print(f"written to {Path(args.out).resolve()} (manifest.json lists file hashes)")
    return 0


def llm_config(args: argparse.Namespace):
    """The LLMConfig the ``--llm*`` options ask for, or None without ``--llm``. The key is read, never printed."""
    if not args.llm:
        return None
    from entity_unlearn.builders import LLMConfig
    from entity_unlearn.builders.world.files import LLM_CACHE

    tasks = tuple(t.strip() for t in args.llm_tasks.split(",") if t.strip())
    return LLMConfig(
        model=args.llm,
        base_url=args.llm_base_url or os.environ.get("OPENAI_BASE_URL") or None,
        api_key=os.environ.get(args.llm_api_key_env) or None,
        concurrency=args.llm_concurrency,
        timeout_s=args.llm_timeout,
        max_attempts=args.llm_attempts,
        cache_dir=args.llm_cache or str(Path(args.out) / LLM_CACHE),
        tasks=tasks,
    )


def print_llm_report(report: dict) -> None:
    gen, run = report["generation"], report["run"]
    print(
        f"llm: {gen['model']} at {', '.join(gen['endpoints'])}, {gen['requests']} exchanges, "
        f"{gen['tokens_in']} tokens in / {gen['tokens_out']} out, retries {gen['retries'] or 'none'}"
    )
    for task, a in gen["acceptance"].items():
        rate = f"{a['rate']:.1%}" if a["rate"] is not None else "n/a"
        print(
            f"  {task:<10} {a['accepted']}/{a['items']} accepted ({rate}, {a['accepted_first_try']} at the first answer), "
            f"{a['fallbacks']} kept the template wording (source template_fallback)"
        )
    print(
        f"  this run: {run['requests']} requests sent, {run['cache_hits']} answers from the cache, "
        f"retries {run['retries'] or 'none'}, {run['wall_s']:.1f} s"
    )


def cmd_build(args: argparse.Namespace) -> int:
    from entity_unlearn.builders import ReleaseConfig, build_release, generate_world, read_release_manifest, read_world
    from entity_unlearn.builders.release.build import is_release, release_world_args
    from entity_unlearn.builders.release.world_knowledge import WORLD_KNOWLEDGE_FILE
    from entity_unlearn.builders.world.files import read_manifest, templates_hash
    from entity_unlearn.outputs import check_output

    check_output(args.out, "build", is_release, args.force)  # before any work
    if args.previous:
        read_release_manifest(args.previous)
    start = time.perf_counter()
    if args.world:
        if args.entities is not None or args.seed is not None:
            raise UsageError("--world takes the world as it is; drop --entities and --seed (they come from the world's manifest.json)")
        world = read_world(args.world)
        world_manifest = read_manifest(args.world)
        generation = {
            "method": "llm-assisted" if world_manifest.get("generation") else "template",
            "templates_sha256": world_manifest["templates_sha256"],
        }
        if world_manifest.get("generation"):
            generation["llm"] = world_manifest["generation"]
    else:
        if args.entities is None:
            raise UsageError("give --entities N (training persons) or --world DIR (a generated world)")
        check_entity_bound("--entities", args.entities, args.max_entities)
        world = generate_world(**release_world_args(args.entities), seed=args.seed or 0, k_perturbed=args.k, progress=not args.quiet)
        generation = {"method": "template", "templates_sha256": templates_hash()}
    config = ReleaseConfig(
        version=args.version,
        world_knowledge=Path(args.world_knowledge or WORLD_KNOWLEDGE_FILE),
        default_config=args.default_config,
        repo_id=args.repo,
        previous=Path(args.previous) if args.previous else None,
        generation=generation,
    )
    manifest = build_release(world, args.out, config, force=args.force)
    took = time.perf_counter() - start
    out = Path(args.out)
    print(f"release {manifest['name']} v{manifest['version']} (seed {manifest['seed']}): {len(manifest['configs'])} configs, {took:.1f} s")
    for name, info in manifest["configs"].items():
        print(f"  {name:<20} {info['rows']:>7} rows  {info['entities']:>5} entities")
    audit = manifest["audit"]
    broken = len(audit["failures"])
    print(
        f"validity audit: {audit['verdict'].upper()}"
        + (
            f", {broken} threshold(s) broken (the card's 'Validity audit' lists them; `entity-unlearn audit {args.out}` prints them)"
            if broken
            else ""
        )
    )
    print(f"written to {out.resolve()} (README.md is the dataset card; manifest.json lists file hashes)")
    print(f"load it: python -c \"from datasets import load_dataset; print(load_dataset('{args.out}', 'forget05'))\"")
    return 0


def cmd_publish(args: argparse.Namespace) -> int:
    from entity_unlearn.builders import publish_release

    published = publish_release(args.folder, args.repo, private=args.private)
    visibility = "private" if published.private else "public"
    print(f"published {args.folder} to {published.repo_id} ({visibility}) at tag {published.tag} (commit {published.commit[:12]})")
    print(f"load it: load_dataset('{published.repo_id}', 'forget05', revision='{published.tag}')")
    print(published.url)
    return 0
