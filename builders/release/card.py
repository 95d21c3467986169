"""The release's README.md: YAML metadata (``configs:`` for ``datasets``) and the card from ``cards/``.

The YAML lists each config with ``data_files: data/<config>/train-<content hash>.parquet`` and
marks the manifest's ``default_config`` with ``default: true``. All prose lives
in ``cards/dataset_card.md.j2``, rendered with ``StrictUndefined``; this module
only computes the numbers and examples the template shows.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

from entity_unlearn.cards import CARD_DIR

from ..schema import DEPTH_NAMES, DEPTHS, World
from .export import LAYOUTS
from .splits import Splits

CARD_TEMPLATE = "dataset_card.md.j2"
_FAMILY = re.compile(r"^(?P<family>[a-z_]+?)(?P<pct>\d\d)?(?:_cov(?P<cov>\d\d))?(?P<perturbed>_perturbed)?$")


def config_family(name: str) -> dict[str, Any]:
    """``forget05_cov25`` -> {"family": "coverage", "pct": 5, "cov": 25}; the card describes a config by its family."""
    m = _FAMILY.match(name)
    if m is None:
        raise ValueError(f"config name {name!r} has no family")
    family = m["family"]
    if m["cov"]:
        family = "coverage"
    elif m["perturbed"]:
        family = f"{family}_perturbed"
    return {"family": family, "pct": int(m["pct"]) if m["pct"] else None, "cov": int(m["cov"]) if m["cov"] else None}


def yaml_header(manifest: dict[str, Any]) -> str:
    """The README's YAML front matter (deterministic key order)."""
    import yaml

    configs = []
    for name in manifest["configs"]:
        entry: dict[str, Any] = {"config_name": name}
        if name == manifest["default_config"]:
            entry["default"] = True
        entry["data_files"] = [{"split": "train", "path": manifest["configs"][name]["path"]}]  # exact, content-hashed name
        configs.append(entry)
    meta = {
        "pretty_name": manifest["name"],
        "license": manifest["license"],
        "language": ["en"],
        "task_categories": ["question-answering", "text-generation"],
        "tags": ["unlearning", "machine-unlearning", "synthetic", "entity-unlearning", "tofu"],
        "size_categories": [_size_category(manifest["configs"]["probes"]["rows"])],
        "configs": configs,
    }
    return "---\n" + yaml.safe_dump(meta, sort_keys=False, allow_unicode=True, width=1000) + "---\n"


def _size_category(n: int) -> str:
    for limit, label in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")):
        if n < limit:
            return label
    return "n>1M"


def depth_table(world: World, splits: Splits) -> list[dict[str, Any]]:
    """One row per depth: name, probe count, and an example question about the first training person."""
    counts = Counter(p.depth for p in world.probes)
    first = splits.train[0]
    rows = []
    for depth in DEPTHS:
        example = next((p for p in world.probes if p.entity_id == first and p.depth == depth and p.attack == "none"), None)
        example = example or next((p for p in world.probes if p.depth == depth and p.attack == "none"), None)
        rows.append(
            {
                "depth": depth,
                "name": DEPTH_NAMES[depth],
                "count": counts.get(depth, 0),
                "kind": example.kind if example else "",
                "question": example.question if example else "",
                "answer": example.short_answer if example else "",
            }
        )
    return rows


def changelog(previous: dict[str, Any] | None, manifest: dict[str, Any]) -> dict[str, Any] | None:
    """What changed since ``previous`` (a release manifest): settings, configs added/removed, row counts, files."""
    if previous is None:
        return None
    old, new = previous["configs"], manifest["configs"]
    settings = [
        {"key": k, "old": previous.get(k), "new": manifest.get(k)}
        for k in ("seed", "generator_version", "k_perturbed", "license", "default_config")
        if previous.get(k) != manifest.get(k)
    ]
    rows = [{"config": n, "old": old[n]["rows"], "new": new[n]["rows"]} for n in new if n in old and old[n]["rows"] != new[n]["rows"]]
    changed = sorted(p for p, f in manifest["files"].items() if p in previous["files"] and previous["files"][p]["sha256"] != f["sha256"])
    return {
        "from_version": previous["version"],
        "settings": settings,
        "added": [n for n in new if n not in old],
        "removed": [n for n in old if n not in new],
        "rows": rows,
        "changed_files": changed,
    }


def render_readme(manifest: dict[str, Any], world: World, splits: Splits, previous: dict[str, Any] | None = None, audit: str | None = None) -> str:
    """README.md text: YAML front matter, then the card. ``manifest['files']`` holds the parquet files (the README is not written yet);
    ``audit`` is the validity audit's Markdown (``builders/audit``), shown in the card's "Validity audit" section."""
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    env = Environment(
        loader=FileSystemLoader(str(CARD_DIR)),
        undefined=StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["cell"] = lambda text: str(text).replace("|", "\\|").replace("\n", " ")
    configs = [{"name": n, **c, **config_family(n), "columns": list(LAYOUTS[c["layout"]])} for n, c in manifest["configs"].items()]
    columns = sorted({c for cfg in configs for c in cfg["columns"]})
    log = changelog(previous, manifest)
    body = env.get_template(CARD_TEMPLATE).render(
        m=manifest,
        configs=configs,
        columns=columns,
        depths=depth_table(world, splits),
        changelog=log,
        perturbed_k=world.k_perturbed,
        audit=audit,
    )
    return yaml_header(manifest) + "\n" + body
