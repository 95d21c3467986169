"""Training on many processes (DDP): N processes take the steps of one process, each on a shard of every batch.

A launcher (``inject --num-processes N``, ``torchrun``, ``accelerate launch``; see ``eval.ranks``)
starts N copies of the command. Every copy draws the same seeded epoch of global batches one
process would draw; rank r trains on examples r, r+N, r+2N, ... of each global batch (its shard;
the length buckets make the shards alike). The model is wrapped in torch's
``DistributedDataParallel``, which averages the ranks' gradients. So that this average is the
one-process gradient, a loss's mean over a batch is taken over the *global* batch: each rank's
mean times its shard's share of the global batch's answer tokens (a token mean) or sequences (a
sequence mean), and the rank's loss is multiplied by N before its backward pass. Shard means
differ from the global mean whenever shards hold different token counts, so dividing by N alone
would not do. The loss of a step is the sum of the ranks' losses.

A shard left empty (a global batch of fewer examples than processes) takes the batch's first
example with share 0: its rank still joins the gradient all-reduce, adding nothing to it.

In one process every share is 1, nothing is wrapped and nothing is communicated: the numbers
are those of a run before this module existed (bitwise: the same weights after inject, npo_gd
and kl, compared with the code before it).

Every rank holds the whole model and its optimiser state, and they stay equal; rank 0 alone
writes the epoch checkpoints and the model. FSDP or DeepSpeed asked for by an accelerate config
is refused (``wrap``): it would need the sharded model's own checkpointing.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from dataclasses import dataclass

from entity_unlearn.eval.ranks import Ranks

from .finetune import IGNORE, TrainingError


@dataclass(frozen=True)
class Shard:
    """This rank's examples of a global batch, with their share of its answer tokens and of its examples."""

    indices: list[int]
    tokens: float
    rows: float


def answer_tokens(labels: Sequence[int]) -> int:
    """The tokens a loss averages over: labelled positions after the first (position t is predicted from those before it)."""
    return sum(1 for y in labels[1:] if y != IGNORE)


def shard(batch: Sequence[int], data: Sequence[tuple[list[int], list[int]]], ranks: Ranks) -> Shard:
    """Rank ``ranks.rank``'s shard of the global batch ``batch`` (indices into ``data``, (ids, labels) pairs)."""
    if ranks.world == 1:
        return Shard(list(batch), 1.0, 1.0)
    mine = list(batch[ranks.rank :: ranks.world])
    if not mine:
        return Shard([batch[0]], 0.0, 0.0)
    total = sum(answer_tokens(data[i][1]) for i in batch)
    return Shard(mine, sum(answer_tokens(data[i][1]) for i in mine) / max(total, 1), len(mine) / len(batch))


def wrap(model, ranks: Ranks):
    """The module the training loop calls: ``model`` in DDP across the ranks, ``model`` itself in one process.
    DDP starts every rank from rank 0's weights; no buffer changes in training, so none is broadcast again."""
    if ranks.world == 1:
        return model
    for var, name in (("ACCELERATE_USE_FSDP", "FSDP"), ("ACCELERATE_USE_DEEPSPEED", "DeepSpeed")):
        if os.environ.get(var, "").lower() in ("1", "true"):
            raise TrainingError(
                f"accelerate launch asks for {name} ({var}={os.environ[var]}): inject and unlearn train with DDP, each process "
                f"holding the whole model; launch with a multi-GPU accelerate config without {name}, or with --num-processes N"
            )
    from torch.nn.parallel import DistributedDataParallel

    device = next(model.parameters()).device
    return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None, broadcast_buffers=False)


def syncing(net, stepping: bool):
    """The context of one batch's forward and backward passes: with DDP, gradients are all-reduced only on the batch
    before an optimiser step (accumulated batches run under ``no_sync``)."""
    from torch.nn.parallel import DistributedDataParallel

    if stepping or not isinstance(net, DistributedDataParallel):
        return contextlib.nullcontext()
    return net.no_sync()
