"""A world on disk: JSONL files of records plus ``manifest.json``.

Files are written sorted-key, compact, UTF-8, each through a temporary file and
an atomic rename, the manifest last; the same world always gives the same bytes.
``read_world`` checks every file against the manifest's hashes.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from entity_unlearn.errors import EntityUnlearnError
from entity_unlearn.outputs import check_output, staged, write_atomic
from entity_unlearn.prompts import TEMPLATE_DIR

from ..schema import Biography, Entity, Fact, Probe, World

FORMAT = "entity-unlearn-world/1"
FILES = {"entities": Entity, "facts": Fact, "biographies": Biography, "probes": Probe}
FILES_WRITTEN = (*(f"{name}.jsonl" for name in FILES), "manifest.json")
LLM_CACHE = ".llm-cache"  # generate --llm's default answer cache, inside --out


class WorldFileError(EntityUnlearnError, ValueError):
    """A world folder is missing a file, or a file does not match its manifest."""


def _line(record: Any) -> str:
    return json.dumps(record.to_dict(), sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def templates_hash(extra_dirs: Iterable[Path] = ()) -> str:
    """SHA-256 over every template file (relative path and bytes), in path order."""
    h = hashlib.sha256()
    for root in [TEMPLATE_DIR, *extra_dirs]:
        for path in sorted(Path(root).rglob("*.j2")):
            h.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def is_world(folder: Path) -> bool:
    """Whether ``folder`` holds a world, or only the LLM answer cache an interrupted ``generate --llm`` left there."""
    try:
        if json.loads((folder / "manifest.json").read_text(encoding="utf-8")).get("format") == FORMAT:
            return True
    except (OSError, ValueError, AttributeError):
        pass
    return {p.name for p in folder.iterdir()} <= {LLM_CACHE}


def write_world(world: World, out: str | Path, force: bool = False) -> dict[str, Any]:
    """Write ``world`` into folder ``out``; returns the manifest.

    The files are written into a temporary folder beside ``out`` and moved into place when all are written.
    An existing ``out`` must be empty or a world (whose files this one replaces); ``force`` writes into any
    folder, replacing only a world's own files."""
    out = check_output(out, "generate", is_world, force)
    with staged(out, [*FILES_WRITTEN]) as tmp:
        return _write_world(world, tmp)


def _write_world(world: World, out: Path) -> dict[str, Any]:
    files = {}
    for name, records in (("entities", world.entities), ("facts", world.facts), ("biographies", world.biographies), ("probes", world.probes)):
        data = "".join(_line(r) + "\n" for r in records).encode("utf-8")
        write_atomic(out / f"{name}.jsonl", data)
        files[f"{name}.jsonl"] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data), "rows": len(records)}
    manifest = {
        "format": FORMAT,
        "generator": "entity-unlearn",
        "generator_version": world.version,
        "seed": world.seed,
        "k_perturbed": world.k_perturbed,
        "counts": dict(sorted(world.counts.items())),
        "n_entities": len(world.entities),
        "n_facts": len(world.facts),
        "n_probes": len(world.probes),
        "probes_by_depth": dict(sorted(Counter(p.depth for p in world.probes).items())),
        "probes_by_attack": dict(sorted(Counter(p.attack for p in world.probes).items())),
        "type_specs_sha256": dict(sorted(world.type_hashes.items())),
        "templates_sha256": templates_hash(),
        "files": files,
    }
    if world.generation:  # absent for template-only worlds, whose manifests stay byte-identical
        manifest["generation"] = world.generation
    write_atomic(out / "manifest.json", json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


def read_format_json(path: Path, fmt: str, error: type[Exception], missing: str, rebuild: str) -> dict[str, Any]:
    """A JSON file that must exist and declare ``"format": fmt``; ``error`` names the file and says what to do."""
    if not path.is_file():
        raise error(f"{path}: {missing}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise error(f"{path}: not valid JSON ({exc}); {rebuild}") from exc
    found = data.get("format") if isinstance(data, dict) else type(data).__name__
    if found != fmt:
        raise error(f"{path}: format {found!r} is not {fmt!r}; {rebuild}")
    return data


def read_manifest(folder: str | Path) -> dict[str, Any]:
    return read_format_json(
        Path(folder) / "manifest.json",
        FORMAT,
        WorldFileError,
        f"no manifest; generate a world with `entity-unlearn generate --out {folder}`",
        "regenerate the world with this version",
    )


def read_world(folder: str | Path) -> World:
    """Load a world written by ``write_world``, verifying each file's SHA-256."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    loaded: dict[str, tuple] = {}
    for name, cls in FILES.items():
        path = folder / f"{name}.jsonl"
        if not path.is_file():
            raise WorldFileError(f"{path}: missing; the world folder is incomplete, regenerate it")
        data = path.read_bytes()
        want = manifest["files"][f"{name}.jsonl"]["sha256"]
        if hashlib.sha256(data).hexdigest() != want:
            raise WorldFileError(
                f"{path}: content does not match manifest.json (sha256 {want[:12]}...); the file was edited or truncated, regenerate it"
            )
        loaded[name] = tuple(cls.from_dict(json.loads(line)) for line in data.decode("utf-8").splitlines())
    return World(
        seed=manifest["seed"],
        version=manifest["generator_version"],
        k_perturbed=manifest["k_perturbed"],
        counts=manifest["counts"],
        entities=loaded["entities"],
        facts=loaded["facts"],
        biographies=loaded["biographies"],
        probes=loaded["probes"],
        type_hashes=manifest["type_specs_sha256"],
        generation=manifest.get("generation", {}),
    )
