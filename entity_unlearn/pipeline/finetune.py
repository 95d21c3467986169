"""Fine-tuning a causal LM on question-answer pairs, formatted exactly as the evaluator scores them.

Loss is the token cross-entropy of the continuation (answer + end-of-turn token);
the context is masked out. Batches are seeded, so the same data and seed give
the same model on the same machine.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from entity_unlearn.errors import EntityUnlearnError
from entity_unlearn.eval.formatting import Formatter
from entity_unlearn.eval.ranks import Ranks

IGNORE = -100


class TrainingError(EntityUnlearnError, ValueError):
    """A training option cannot be used; the message names it."""


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 30
    lr: float = 3e-3
    batch_size: int = 16
    weight_decay: float = 0.0
    grad_accum: int = 1
    seed: int = 0


def with_lora(model, rank: int):
    """Wrap ``model`` with LoRA adapters of rank ``rank`` on its attention projections (needs the optional ``peft``);
    ``model.merge_and_unload()`` folds them back into a plain model after training."""
    try:
        from peft import LoraConfig, get_peft_model
    except ImportError as exc:
        raise TrainingError("--lora-rank needs peft: pip install 'entity-unlearn[gpu]' (or pip install peft)") from exc
    if rank < 1:
        raise TrainingError(f"--lora-rank {rank}: give a rank of 1 or more (8-64 is usual)")
    return get_peft_model(model, LoraConfig(r=rank, lora_alpha=2 * rank, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"], lora_dropout=0.0))


def training_precision(device: str, dtype: str | None) -> str | None:
    """The autocast dtype for training: weights and optimiser state stay float32 (a bf16 AdamW step of
    lr 1e-5 rounds away), the forward pass runs in ``dtype``; default bfloat16 on CUDA, none on CPU."""
    name = dtype or ("bfloat16" if device.startswith("cuda") else "float32")
    if name not in ("float32", "bfloat16", "float16"):
        raise TrainingError(f"--dtype {name}: train in float32, bfloat16 or float16")
    return None if name == "float32" else name


def autocast(device, amp: str | None):
    """A context that runs the forward pass in ``amp`` precision (nothing when None)."""
    import contextlib

    import torch

    if amp is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=torch.device(device).type, dtype=getattr(torch, amp))


@dataclass(frozen=True)
class Losses:
    """The loss of each step (batch) of a training run, and the mean of each epoch's. With many processes a step's
    loss is the global batch's (``processes``), the one a single process computes."""

    by_epoch: list[float]
    by_step: list[float]


class EpochCheckpoint:
    """The whole training state, saved after every epoch to ``folder/checkpoint.safetensors`` (written aside and
    renamed), so that a run stopped by a crash or Ctrl-C resumes at the last finished epoch and ends with
    the same weights as an uninterrupted run. ``run`` describes the run (options, data, starting weights):
    a checkpoint of another run is ignored and overwritten. ``folder=None``: no checkpoints.

    A checkpoint is untrusted input like any other file in ``--out``: it is safetensors (tensors only: weights,
    optimiser moments, random-generator states) with the plain data (key, epoch, loss history, optimiser
    settings) as JSON in the file's header. The key is read from the header before any tensor is, and nothing
    is ever unpickled, so a planted file cannot run code; one that cannot be read is set aside and the run
    starts over."""

    NAME = "checkpoint.safetensors"
    LEGACY = "checkpoint.pt"  # pickle, written by earlier versions: never read

    def __init__(self, folder: str | Path | None, run) -> None:
        self.path = Path(folder) / self.NAME if folder is not None else None
        self.key = hashlib.sha256(json.dumps(run, sort_keys=True, default=str).encode("utf-8")).hexdigest()

    def _header(self) -> dict | None:
        """The plain data in the checkpoint's header, or None when there is no readable checkpoint of this run."""
        from safetensors import SafetensorError, safe_open

        if self.path is None:
            return None
        legacy = self.path.with_name(self.LEGACY)
        if legacy.is_file():
            print(f"ignoring {legacy}: a pickle checkpoint of an older version is never loaded (it could run code); starting over", flush=True)
        if not self.path.is_file():
            return None
        try:
            with safe_open(str(self.path), framework="pt") as f:
                header = json.loads((f.metadata() or {}).get("entity_unlearn", "null"))
        except (SafetensorError, OSError, ValueError) as exc:
            print(f"ignoring {self.path}: not a readable checkpoint ({exc.__class__.__name__}); starting over", flush=True)
            return None
        return header if isinstance(header, dict) and header.get("key") == self.key else None

    def resume(self, model, opt, gen) -> tuple[int, int, Losses]:
        """Load a matching checkpoint into model, optimiser and generator; (epochs done, steps done, losses so far)."""
        import torch
        from safetensors.torch import load_file

        header = self._header()
        if header is None:
            return 0, 0, Losses([], [])
        from . import fsdp

        tensors = load_file(str(self.path))
        weights = {k.removeprefix("model/"): t for k, t in tensors.items() if k.startswith("model/")}
        if fsdp.is_sharded(model):
            fsdp.place_state(model, weights)
        else:
            model.load_state_dict(weights, strict=False)
        state = {
            int(i): {**plain, **{k.split("/")[2]: t for k, t in tensors.items() if k.startswith(f"optimizer/{i}/")}}
            for i, plain in header["optimizer_state"].items()
        }
        groups = [
            {k: tuple(v) if isinstance(now.get(k), tuple) else v for k, v in saved.items()}
            for saved, now in zip(header["param_groups"], opt.param_groups)
        ]
        saved = {"state": state, "param_groups": groups}
        opt.load_state_dict(fsdp.place_optimizer_state(opt, saved) if fsdp.is_sharded(model) else saved)
        gen.set_state(tensors["rng/generator"])
        torch.set_rng_state(tensors["rng/torch"])
        cuda = [tensors[f"rng/cuda/{i}"] for i in range(header["cuda_devices"])]
        if cuda and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(cuda)
        print(f"resuming at epoch {header['epoch'] + 1} from {self.path}", flush=True)
        return header["epoch"], header["step"], Losses(list(header["history"]), list(header.get("step_losses", [])))

    def save(self, epoch: int, step: int, losses: Losses, model, opt, gen, ranks: Ranks | None = None) -> None:
        """Every rank calls it; rank 0 writes. Under FSDP (``model`` sharded) the weights and optimiser moments are
        gathered whole first, so the file is the one a single process writes."""
        import torch
        from safetensors.torch import save_file

        from . import fsdp

        if self.path is None:
            return
        main = ranks is None or ranks.main
        if fsdp.is_sharded(model):
            tensors = {f"model/{n}": t for n, t in fsdp.full_state(model, main).items()}
            optimizer = fsdp.full_optimizer_state(opt, main)
        else:
            trained = {n for n, p in model.named_parameters() if p.requires_grad}  # frozen weights come from the start point
            tensors = {f"model/{n}": t for n, t in model.state_dict().items() if n in trained}
            optimizer = opt.state_dict()
        if not main:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        plain_state = {}
        for i, entry in optimizer["state"].items():
            plain_state[str(i)] = {k: v for k, v in entry.items() if not isinstance(v, torch.Tensor)}
            tensors.update({f"optimizer/{i}/{k}": v for k, v in entry.items() if isinstance(v, torch.Tensor)})
        tensors["rng/generator"] = gen.get_state()
        tensors["rng/torch"] = torch.get_rng_state()
        cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []
        tensors.update({f"rng/cuda/{i}": t for i, t in enumerate(cuda)})
        header = {
            "key": self.key,
            "epoch": epoch,
            "step": step,
            "history": losses.by_epoch,
            "step_losses": losses.by_step,
            "optimizer_state": plain_state,
            "param_groups": optimizer["param_groups"],
            "cuda_devices": len(cuda),
        }
        tmp = self.path.with_suffix(".tmp")
        save_file({k: t.detach().cpu().contiguous() for k, t in tensors.items()}, str(tmp), metadata={"entity_unlearn": json.dumps(header)})
        os.replace(tmp, self.path)

    def finish(self) -> None:
        """The run is saved for good: drop its checkpoint."""
        if self.path is not None:
            self.path.unlink(missing_ok=True)


def accumulated(k: int, n: int, every: int) -> bool:
    """Whether to step the optimiser after batch ``k`` of an epoch of ``n``: every ``every`` batches and at the
    epoch's end, so no gradient crosses an epoch boundary (where a checkpoint is taken)."""
    return (k + 1) % every == 0 or k + 1 == n


def encode_pairs(formatter: Formatter, pairs: Sequence[tuple[str, str]]) -> list[tuple[list[int], list[int]]]:
    """(input ids, labels) per pair; labels are -100 over the context."""
    out = []
    for q, a in pairs:
        enc = formatter.encode(q, a)
        ids = list(enc.context + enc.continuation)
        out.append((ids, [IGNORE] * len(enc.context) + list(enc.continuation)))
    return out


def encode_texts(formatter: Formatter, texts: Sequence[str]) -> list[tuple[list[int], list[int]]]:
    """(input ids, labels) per raw text (a biography): every token after BOS is learned."""
    out = []
    for text in texts:
        ids = list(formatter.encode_prefix(text)) + [formatter.tok.eos_token_id]
        out.append((ids, [IGNORE] + ids[1:]))
    return out


def collate(examples: Sequence[tuple[list[int], list[int]]], pad_id: int):
    """Right-padded input ids, attention mask and labels as tensors."""
    import torch

    width = max(len(ids) for ids, _ in examples)
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    for i, (x, y) in enumerate(examples):
        ids[i, : len(x)] = torch.tensor(x)
        labels[i, : len(y)] = torch.tensor(y)
        mask[i, : len(x)] = 1
    return ids, mask, labels


def batches_per_epoch(n: int, batch_size: int, pool: int = 50) -> int:
    """How many batches ``length_batches`` cuts ``n`` examples into (each pool is cut on its own)."""
    return sum(-(-min(batch_size * pool, n - start) // batch_size) for start in range(0, n, batch_size * pool))


def length_batches(lengths: Sequence[int], batch_size: int, generator, pool: int = 50) -> list[list[int]]:
    """A seeded epoch of batches of similar length: shuffle, sort each pool of ``pool`` batches by length,
    cut, shuffle the batches. Mixing a 250-token biography into a batch of 40-token questions would
    otherwise pad the whole batch to 250."""
    import torch

    order = torch.randperm(len(lengths), generator=generator).tolist()
    out: list[list[int]] = []
    for start in range(0, len(order), batch_size * pool):
        chunk = sorted(order[start : start + batch_size * pool], key=lambda i: lengths[i])
        out += [chunk[k : k + batch_size] for k in range(0, len(chunk), batch_size)]
    return [out[i] for i in torch.randperm(len(out), generator=generator).tolist()]


def finetune(
    model,
    tokenizer,
    pairs: Sequence[tuple[str, str]],
    config: TrainConfig = TrainConfig(),
    chat_template: str = "auto",
    progress: bool = False,
    texts: Sequence[str] = (),
    amp: str | None = None,
    checkpoint: EpochCheckpoint | None = None,
    ranks: Ranks | None = None,
) -> Losses:
    """Train ``model`` in place on ``pairs`` (and raw ``texts``); returns the losses of each step and epoch.
    ``amp``: autocast dtype of the forward pass (``training_precision``); ``checkpoint``: where to keep
    the state after each epoch (the caller calls ``finish`` once the model is saved); ``ranks``: this
    process's place among many, each training on its shard of every batch (``processes``)."""
    import torch

    from .processes import shard, syncing, trained, unwrap, wrap

    ranks = ranks or Ranks()
    formatter = Formatter(tokenizer, chat_template)
    data = encode_pairs(formatter, pairs) + encode_texts(formatter, texts)
    device = next(model.parameters()).device
    gen = torch.Generator().manual_seed(config.seed)
    net = wrap(model, ranks)
    module = trained(net)  # ``model``, or under FSDP its sharded copy
    opt = torch.optim.AdamW([p for p in module.parameters() if p.requires_grad], lr=config.lr, weight_decay=config.weight_decay)
    checkpoint = checkpoint or EpochCheckpoint(None, None)
    done, step, log = checkpoint.resume(module, opt, gen)
    net.train()
    per_epoch = batches_per_epoch(len(data), config.batch_size)
    bar = tqdm(total=config.epochs * per_epoch, initial=done * per_epoch, desc="fine-tuning", unit="step", disable=not progress or not ranks.main)
    for epoch in range(done, config.epochs):
        losses = []
        batches = length_batches([len(ids) for ids, _ in data], config.batch_size, gen)
        for k, batch in enumerate(batches):
            part = shard(batch, data, ranks)
            ids, mask, labels = collate([data[i] for i in part.indices], tokenizer.pad_token_id)
            stepping = accumulated(k, len(batches), config.grad_accum)
            with syncing(net, stepping):
                with autocast(device, amp):
                    loss = net(input_ids=ids.to(device), attention_mask=mask.to(device), labels=labels.to(device)).loss * part.tokens
                (loss * ranks.world / config.grad_accum).backward()  # DDP and FSDP average over ranks; the sum is the global batch's gradient
            step += 1
            if stepping:
                opt.step()
                opt.zero_grad()
            losses.append(ranks.total(loss.item()))
            bar.set_postfix(epoch=f"{epoch + 1}/{config.epochs}", loss=f"{sum(losses) / len(losses):.3f}", refresh=False)
            bar.update()
        log = Losses(log.by_epoch + [sum(losses) / len(losses)], log.by_step + losses)
        checkpoint.save(epoch + 1, step, log, module, opt, gen, ranks)
        ranks.barrier()  # no rank goes on before the epoch's checkpoint is on disk
    bar.close()
    unwrap(net, model, device)
    model.eval()
    return log
