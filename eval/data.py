"""Reading a release into evaluation items, by set, from the forget choice.

``--forget forget05`` gives, from the release's configs:

- forget: every probe (all depths and attacks) of the forget05 entities (``probes``);
- retain: at d1 without attack exactly TOFU's ``retain_perturbed`` rows; at the other
  depths and attacks, every probe of as many retain persons as there are forget
  persons (the first distinct entities of ``retain_perturbed``);
- neighbor: every probe of the entities linked to a forget05 entity (``neighbor``'s
  ``linked_forget_ids``);
- holdout: every probe of the holdout05 entities (never trained on);
- world: the ``world`` questions (d1, no attack; the answer stands in for the paraphrase);
- real_authors: the ``real_authors_perturbed`` rows (TOFU's Real Authors stand-in: "who wrote / who founded"
  questions answered by a name; d1, no attack; the answer stands in for the paraphrase). A release built
  before that config existed has none, and TOFU's ``model_utility`` is then NaN.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from entity_unlearn.builders.release.build import FORMAT as RELEASE_FORMAT
from entity_unlearn.builders.world.files import FORMAT as WORLD_FORMAT
from entity_unlearn.errors import EntityUnlearnError

from .passes import Item

FORGET = re.compile(r"^forget(\d{2})$")


class DataError(EntityUnlearnError, ValueError):
    """The release or the forget choice cannot be evaluated; the message names the config and what to do."""


@dataclass(frozen=True)
class Release:
    path: str
    revision: str | None
    manifest: dict
    manifest_sha256: str

    def load(self, config: str, columns: Sequence[str] | None = None, keep: Mapping[str, Collection] | None = None) -> list[dict]:
        """The rows of ``config`` as dicts, with only ``columns`` (those of them the config has) when given, and
        only the rows whose value in each column of ``keep`` is among its values.

        A local folder's parquet file (named by the manifest) is read and filtered with pyarrow directly, before
        any row becomes a dict; a Hub release goes through ``datasets``, which downloads and caches it."""
        configs = self.manifest.get("configs", {})
        if config not in configs:
            raise DataError(f"{self.path}: the release has no config {config!r}; its configs are {sorted(configs)}")
        local = Path(self.path) / str(configs[config].get("path", ""))
        keep = keep or {}
        if Path(self.path).is_dir() and local.is_file():
            import pyarrow as pa
            import pyarrow.compute as pc
            import pyarrow.parquet as pq

            file = pq.ParquetFile(local)
            names = file.schema_arrow.names
            read = [c for c in columns if c in names] if columns else names
            table = file.read(columns=read + [c for c in keep if c not in read])
            for column, values in keep.items():
                wanted = pa.array(list(values), type=table.schema.field(column).type)
                table = table.filter(pc.is_in(table[column], value_set=wanted))
            return table.select(read).to_pylist()
        from datasets import load_dataset

        rows = load_dataset(self.path, config, revision=self.revision, split="train")
        read = [c for c in columns if c in rows.column_names] if columns else rows.column_names
        return [{c: r[c] for c in read} for r in rows if all(r[column] in values for column, values in keep.items())]


def open_release(data: str) -> Release:
    """``DIR`` or ``ORG/NAME[@REVISION]``; reads ``manifest.json`` (locally or from the Hub)."""
    path, _, revision = data.partition("@")
    folder = Path(path)
    if folder.is_dir():
        mpath = folder / "manifest.json"
        if not mpath.is_file():
            raise DataError(f"{folder}: no manifest.json; build a release with `entity-unlearn build --out {folder}`")
        raw = mpath.read_bytes()
    else:
        from huggingface_hub import hf_hub_download

        try:
            raw = Path(hf_hub_download(path, "manifest.json", repo_type="dataset", revision=revision or None)).read_bytes()
        except Exception as exc:  # the hub client raises many kinds; all mean the same to the user
            raise DataError(
                f"--data {data}: not a local release folder and its manifest.json cannot be fetched from the Hub ({exc.__class__.__name__})"
            ) from exc
    try:
        manifest = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise DataError(f"--data {data}: manifest.json is not valid JSON ({exc}); rebuild the release with `entity-unlearn build`") from exc
    found = manifest.get("format") if isinstance(manifest, dict) else type(manifest).__name__
    if found == WORLD_FORMAT:
        raise DataError(
            f"--data {data}: this is a world folder (entity-unlearn generate), not a release; "
            f"build a release from it: entity-unlearn build --world {path} --version 1.0.0 --out RELEASE"
        )
    if found != RELEASE_FORMAT:
        raise DataError(f"--data {data}: manifest.json is of format {found!r}, not a release's; give a folder written by `entity-unlearn build`")
    return Release(path, revision or None, manifest, hashlib.sha256(raw).hexdigest())


ITEM_COLUMNS = (
    "probe_id",
    "entity_id",
    "depth",
    "attack",
    "kind",
    "question",
    "answer",
    "short_answer",
    "paraphrased_answer",
    "perturbed_answer",
    "options",
    "answer_index",
    "fact_ids",  # the robustness prompt attacks pick earlier turns by fact
)


def _item(row: dict, set_: str) -> Item:
    return Item(
        item_id=f"{set_}:{row['probe_id']}",
        set=set_,
        entity_id=row["entity_id"],
        depth=row.get("depth", "d1"),
        attack=row.get("attack", "none"),
        kind=row.get("kind", "direct"),
        question=row["question"],
        answer=row["answer"],
        short_answer=row.get("short_answer", row["answer"]),
        paraphrased_answer=row.get("paraphrased_answer"),
        perturbed_answer=tuple(row["perturbed_answer"]),
        options=tuple(row["options"]),
        answer_index=int(row["answer_index"]),
        fmt="text" if row.get("kind") == "cloze" else "chat",
        fact_ids=tuple(row.get("fact_ids") or ()),
    )


def load_items(
    release: Release, forget: str, sets: tuple[str, ...] = ("forget", "retain", "neighbor", "holdout", "world", "real_authors")
) -> tuple[list[Item], dict]:
    """Items of every requested set, and a description of what was selected."""
    m = FORGET.match(forget)
    if not m or forget not in release.manifest.get("configs", {}):
        choices = sorted(c for c in release.manifest.get("configs", {}) if FORGET.match(c))
        raise DataError(f"--forget {forget}: not a forget set of this release; choose one of {choices}")
    pct = int(m[1])
    entities = release.load("entities", ("entity_id", "splits"))
    membership = {r["entity_id"]: set(r["splits"]) for r in entities}
    forget_ids = {e for e, s in membership.items() if forget in s}
    if not forget_ids:
        raise DataError(f"--forget {forget}: the release's forget set is empty; rebuild it with more entities")
    holdout_ids = {e for e, s in membership.items() if f"holdout{pct:02d}" in s}
    retain_rows = release.load("retain_perturbed", ITEM_COLUMNS)
    sampled: list[str] = []
    for r in retain_rows:
        if r["entity_id"] not in sampled and r["entity_id"] not in forget_ids:
            sampled.append(r["entity_id"])
    retain_ids = set(sampled[: len(forget_ids)])
    neighbor_ids = {r["entity_id"] for r in release.load("neighbor", ("entity_id", "linked_forget_ids")) if forget_ids & set(r["linked_forget_ids"])}
    items: list[Item] = []
    by_set = {"forget": forget_ids, "holdout": holdout_ids, "neighbor": neighbor_ids, "retain": retain_ids}
    wanted = set().union(*(by_set[s] for s in sets if s in by_set))
    for row in release.load("probes", ITEM_COLUMNS, keep={"entity_id": wanted}):  # 4k of 22k rows in the default release
        eid = row["entity_id"]
        headline = row["depth"] == "d1" and row["attack"] == "none"
        for name, ids in by_set.items():  # retain's headline questions are retain_perturbed's rows (below)
            if name in sets and eid in ids and not (name == "retain" and headline):
                items.append(_item(row, name))
    if "retain" in sets:
        items += [_item(r, "retain") for r in retain_rows if r["entity_id"] not in forget_ids]
    if "world" in sets:
        items += [_item({**r, "paraphrased_answer": None}, "world") for r in release.load("world", ITEM_COLUMNS)]
    has_authors = "real_authors_perturbed" in release.manifest.get("configs", {})
    if "real_authors" in sets and has_authors:
        items += [_item({**r, "paraphrased_answer": None}, "real_authors") for r in release.load("real_authors_perturbed", ITEM_COLUMNS)]
    info = {
        "forget": forget,
        "forget_entities": sorted(forget_ids),
        "retain_entities_deep": sorted(retain_ids),
        "neighbor_entities": sorted(neighbor_ids),
        "holdout": f"holdout{pct:02d}",
        "holdout_entities": sorted(holdout_ids),
        "items_by_set": {s: sum(1 for i in items if i.set == s) for s in sets},
        "real_authors": "real_authors_perturbed" if has_authors else "absent: the release predates the real_authors_perturbed config",
    }
    return items, info
