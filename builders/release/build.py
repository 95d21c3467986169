"""A release: every config of a world as parquet, the dataset card, and ``manifest.json``.

``build_release(world, out, config)`` writes ``data/<config>/train-<content hash>.parquet``
for each config, then audits them (``builders/audit``), then writes ``README.md`` (YAML
``configs:`` plus the card rendered from ``cards/``, with the audit's table) and
``manifest.json`` (version, seed, generator version, counts, the audit's numbers, the
SHA-256 of every file). The same world and config give byte-identical files.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from entity_unlearn.errors import EntityUnlearnError
from entity_unlearn.outputs import check_output, staged

from ..schema import World
from ..world.files import read_format_json
from .card import render_readme
from .export import LAYOUTS, corpus_row, entity_row, fact_row, probe_row, short_answer_row, world_rows, write_config
from .splits import SplitConfig, Splits, injection_probes, make_splits
from .world_knowledge import WORLD_KNOWLEDGE_FILE, read_world_knowledge

FORMAT = "entity-unlearn-release/1"
NAME = "entity-unlearn"
SEMVER = re.compile(r"\d+\.\d+\.\d+")  # matched with fullmatch: "1.0.0\n" is not a version
TOFU_GENERAL = ("world_facts", "world_facts_perturbed", "real_authors", "real_authors_perturbed")  # TOFU's names, for OpenUnlearning
# Organisations and places per person in a release built with --entities N (the world mix 75/15/10).
TYPE_RATIO = {"organisation": 0.2, "place": 2 / 15}


class ReleaseError(EntityUnlearnError, ValueError):
    """A release cannot be built or read as asked; the message names the option or file and what to do."""


@dataclass(frozen=True)
class ReleaseConfig:
    """What a release holds beyond the world. ``previous`` is an earlier release folder (for the changelog)."""

    version: str
    splits: SplitConfig = field(default_factory=SplitConfig)
    world_knowledge: Path = WORLD_KNOWLEDGE_FILE
    default_config: str = "full"
    license: str = "mit"
    repo_id: str | None = None
    previous: Path | None = None
    generation: dict[str, Any] = field(default_factory=dict)


def release_counts(persons: int, max_forget_percent: int = 10) -> dict[str, int]:
    """World counts for a release of ``persons`` training persons: holdout persons added, orgs and places by ``TYPE_RATIO``."""
    if persons < 10:
        raise ReleaseError(f"--entities {persons}: a release needs at least 10 persons")
    holdout = max(1, math.floor(persons * max_forget_percent / 100 + 0.5))
    counts = {"person": persons + holdout}
    counts.update({t: max(1, math.floor(persons * r + 0.5)) for t, r in TYPE_RATIO.items()})
    return counts


def release_world_args(persons: int, max_forget_percent: int = 10) -> dict[str, Any]:
    """``generate_world`` keyword arguments of a release world: the counts, and its holdout persons kept unlinked."""
    counts = release_counts(persons, max_forget_percent)
    return {"counts": counts, "unlinked": {"person": holdout_count(counts["person"], max_forget_percent)}}


def holdout_count(world_persons: int, max_forget_percent: int = 10) -> int:
    """Holdout persons of a world with ``world_persons`` persons: the inverse of ``release_counts``."""
    return max(1, math.floor(world_persons * max_forget_percent / (100 + max_forget_percent) + 0.5))


def config_names(config: SplitConfig) -> list[str]:
    """Every config name of a release, in card order."""
    f = [f"forget{p:02d}" for p in config.forget_percents]
    names = ["entities", "facts", "full", "corpus", *f, *[f"retain{100 - p:02d}" for p in config.forget_percents]]
    names += [f"entangled{p:02d}" for p in config.forget_percents]
    names += [f"{n}_perturbed" for n in f] + ["retain_perturbed", "probes", "neighbor"]
    names += [f"holdout{p:02d}" for p in config.forget_percents] + ["world", *TOFU_GENERAL]
    names += [f"forget{fp:02d}_cov{cp:02d}" for fp in config.coverage_forgets for cp in config.coverage_percents]
    return names


def entity_splits(splits: Splits, world: World) -> dict[str, tuple[str, ...]]:
    """Entity id -> names of the entity-level configs it belongs to (forget, retain, neighbor, holdout)."""
    held = {eid for ids in splits.holdout.values() for eid in ids}
    out: dict[str, list[str]] = {e.entity_id: [] for e in world.entities}
    for p, ids in splits.forget.items():
        for e in world.entities:
            if e.entity_id in held:
                continue
            out[e.entity_id].append(f"forget{p:02d}" if e.entity_id in ids else f"retain{100 - p:02d}")
    for eid in splits.neighbors:
        out[eid].append("neighbor")
    for p, ids in splits.holdout.items():
        for eid in ids:
            out[eid].append(f"holdout{p:02d}")
    return {k: tuple(sorted(v)) for k, v in out.items()}


def assemble(world: World, splits: Splits, config: ReleaseConfig) -> dict[str, tuple[str, list[dict[str, Any]]]]:
    """Config name -> (layout, rows), every config of the release."""
    member = entity_splits(splits, world)
    held = {eid for ids in splits.holdout.values() for eid in ids}
    qa = injection_probes(world.probes)
    bios = {b.entity_id: b for b in world.biographies}
    inworld = [e for e in world.entities if e.entity_id not in held]
    train = [p for p in qa if p.entity_id not in held]
    out: dict[str, tuple[str, list[dict[str, Any]]]] = {
        "entities": ("entities", [entity_row(e, bios[e.entity_id], member) for e in world.entities]),
        "facts": ("facts", [fact_row(f) for f in world.facts]),
        "full": ("train", [probe_row(p, "train", member) for p in train]),
        "corpus": ("corpus", [corpus_row(e, bios[e.entity_id]) for e in inworld]),
    }
    for pct, ids in splits.forget.items():
        forget, tangled = set(ids), set(splits.entangled[pct])
        out[f"forget{pct:02d}"] = ("train", [probe_row(p, "train", member) for p in train if p.entity_id in forget])
        out[f"retain{100 - pct:02d}"] = (
            "train",
            [probe_row(p, "train", member) for p in train if p.entity_id not in forget and p.probe_id not in tangled],
        )
        out[f"entangled{pct:02d}"] = ("train", [probe_row(p, "train", member) for p in train if p.probe_id in tangled])
    for pct, ids in splits.forget.items():
        forget = set(ids)
        out[f"forget{pct:02d}_perturbed"] = ("eval", [probe_row(p, "eval", member) for p in train if p.entity_id in forget])
    chosen = set(splits.retain_perturbed)
    out["retain_perturbed"] = ("eval", [probe_row(p, "eval", member) for p in train if p.probe_id in chosen])
    out["probes"] = ("eval", [probe_row(p, "eval", member) for p in world.probes])
    out["neighbor"] = (
        "neighbor",
        [probe_row(p, "neighbor", member, splits.neighbors[p.entity_id]) for p in train if p.entity_id in splits.neighbors],
    )
    for pct, ids in splits.holdout.items():
        hold = set(ids)
        out[f"holdout{pct:02d}"] = ("eval", [probe_row(p, "eval", member) for p in qa if p.entity_id in hold])
    out["world"] = ("world", world_rows(read_world_knowledge(config.world_knowledge, world.k_perturbed), world.seed))
    for suffix, layout in (("", "tofu_qa"), ("_perturbed", "tofu_perturbed")):
        out[f"world_facts{suffix}"] = (layout, [{k: r[k] for k in LAYOUTS[layout]} for r in out["world"][1]])
        chosen = set(splits.real_authors)
        out[f"real_authors{suffix}"] = (layout, [short_answer_row(p, layout) for p in world.probes if p.probe_id in chosen])
    for (fp, cp), chosen_by_entity in splits.coverage.items():
        keep = {pid for ids in chosen_by_entity.values() for pid in ids}
        out[f"forget{fp:02d}_cov{cp:02d}"] = ("train", [probe_row(p, "train", member) for p in train if p.probe_id in keep])
    return {name: out[name] for name in config_names(config.splits)}


def coverage_report(world: World, splits: Splits) -> dict[str, Any]:
    """Per coverage config: target share, facts covered / probed per entity, overall fraction."""
    probed: dict[str, set[str]] = {}
    facts_of = {p.probe_id: p.fact_ids for p in world.probes}
    for p in injection_probes(world.probes):
        probed.setdefault(p.entity_id, set()).update(p.fact_ids)
    report = {}
    for (fp, cp), chosen in splits.coverage.items():
        per = {eid: [len({f for pid in ids for f in facts_of[pid]}), len(probed[eid])] for eid, ids in sorted(chosen.items())}
        covered, total = sum(v[0] for v in per.values()), sum(v[1] for v in per.values())
        report[f"forget{fp:02d}_cov{cp:02d}"] = {
            "target": cp / 100,
            "facts_covered": covered,
            "facts_probed": total,
            "fraction": round(covered / total, 6),
            "per_entity": per,
        }
    return report


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read_release_manifest(folder: str | Path) -> dict[str, Any]:
    """The manifest of a release folder; ReleaseError naming the file when missing or of another format."""
    return read_format_json(
        Path(folder) / "manifest.json",
        FORMAT,
        ReleaseError,
        f"no release manifest; build the release with `entity-unlearn build --out {folder}`",
        "rebuild the release with this version",
    )


def is_release(folder: Path) -> bool:
    """Whether ``folder`` holds a release (its ``manifest.json`` declares the release format)."""
    try:
        return json.loads((folder / "manifest.json").read_text(encoding="utf-8")).get("format") == FORMAT
    except (OSError, ValueError, AttributeError):
        return False


def build_release(world: World, out: str | Path, config: ReleaseConfig, force: bool = False) -> dict[str, Any]:
    """Write the release of ``world`` into ``out``; returns the manifest (also written as ``manifest.json``).

    The files are written into a temporary folder beside ``out`` and moved into place when all are written.
    An existing ``out`` must be empty or a release (whose files this one replaces); ``force`` writes into
    any folder, replacing only the files a release has."""
    if not SEMVER.fullmatch(config.version):
        raise ReleaseError(f"--version {config.version!r}: write a semantic version X.Y.Z, e.g. 1.0.0")
    names = config_names(config.splits)
    if config.default_config not in names:
        from difflib import get_close_matches

        close = get_close_matches(config.default_config, names, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ReleaseError(f"--default-config {config.default_config!r} is not a config{hint}; choose one of {', '.join(names)}")
    previous = read_release_manifest(config.previous) if config.previous is not None else None
    out = check_output(out, "build", is_release, force)
    stale = [*read_release_manifest(out)["files"], "manifest.json"] if is_release(out) else []
    with staged(out, stale) as tmp:
        return _write_release(world, tmp, config, previous)


def _write_release(world: World, out: Path, config: ReleaseConfig, previous: dict[str, Any] | None) -> dict[str, Any]:
    import pyarrow

    persons = sum(1 for e in world.entities if e.entity_type == config.splits.split_type)
    splits = make_splits(world, holdout_count(persons, max(config.splits.forget_percents)), config.splits)
    files: dict[str, dict[str, Any]] = {}
    configs: dict[str, dict[str, Any]] = {}
    for name, (layout, rows) in assemble(world, splits, config).items():
        path = write_config(rows, layout, out / "data" / name)
        rel = path.relative_to(out).as_posix()
        files[rel] = {"sha256": sha256_file(path), "bytes": path.stat().st_size}
        configs[name] = {
            "layout": layout,
            "rows": len(rows),
            "entities": len({r["entity_id"] for r in rows if r["entity_id"] is not None}),
            "path": rel,
        }
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "name": NAME,
        "version": config.version,
        "seed": world.seed,
        "generator": "entity-unlearn",
        "generator_version": world.version,
        "k_perturbed": world.k_perturbed,
        "default_config": config.default_config,
        "license": config.license,
        "repo_id": config.repo_id,
        "world": {
            "counts": dict(sorted(world.counts.items())),
            "n_entities": len(world.entities),
            "n_facts": len(world.facts),
            "n_probes": len(world.probes),
            "type_specs_sha256": dict(sorted(world.type_hashes.items())),
        },
        "generation": dict(sorted(config.generation.items())),
        "persons": {
            "train": len(splits.train),
            "holdout": sum(1 for _ in splits.holdout[max(splits.holdout)]),
            "holdout_linked": splits.holdout_linked,
            "neighbors": len(splits.neighbors),
        },
        "entangled": {f"{p:02d}": len(ids) for p, ids in sorted(splits.entangled.items())},
        "coverage": coverage_report(world, splits),
        "world_knowledge_sha256": sha256_file(Path(config.world_knowledge)),
        "writer": f"pyarrow {pyarrow.__version__}",
        "configs": configs,
    }
    manifest["files"] = dict(sorted(files.items()))
    # The validity audit reads the parquet files just written (not the world in memory): it checks what is published.
    from ..audit import audit_folder, render_audit, summary

    report = audit_folder(out, manifest)
    manifest["audit"] = summary(report)
    readme = render_readme(manifest, world, splits, previous, audit=render_audit(report, title=False))
    (out / "README.md").write_text(readme, encoding="utf-8")
    files["README.md"] = {"sha256": hashlib.sha256(readme.encode("utf-8")).hexdigest(), "bytes": len(readme.encode("utf-8"))}
    manifest["files"] = dict(sorted(files.items()))
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return manifest
