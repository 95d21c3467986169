"""Reading what the audit checks: a release folder (parquet) or a world folder (JSONL), as plain records.

Only the published files are read; no generator code runs, so a world written by another
version, by hand or by an LLM is audited the same way. A release gives every config the
audit needs (probes, entities, facts, the training text of ``full`` and ``corpus``, the
retain/neighbour/world rows); a world gives its records, and its training text is what a
release would train on: every direct (d1) question without attack with its answer, and
every biography (a world has no holdout yet).
"""

from __future__ import annotations

import gc
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from entity_unlearn.errors import EntityUnlearnError

RELEASE_FORMAT = "entity-unlearn-release/1"
WORLD_FORMAT = "entity-unlearn-world/1"
WORLD_FILES = ("entities", "facts", "biographies", "probes")


class AuditError(EntityUnlearnError, ValueError):
    """What was given cannot be audited; the message names the file or field and what to do."""


@dataclass(frozen=True)
class ProbeRow:
    """One graded probe, as published (TOFU fields plus depth, kind, attack, options, splits)."""

    probe_id: str
    entity_id: str
    entity_type: str
    depth: str
    kind: str
    attack: str
    template_id: str
    question: str
    answer: str
    short_answer: str
    paraphrased_question: str
    paraphrased_answer: str
    perturbed_answer: tuple[str, ...]
    options: tuple[str, ...]
    answer_index: int
    fact_ids: tuple[str, ...]
    splits: tuple[str, ...] = ()
    relation_field: str | None = None  # the record's ``relation`` where it has one
    parent_id: str | None = None

    @cached_property
    def field(self) -> str:
        """The field asked about: the record's ``relation``, else the probe id's field segment
        (``entity/depth/field/n[@attack]``), else the template block."""
        if self.relation_field:
            return self.relation_field
        parts = self.probe_id.split("@", 1)[0].split("/")
        return parts[2] if len(parts) >= 4 else self.template_id.rsplit("#", 1)[-1]

    @cached_property
    def relation(self) -> str:
        """``<entity type>/<field>``; reverse probes (the entity is the answer) are ``<type>/reverse:<field>``."""
        name = f"reverse:{self.field}" if self.kind == "reverse" else self.field
        return f"{self.entity_type}/{name}"

    @cached_property
    def cell(self) -> tuple[str, str, str, str]:
        """(relation, depth, attack, entity type): the dimensions results are grouped by (``groups.DIMENSIONS``)."""
        return (self.relation, self.depth, self.attack, self.entity_type)

    @property
    def base_id(self) -> str:
        """The plain probe an attacked one wraps: the record's ``parent_id``, else the probe id without ``@attack``."""
        return self.parent_id or self.probe_id.split("@", 1)[0]


@dataclass(frozen=True)
class EntityRow:
    entity_id: str
    entity_type: str
    name: str
    aliases: tuple[str, ...]
    attributes: dict[str, Any]
    links: dict[str, list[dict[str, Any]]]
    biography: str
    splits: tuple[str, ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)


@dataclass(frozen=True)
class FactRow:
    fact_id: str
    entity_id: str
    relation: str
    value: str
    text: str
    year: int | None = None
    target_id: str | None = None


@dataclass(frozen=True)
class TextRow:
    """A question/answer row of a config other than ``probes`` (``retain95``, ``neighbor``, ``world``, ...)."""

    config: str
    row_id: str
    entity_id: str | None
    question: str
    answer: str
    options: tuple[str, ...] = ()


@dataclass(frozen=True)
class Material:
    """Everything the audit reads. ``training`` holds the texts a model is fine-tuned on; ``configs``
    the release's QA configs by name (empty for a world)."""

    kind: str  # "release" or "world"
    path: str
    manifest: dict[str, Any]
    entities: tuple[EntityRow, ...]
    facts: tuple[FactRow, ...]
    probes: tuple[ProbeRow, ...]
    training: tuple[str, ...]
    configs: dict[str, tuple[TextRow, ...]] = field(default_factory=dict)

    def source(self) -> dict[str, Any]:
        """What was audited, for the report: kind, name, version, seed, generator version."""
        m = self.manifest
        return {
            "kind": self.kind,
            "name": m.get("name"),
            "version": m.get("version"),
            "seed": m.get("seed"),
            "generator_version": m.get("generator_version"),
        }


@contextmanager
def collection_paused() -> Iterator[None]:
    """CPython's cyclic garbage collector off for the block (and back on after, if it was on).

    Reading and auditing a release make millions of small tuples, dicts and records that form no reference
    cycles; each full collection walks all of them again as the heap grows, which took a third of the CPU
    time of a 2,000-person audit. Reference counting still frees everything as usual.
    """
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


# -- readers -------------------------------------------------------------------------------------
def _probe(row: dict[str, Any]) -> ProbeRow:
    try:
        return ProbeRow(
            probe_id=row["probe_id"],
            entity_id=row["entity_id"],
            entity_type=row["entity_type"],
            depth=row["depth"],
            kind=row["kind"],
            attack=row.get("attack") or "none",
            template_id=row.get("template_id") or "",
            question=row["question"],
            answer=row["answer"],
            short_answer=row["short_answer"],
            paraphrased_question=row["paraphrased_question"],
            paraphrased_answer=row["paraphrased_answer"],
            perturbed_answer=tuple(row["perturbed_answer"]),
            options=tuple(row["options"]),
            answer_index=int(row["answer_index"]),
            fact_ids=tuple(row["fact_ids"]),
            splits=tuple(row.get("splits") or ()),
            relation_field=row.get("relation"),
            parent_id=row.get("parent_id"),
        )
    except KeyError as exc:
        raise AuditError(f"probe {row.get('probe_id', '?')}: field {exc.args[0]!r} is missing") from None


def _fact(row: dict[str, Any]) -> FactRow:
    return FactRow(row["fact_id"], row["entity_id"], row["relation"], str(row["value"]), row["text"], row.get("year"), row.get("target_id"))


def read_manifest(folder: Path) -> dict[str, Any]:
    path = folder / "manifest.json"
    if not folder.is_dir():
        raise AuditError(f"{folder}: no such folder; give a release folder (`entity-unlearn build`) or a world folder (`entity-unlearn generate`)")
    if not path.is_file():
        raise AuditError(f"{path}: missing; give a release folder (`entity-unlearn build`) or a world folder (`entity-unlearn generate`)")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise AuditError(f"{path}: not JSON ({exc}); rebuild the folder") from None


def load_material(folder: str | Path, manifest: dict[str, Any] | None = None) -> Material:
    """A release or world folder, told apart by the ``format`` of its manifest.

    ``manifest`` stands in for ``manifest.json`` while a release is being built (its
    parquet files are written, its manifest not yet).
    """
    folder = Path(folder)
    manifest = manifest if manifest is not None else read_manifest(folder)
    fmt = manifest.get("format")
    if fmt == RELEASE_FORMAT:
        with collection_paused():
            return load_release(folder, manifest)
    if fmt == WORLD_FORMAT:
        with collection_paused():
            return load_world(folder, manifest)
    raise AuditError(f"{folder / 'manifest.json'}: format {fmt!r} is neither {RELEASE_FORMAT!r} nor {WORLD_FORMAT!r}; rebuild it with this version")


def _read_columns(folder: Path, manifest: dict[str, Any], name: str, columns: tuple[str, ...], optional: tuple[str, ...] = ()) -> dict[str, list]:
    """Column name -> values of config ``name``: ``columns`` (all required) and those of ``optional`` it has.

    Only these columns are read from the parquet file."""
    import pyarrow.parquet as pq

    info = manifest.get("configs", {}).get(name)
    if info is None:
        raise AuditError(f"{folder}: the release has no config {name!r} (manifest.json `configs`); rebuild it with `entity-unlearn build`")
    path = folder / info["path"]
    if not path.is_file():
        raise AuditError(f"{path}: missing (listed in manifest.json); rebuild the release")
    have = set(pq.read_schema(path).names)
    missing = [c for c in columns if c not in have]
    if missing:
        raise AuditError(f"{path}: columns {missing} are missing; rebuild the release with this version")
    columns = columns + tuple(c for c in optional if c in have)
    table = pq.read_table(path, columns=list(columns))
    return {c: _values(table.column(c)) for c in columns}


def _values(column) -> list:
    """A parquet column as Python values; a list column without nulls as tuples, cut from its flat values (3x faster)."""
    import pyarrow as pa

    if pa.types.is_list(column.type) and column.null_count == 0:
        array = column.combine_chunks()
        flat, offsets = array.values.to_pylist(), array.offsets.to_pylist()
        return [tuple(flat[a:b]) for a, b in zip(offsets, offsets[1:])]
    return column.to_pylist()


def _read_config(folder: Path, manifest: dict[str, Any], name: str, columns: tuple[str, ...], optional: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    data = _read_columns(folder, manifest, name, columns, optional)
    return [dict(zip(data, values)) for values in zip(*data.values())]


PROBE_COLUMNS = (
    "probe_id",
    "entity_id",
    "entity_type",
    "depth",
    "kind",
    "attack",
    "template_id",
    "question",
    "answer",
    "short_answer",
    "paraphrased_question",
    "paraphrased_answer",
    "perturbed_answer",
    "options",
    "answer_index",
    "fact_ids",
    "splits",
)


def load_release(folder: Path, manifest: dict[str, Any]) -> Material:
    read = lambda name, cols: _read_config(folder, manifest, name, cols)  # noqa: E731
    entities = tuple(
        EntityRow(
            r["entity_id"],
            r["entity_type"],
            r["name"],
            tuple(r["aliases"]),
            json.loads(r["attributes"]),
            json.loads(r["links"]),
            r["biography"],
            tuple(r["splits"]),
        )
        for r in read("entities", ("entity_id", "entity_type", "name", "aliases", "attributes", "links", "biography", "splits"))
    )
    facts = tuple(_fact(r) for r in read("facts", ("fact_id", "entity_id", "relation", "value", "text", "year", "target_id")))
    probes = tuple(_probe(r) for r in _read_config(folder, manifest, "probes", PROBE_COLUMNS, ("relation", "parent_id")))
    full = read("full", ("question", "answer"))
    corpus = read("corpus", ("text",))
    training = tuple(t for r in full for t in (r["question"], r["answer"])) + tuple(r["text"] for r in corpus)
    configs: dict[str, tuple[TextRow, ...]] = {}
    for name, info in manifest.get("configs", {}).items():
        layout = info.get("layout")
        if layout not in ("train", "neighbor", "world") or name == "full" or "_cov" in name:
            continue
        cols = ("probe_id", "entity_id", "question", "answer") + (("options",) if layout == "world" else ())
        configs[name] = tuple(
            TextRow(name, r["probe_id"], r["entity_id"], r["question"], r["answer"], tuple(r.get("options") or ())) for r in read(name, cols)
        )
    return Material("release", str(folder), manifest, entities, facts, probes, training, configs)


def _jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        raise AuditError(f"{path}: missing; regenerate the world with `entity-unlearn generate`")
    rows = []
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise AuditError(f"{path}, line {n}: not JSON ({exc})") from None
    return rows


def load_world(folder: Path, manifest: dict[str, Any]) -> Material:
    raw = {name: _jsonl(folder / f"{name}.jsonl") for name in WORLD_FILES}
    bios = {b["entity_id"]: b["text"] for b in raw["biographies"]}
    entities = tuple(
        EntityRow(
            r["entity_id"],
            r["entity_type"],
            r["name"],
            tuple(r.get("aliases", ())),
            r.get("attributes", {}),
            r.get("links", {}),
            bios.get(r["entity_id"], ""),
        )
        for r in raw["entities"]
    )
    facts = tuple(_fact(r) for r in raw["facts"])
    probes = tuple(_probe(r) for r in raw["probes"])
    qa = tuple(t for p in probes if p.depth == "d1" and p.attack == "none" for t in (p.question, p.answer))
    training = qa + tuple(e.biography for e in entities)
    return Material("world", str(folder), manifest, entities, facts, probes, training)
