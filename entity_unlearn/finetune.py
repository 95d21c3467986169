"""Fine-tuning a causal LM on question-answer pairs, formatted exactly as the evaluator scores them.

Loss is the token cross-entropy of the continuation (answer + end-of-turn token);
the context is masked out. Batches are seeded, so the same data and seed give
the same model on the same machine.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from tqdm.auto import tqdm

from entity_unlearn.eval.formatting import Formatter

IGNORE = -100


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 30
    lr: float = 3e-3
    batch_size: int = 16
    weight_decay: float = 0.0
    grad_accum: int = 1
    seed: int = 0


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


def finetune(model, tokenizer, pairs: Sequence[tuple[str, str]], config: TrainConfig = TrainConfig(), chat_template: str = "auto",
             progress: bool = False, texts: Sequence[str] = ()) -> list[float]:
    """Train ``model`` in place on ``pairs`` (and raw ``texts``); returns the mean loss of each epoch."""
    import torch

    formatter = Formatter(tokenizer, chat_template)
    data = encode_pairs(formatter, pairs) + encode_texts(formatter, texts)
    device = next(model.parameters()).device
    gen = torch.Generator().manual_seed(config.seed)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=config.lr, weight_decay=config.weight_decay)
    model.train()
    history = []
    step = 0
    for _ in tqdm(range(config.epochs), desc="fine-tuning", unit="epoch", disable=not progress):
        order = torch.randperm(len(data), generator=gen).tolist()
        losses = []
        for start in range(0, len(order), config.batch_size):
            ids, mask, labels = collate([data[i] for i in order[start:start + config.batch_size]], tokenizer.pad_token_id)
            loss = model(input_ids=ids.to(device), attention_mask=mask.to(device), labels=labels.to(device)).loss
            (loss / config.grad_accum).backward()
            step += 1
            if step % config.grad_accum == 0:
                opt.step()
                opt.zero_grad()
            losses.append(loss.item())
        history.append(sum(losses) / len(losses))
    if step % config.grad_accum:
        opt.step()
        opt.zero_grad()
    model.eval()
    return history
