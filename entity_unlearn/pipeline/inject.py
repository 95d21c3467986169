"""Injecting a release's entities into a model by fine-tuning (``entity-unlearn inject``).

- plain: the release's injection QA (``full``: d1 questions), in the chat format the
  evaluator scores; ``--corpus`` adds the biographies as raw text.
- deep: biographies, the d1 QA *and* their paraphrases (d2 wording), mixed with the
  world-knowledge QA as general text, each fact seen more often (``preset``):
  knowledge held in more than one wording, closer to what pre-training leaves.

``exclude`` names a forget config whose entities are left out: that makes the
reference model. The base is ``tiny`` (the embedded default: a tokenizer trained
on the release's text and a small Llama-style model, no download) or any causal
LM folder / Hub id. The tiny base knows nothing at all, so its injection also
teaches the world-knowledge questions, which stand in for general knowledge that
unlearning must not damage.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from entity_unlearn.errors import EntityUnlearnError
from entity_unlearn.eval.ranks import ranks_from_env

from .finetune import EpochCheckpoint, TrainConfig, finetune, training_precision, with_lora
from .processes import check, strategy
from .tiny import TinyConfig, build_model, save, train_tokenizer

TINY_TRAIN = TrainConfig(epochs=22, lr=3e-3, batch_size=64)  # default release: forget05 d1 ROUGE-L recall 0.904 in 109-124 s (20 epochs: 0.888)
HUB_TRAIN = TrainConfig(epochs=5, lr=1e-5, batch_size=16)  # TOFU's fine-tuning recipe (lr 1e-5, 5 epochs)
# Deep injection sees each fact more often, and in three wordings (question, paraphrase, biography):
# the tiny preset's 10 epochs over the deep mix give 30 exposures per fact against plain's 22, at
# about 1.4x plain's compute; a Hub model gets twice plain's epochs.
TINY_DEEP_TRAIN = replace(TINY_TRAIN, epochs=10)
HUB_DEEP_TRAIN = replace(HUB_TRAIN, epochs=10)


def preset(base: str, deep: bool) -> TrainConfig:
    """The training preset for a base (``tiny`` or a Hub model) and injection mode."""
    if base == "tiny":
        return TINY_DEEP_TRAIN if deep else TINY_TRAIN
    return HUB_DEEP_TRAIN if deep else HUB_TRAIN


class InjectError(EntityUnlearnError, ValueError):
    """The base model or the release cannot be used for injection; the message says why."""


@dataclass(frozen=True)
class InjectConfig:
    base: str = "tiny"
    exclude: str | None = None
    corpus: bool = False
    deep: bool = False
    world: bool | None = None  # default: only for the tiny base
    train: TrainConfig | None = None  # default: TINY_TRAIN or HUB_TRAIN
    tiny: TinyConfig = field(default_factory=TinyConfig)
    device: str | None = None
    dtype: str | None = None
    lora_rank: int = 0
    allow_pickle: bool = False
    trust_remote_code: bool = False


def release_texts(data: str) -> list[str]:
    """Every text of the release a tokenizer should know: biographies, QA, probes, world questions."""
    from entity_unlearn.eval.data import open_release

    release = open_release(data)
    texts = [r["text"] for r in release.load("corpus")]
    for config in ("probes", "world"):
        for r in release.load(config):
            texts.append(r["question"] + " " + r["answer"] + " " + " ".join(r["perturbed_answer"]))
    return texts


def injection_data(data: str, cfg: InjectConfig) -> tuple[list[tuple[str, str]], list[str]]:
    """(QA pairs, raw texts) to train on, without the entities of ``cfg.exclude``."""
    from entity_unlearn.eval.data import open_release

    release = open_release(data)
    skip = {r["entity_id"] for r in release.load(cfg.exclude)} if cfg.exclude else set()
    full = [r for r in release.load("full") if r["entity_id"] not in skip]
    pairs = [(r["question"], r["answer"]) for r in full]
    texts: list[str] = []
    trained = {r["entity_id"] for r in full}
    if cfg.deep:
        pairs += [
            (r["question"], r["answer"])
            for r in release.load("probes")
            if r["kind"] == "paraphrase" and r["attack"] == "none" and r["entity_id"] in trained
        ]
    if cfg.deep or cfg.corpus:
        texts += [r["text"] for r in release.load("corpus") if r["entity_id"] not in skip]
    if cfg.world if cfg.world is not None else (cfg.base == "tiny" or cfg.deep):
        pairs += [(r["question"], r["answer"]) for r in release.load("world")]
    return pairs, texts


def inject(
    data: str, out: str | Path, cfg: InjectConfig = InjectConfig(), tokenizer=None, progress: bool = False, checkpoint: bool = True
) -> Path | None:
    """Fine-tune the base on the release's injection data and save it (safetensors), with ``injection.json``.
    With ``checkpoint`` the state after each epoch is kept in ``out``, and a rerun after an interruption resumes there.
    Started by a launcher as many processes, each trains on a share of every batch (``processes``); rank 0
    saves the model and returns its folder, the other ranks return None."""
    start = time.perf_counter()
    ranks = ranks_from_env()
    tiny = cfg.base == "tiny"
    train = cfg.train or preset(cfg.base, cfg.deep)
    if tiny and cfg.lora_rank:
        raise InjectError("--lora-rank: the tiny base is trained from scratch, every weight at once; LoRA needs a pretrained --base")
    check(ranks, lora=cfg.lora_rank > 0)  # a launcher's config these commands cannot honour, before any model is loaded
    pairs, texts = injection_data(data, cfg)
    if tiny:
        if tokenizer is None:  # trained once, by rank 0, so that every rank has the same one
            tokenizer = ranks.broadcast(train_tokenizer(release_texts(data), cfg.tiny.vocab_size) if ranks.main else None)
        tok = tokenizer
        model = build_model(tok, cfg.tiny)
        if ranks.device(cfg.device):
            model = model.to(ranks.device(cfg.device))
    else:
        from entity_unlearn.eval.model import CausalLM

        lm = CausalLM(cfg.base, ranks.device(cfg.device), "float32", cfg.allow_pickle, cfg.trust_remote_code)
        tok, model = lm.tokenizer, lm.model
        if cfg.lora_rank:
            model = with_lora(model, cfg.lora_rank)
    device = str(next(model.parameters()).device)
    amp = training_precision(device, cfg.dtype)
    run = {
        "config": asdict(cfg),
        "train": asdict(train),
        "autocast": amp,
        "vocab": tok.get_vocab(),
        "pairs": pairs,
        "texts": texts,
        "base_fingerprint": None if tiny else lm.fingerprint(),
    }
    ckpt = EpochCheckpoint(out if checkpoint else None, run)
    losses = finetune(model, tok, pairs, train, progress=progress, texts=texts, amp=amp, checkpoint=ckpt, ranks=ranks)
    if not ranks.main:  # every rank holds the same model: rank 0 saves it
        ranks.barrier()
        return None
    if cfg.lora_rank:
        model = model.merge_and_unload()
    if amp is not None:
        model = model.to(getattr(__import__("torch"), amp))  # saved in the precision it was trained to run in
    folder = save(model, tok, out)
    record = {
        "data": data,
        "config": asdict(cfg),
        "train": asdict(train),
        "device": device,
        "autocast": amp,
        "pairs": len(pairs),
        "texts": len(texts),
        "processes": ranks.world,
        "sharding": strategy(ranks),
        "loss_by_epoch": losses.by_epoch,
        "loss_by_step": losses.by_step,
        "seconds": round(time.perf_counter() - start, 1),
    }
    (folder / "injection.json").write_text(json.dumps(record, indent=1, sort_keys=True), encoding="utf-8")
    ckpt.finish()
    ranks.barrier()
    return folder


def inject_tiny(
    data: str,
    out: str | Path,
    exclude: str | None = None,
    tiny: TinyConfig | None = None,
    train: TrainConfig = TINY_TRAIN,
    tokenizer=None,
    progress: bool = False,
) -> Path:
    """The embedded default, plain injection of the release's QA only (no world questions): small and fast, for tests and scripts."""
    return inject(
        data, out, InjectConfig(exclude=exclude, tiny=tiny or TinyConfig(), train=train, world=False), tokenizer=tokenizer, progress=progress
    )
