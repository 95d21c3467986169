"""Injecting a release's entities into a model by fine-tuning on its QA (``full``).

``inject_tiny`` builds the embedded default (tokenizer trained on the release's
text, small Llama-style model) and fine-tunes it; ``exclude`` names a forget
config whose entities are left out, which makes the reference model.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from .finetune import TrainConfig, finetune
from .tiny import TinyConfig, build_model, save, train_tokenizer


def release_pairs(data: str, config: str = "full", exclude: str | None = None) -> list[tuple[str, str]]:
    """(question, answer) pairs of ``config``, without the entities of config ``exclude``."""
    from entity_unlearn.eval.data import open_release

    release = open_release(data)
    skip = {r["entity_id"] for r in release.load(exclude)} if exclude else set()
    return [(r["question"], r["answer"]) for r in release.load(config) if r["entity_id"] not in skip]


def release_texts(data: str) -> list[str]:
    """Every text of the release a tokenizer should know: biographies, QA, probes."""
    from entity_unlearn.eval.data import open_release

    release = open_release(data)
    texts = [r["text"] for r in release.load("corpus")]
    for config in ("probes", "world"):
        for r in release.load(config):
            texts.append(r["question"] + " " + r["answer"] + " " + " ".join(r["perturbed_answer"]))
    return texts


def inject_tiny(data: str, out: str | Path, exclude: str | None = None, tiny: TinyConfig = TinyConfig(),
                train: TrainConfig = TrainConfig(), tokenizer=None, progress: bool = False) -> Path:
    """Fine-tune a fresh tiny model on the release's QA and save it (safetensors) with a record of how."""
    tok = tokenizer or train_tokenizer(release_texts(data), tiny.vocab_size)
    model = build_model(tok, tiny)
    pairs = release_pairs(data, "full", exclude)
    history = finetune(model, tok, pairs, train, progress=progress)
    folder = save(model, tok, out)
    record = {"data": data, "exclude": exclude, "pairs": len(pairs), "tiny": asdict(tiny), "train": asdict(train), "loss_by_epoch": history}
    (folder / "injection.json").write_text(json.dumps(record, indent=1, sort_keys=True), encoding="utf-8")
    return folder
