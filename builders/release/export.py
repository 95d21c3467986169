"""Rows, declared types and deterministic parquet files of a release's configs.

Every config's columns are declared here as ``datasets.Features``; a column
shared by two configs has one declaration (``COLUMNS``), so its type is the same
everywhere. Parquet files are written with pyarrow, one file per config, fixed
row groups, zstd, and no timestamps: the same rows give the same bytes under the
same pyarrow version. The features travel in the schema metadata, where
``datasets`` reads them back; lists are written there in the legacy ``Sequence``
form, which every ``datasets`` from 2.x on reads (``List`` exists only from 4.0).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..schema import Biography, Entity, Fact, Probe
from .world_knowledge import WorldQuestion

if TYPE_CHECKING:
    import pyarrow as pa

ROW_GROUP_SIZE = 10_000


def _columns() -> dict[str, Any]:
    from datasets import Sequence, Value  # not List: datasets < 4 has none

    text, texts, int32 = Value("string"), Sequence(Value("string")), Value("int32")
    return {
        "probe_id": text,
        "entity_id": text,
        "entity_type": text,
        "name": text,
        "aliases": texts,
        "attributes": text,
        "links": text,
        "biography": text,
        "text": text,
        "splits": texts,
        "fact_id": text,
        "relation": text,
        "value": text,
        "year": int32,
        "target_id": text,
        "depth": text,
        "kind": text,
        "attack": text,
        "template_id": text,
        "topic": text,
        "question": text,
        "answer": text,
        "short_answer": text,
        "paraphrased_question": text,
        "paraphrased_answer": text,
        "perturbed_answer": texts,
        "options": texts,
        "answer_index": int32,
        "fact_ids": texts,
        "linked_forget_ids": texts,
    }


QA_TRAIN = ("probe_id", "entity_id", "entity_type", "question", "answer", "fact_ids", "template_id")
QA_EVAL = (
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
LAYOUTS = {
    "train": QA_TRAIN,
    "eval": QA_EVAL,
    "neighbor": QA_EVAL + ("linked_forget_ids",),
    "entities": ("entity_id", "entity_type", "name", "aliases", "attributes", "links", "biography", "splits"),
    "facts": ("fact_id", "entity_id", "relation", "value", "text", "year", "target_id"),
    "corpus": ("entity_id", "entity_type", "name", "text"),
    "world": ("probe_id", "entity_id", "topic", "question", "answer", "paraphrased_question", "perturbed_answer", "options", "answer_index"),
    # TOFU's world_facts / real_authors (question, answer) and their _perturbed configs (+ perturbed_answer),
    # with the row's id, entity and multiple-choice options beside them
    "tofu_qa": ("probe_id", "entity_id", "question", "answer"),
    "tofu_perturbed": ("probe_id", "entity_id", "question", "answer", "perturbed_answer", "options", "answer_index"),
}


def features_of(layout: str):
    """The ``datasets.Features`` of a layout (a key of ``LAYOUTS``)."""
    from datasets import Features

    columns = _columns()
    return Features({name: columns[name] for name in LAYOUTS[layout]})


def _legacy_lists(obj: Any) -> Any:
    """``Features.to_dict()`` with every list as ``{"feature": ..., "_type": "Sequence"}``: datasets < 4 cannot
    read ``"_type": "List"`` (TypeError: must be called with a dataclass type or instance); datasets >= 4 reads
    ``Sequence`` back as ``List``. The written bytes no longer depend on the installed datasets version."""
    if isinstance(obj, dict):
        if obj.get("_type") in ("List", "Sequence"):
            return {
                "feature": _legacy_lists(obj["feature"]),
                "_type": "Sequence",
                **({"length": obj["length"]} if obj.get("length", -1) != -1 else {}),
            }
        return {key: _legacy_lists(value) for key, value in obj.items()}
    return obj


def arrow_schema(features) -> pa.Schema:
    """``features.arrow_schema`` with the ``huggingface`` metadata in the form datasets 2.18 through 5.x load."""
    meta = {"info": {"features": _legacy_lists(features.to_dict())}}
    return features.arrow_schema.with_metadata({"huggingface": json.dumps(meta)})


def probe_row(p: Probe, layout: str, splits: dict[str, tuple[str, ...]], linked: tuple[str, ...] = ()) -> dict[str, Any]:
    """One probe as a row of ``layout`` ("train", "eval" or "neighbor")."""
    row: dict[str, Any] = {}
    for name in LAYOUTS[layout]:
        if name == "splits":
            row[name] = list(splits.get(p.entity_id, ()))
        elif name == "linked_forget_ids":
            row[name] = list(linked)
        else:
            value = getattr(p, name)
            row[name] = list(value) if isinstance(value, tuple) else value
    return row


def entity_row(e: Entity, bio: Biography, splits: dict[str, tuple[str, ...]]) -> dict[str, Any]:
    dump = lambda v: json.dumps(v, sort_keys=True, ensure_ascii=False, separators=(",", ":"))  # noqa: E731
    return {
        "entity_id": e.entity_id,
        "entity_type": e.entity_type,
        "name": e.name,
        "aliases": list(e.aliases),
        "attributes": dump(e.attributes),
        "links": dump(e.links),
        "biography": bio.text,
        "splits": list(splits.get(e.entity_id, ())),
    }


def fact_row(f: Fact) -> dict[str, Any]:
    return {name: getattr(f, name) for name in LAYOUTS["facts"]}


def corpus_row(e: Entity, bio: Biography) -> dict[str, Any]:
    return {"entity_id": e.entity_id, "entity_type": e.entity_type, "name": e.name, "text": bio.text}


def world_rows(questions: Iterable[WorldQuestion], seed: int) -> list[dict[str, Any]]:
    """World-knowledge rows; ``probe_id`` is the file's ``id`` or ``world/NNNN``; ``options`` are answer +
    wrong answers in a seeded order; ``entity_id`` is null."""
    from ..world.sampler import stream

    rows = []
    for n, q in enumerate(questions, 1):
        options = [q.answer, *q.perturbed_answer]
        stream(seed, "release", "world", str(n)).shuffle(options)
        rows.append(
            {
                "probe_id": q.item_id or f"world/{n:04d}",
                "entity_id": None,
                "topic": q.topic,
                "question": q.question,
                "answer": q.answer,
                "paraphrased_question": q.paraphrased_question,
                "perturbed_answer": list(q.perturbed_answer),
                "options": options,
                "answer_index": options.index(q.answer),
            }
        )
    return rows


def short_answer_row(p: Probe, layout: str) -> dict[str, Any]:
    """A probe as a TOFU Real Authors row: the short answer (a name) as ``answer``, the other options as ``perturbed_answer``."""
    row = {
        "probe_id": p.probe_id,
        "entity_id": p.entity_id,
        "question": p.question,
        "answer": p.short_answer,
        "perturbed_answer": [o for i, o in enumerate(p.options) if i != p.answer_index],
        "options": list(p.options),
        "answer_index": p.answer_index,
    }
    return {k: row[k] for k in LAYOUTS[layout]}


def write_config(rows: list[dict[str, Any]], layout: str, folder: str | Path) -> Path:
    """Write ``rows`` as ``<folder>/train-<sha256 prefix>.parquet`` and remove older parquet files there.

    The content hash in the file name matters: ``datasets`` keys its cache of a local
    folder on the README's ``data_files`` paths, not on file contents, so a release
    rebuilt in place under a fixed file name would load stale rows from the cache.
    """
    import hashlib

    import pyarrow as pa
    import pyarrow.parquet as pq

    features = features_of(layout)
    columns = {name: [r[name] for r in rows] for name in features}
    table = pa.Table.from_pydict(columns, schema=arrow_schema(features))
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / "train.parquet.tmp"
    pq.write_table(table, tmp, row_group_size=ROW_GROUP_SIZE, compression="zstd", use_dictionary=True, write_statistics=True)
    path = folder / f"train-{hashlib.sha256(tmp.read_bytes()).hexdigest()[:16]}.parquet"
    for old in folder.glob("*.parquet"):
        if old != path:
            old.unlink()
    tmp.replace(path)
    return path
