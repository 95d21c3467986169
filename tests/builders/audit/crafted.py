"""Hand-made world folders for the audit's tests: a few gadget entities and probes built to order.

``write_world(folder, probes, bios)`` writes the four JSONL files and a world manifest, as
``entity-unlearn generate`` would; the audit reads them back like any world.
"""

from __future__ import annotations

import json
from pathlib import Path

SYLLABLES = ("ka", "vo", "tre", "mi", "su", "da", "lo")
N = 40


def name(i: int) -> str:
    """A distinct invented two-word name per index."""
    a, b = SYLLABLES[i % 7], SYLLABLES[(i // 7) % 7]
    return f"{a.title()}{b}rn Vel{b}{a}"


def probe(i: int, question: str, options: list[str], truth: int, field: str = "colour", depth: str = "d2", kind: str = "paraphrase") -> dict:
    short = options[truth]
    wrong = [o for k, o in enumerate(options) if k != truth]
    return {
        "probe_id": f"G{i:05d}/{depth}/{field}/1",
        "entity_id": f"G{i:05d}",
        "entity_type": "gadget",
        "depth": depth,
        "kind": kind,
        "attack": "none",
        "template_id": f"gadget/qa.j2#{field}",
        "question": question,
        "answer": f"It is {short}.",
        "short_answer": short,
        "paraphrased_question": question,
        "paraphrased_answer": f"The answer is {short}.",
        "perturbed_answer": [f"The answer is {w}." for w in wrong],
        "options": options,
        "answer_index": truth,
        "fact_ids": [],
        "source": "template",
    }


def write_world(
    folder: Path,
    probes: list[dict],
    bios: dict[int, str] | None = None,
    n: int = N,
    entities: list[dict] | None = None,
    facts: list[dict] | None = None,
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    bios = bios or {}
    if entities is None:
        entities = [
            {"entity_id": f"G{i:05d}", "entity_type": "gadget", "name": name(i), "aliases": [], "attributes": {}, "links": {}} for i in range(n)
        ]
    files = {
        "entities": entities,
        "facts": facts or [],
        "biographies": [{"entity_id": e["entity_id"], "text": bios.get(i, ""), "sentences": []} for i, e in enumerate(entities)],
        "probes": probes,
    }
    for stem, rows in files.items():
        (folder / f"{stem}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    manifest = {"format": "entity-unlearn-world/1", "seed": 0, "generator_version": "crafted", "k_perturbed": 5}
    (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    return folder
