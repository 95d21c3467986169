"""Training on many processes (DDP or FSDP): N processes take the steps of one process, each on a shard of every batch.

A launcher (``inject``, ``unlearn``, ``attack`` or ``study --num-processes N``, ``torchrun``, ``accelerate launch``; see ``eval.ranks``)
starts N copies of the command. Every copy draws the same seeded epoch of global batches one
process would draw; rank r trains on examples r, r+N, r+2N, ... of each global batch (its shard;
the length buckets make the shards alike). The model is wrapped in torch's
``DistributedDataParallel``, or sharded with FSDP2 (``fsdp``), and either averages the ranks' gradients. So that this average is the
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

Under DDP every rank holds the whole model and its optimiser state, and they stay equal; rank 0
alone writes the epoch checkpoints and the model. Under FSDP (an accelerate config with
``fsdp_version: 2``, or ``--fsdp``; ``fsdp``) each rank trains a copy of the model sharded per
decoder layer, holding 1/N of every weight, gradient and AdamW moment; KL's and NPO's reference
model is sharded the same way. The shards and loss scaling above are unchanged. Each epoch the
weights and moments are gathered whole and rank 0 writes the checkpoint file one process writes
(so a run resumes on any number of processes, sharded or not), and after training the caller's
model holds the trained weights whole on every rank. Gradient accumulation keeps gradients on
each rank until the batch before a step (``syncing``); clipping takes the norm of the whole
gradient (``clip_grad_norm_`` reduces over the DTensor shards). DeepSpeed is refused (``check``):
FSDP is the sharded path. ``check`` also refuses, before any model is loaded, the FSDP options
these commands do not honour (``fsdp.options``).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from dataclasses import dataclass

from entity_unlearn.eval.ranks import Ranks, switched_on

from . import fsdp
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


def wrap(model, ranks: Ranks, device=None):
    """The module the training loop calls: in one process ``model`` itself; under an FSDP config a sharded copy of
    ``model`` on ``device`` (``fsdp``; ``model`` waits in CPU memory until ``unwrap``); else ``model`` in DDP across
    the ranks. DDP starts every rank from rank 0's weights; no buffer changes in training, so none is broadcast again.
    ``device``: where ``model`` trains, when it was already moved to CPU (``reference``)."""
    if ranks.world == 1:
        return model
    device = device or next(model.parameters()).device
    _refuse_deepspeed(os.environ)
    if fsdp.asked():
        return fsdp.sharded(model, device, fsdp.options(lora=any("lora_" in n for n, _ in model.named_parameters())))
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None, broadcast_buffers=False)


def _refuse_deepspeed(env) -> None:
    var = "ACCELERATE_USE_DEEPSPEED"
    if switched_on(var, env):
        raise TrainingError(
            f"accelerate launch asks for DeepSpeed ({var}={env[var]}): inject, unlearn, attack and study train with DDP, or shard with "
            "FSDP2 (an accelerate config with distributed_type: FSDP and fsdp_version: 2); launch with one of those"
        )


FSDP2 = {"ACCELERATE_USE_FSDP": "true", "FSDP_VERSION": "2"}  # what ``--fsdp`` sets: the two variables of an FSDP2 config these commands need


def check(ranks: Ranks, lora: bool = False, env=None) -> None:
    """Refuse, before any model is loaded, a launcher's config (``env``, default this process's environment) these
    commands cannot honour (``fsdp.options``)."""
    env = os.environ if env is None else env
    if ranks.world > 1:
        _refuse_deepspeed(env)
        if fsdp.asked(env):
            fsdp.options(lora, env)


def strategy(ranks: Ranks) -> str | None:
    """How the ranks train, as the records name it: None (one process), ``ddp`` or ``fsdp``."""
    return None if ranks.world == 1 else "fsdp" if fsdp.asked() else "ddp"


def trained(net):
    """The module whose parameters the optimiser steps: the model inside DDP, else ``net`` itself."""
    from torch.nn.parallel import DistributedDataParallel

    return net.module if isinstance(net, DistributedDataParallel) else net


def reference(model, ranks: Ranks, device):
    """A frozen copy of ``model`` in eval mode (the reference of KL and NPO): whole on every rank, or under FSDP
    sharded like the model it is compared with (each rank holds 1/N of it and gathers a layer at a time)."""
    import copy

    if ranks.world > 1 and fsdp.asked():
        return fsdp.frozen(model, device, fsdp.options())
    ref = copy.deepcopy(model).eval()
    for p in ref.parameters():
        p.requires_grad_(False)
    return ref


def unwrap(net, model, device) -> None:
    """After training: under FSDP the trained weights gathered into ``model``, whole on every rank, back on ``device``
    (a collective); otherwise ``model`` already holds them."""
    if fsdp.is_sharded(net):
        fsdp.restore(net, model, device)


def syncing(net, stepping: bool):
    """The context of one batch's forward and backward passes: gradients are all-reduced (DDP) or reduce-scattered
    (FSDP) only on the batch before an optimiser step; accumulated batches keep them on each rank (DDP's ``no_sync``,
    FSDP's ``set_requires_gradient_sync(False)``)."""
    from torch.nn.parallel import DistributedDataParallel

    if fsdp.is_sharded(net):
        net.set_requires_gradient_sync(stepping)
        return contextlib.nullcontext()
    if stepping or not isinstance(net, DistributedDataParallel):
        return contextlib.nullcontext()
    return net.no_sync()
