"""Many processes, one result: which share of the planned work this process does, and meeting the others.

A launcher (``accelerate launch``, ``torchrun``, or ``eval --num-processes N``, which runs
``torch.distributed.run``) starts N copies of the command and sets ``WORLD_SIZE``,
``RANK`` and ``LOCAL_RANK``. Every copy plans the same requests and cuts them into
the same chunks; chunk i is computed by rank i mod N, each chunk exactly as one
process would compute it (same batches, same padding), so the numbers, and the
results file that rank 0 writes from everyone's answers, equal a one-process run's.
Ranks meet through ``torch.distributed`` (gloo on CPU, NCCL on CUDA).
"""

from __future__ import annotations

import atexit
import os
from dataclasses import dataclass

TRUE = ("1", "true", "yes")  # what a launcher's switch variables (``ACCELERATE_USE_FSDP=true``, ...) say when on


def switched_on(var: str, env=None) -> bool:
    """Whether the launcher's switch ``var`` is on in ``env`` (default: this process's environment): one of ``TRUE``,
    in any case; unset or anything else is off. Read here for eval (``model.check_whole_model_loading``) and for the
    training processes alike (``entity_unlearn.pipeline.fsdp``, ``processes``)."""
    return (os.environ if env is None else env).get(var, "").lower() in TRUE


@dataclass(frozen=True)
class Ranks:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    def mine(self, chunk: int) -> bool:
        """Whether chunk number ``chunk`` of a pass is this process's to compute."""
        return chunk % self.world == self.rank

    def barrier(self) -> None:
        if self.world > 1:
            import torch.distributed as dist

            dist.barrier()

    def gather(self, value) -> list:
        """``value`` of every rank, in rank order (every rank gets the list)."""
        if self.world == 1:
            return [value]
        import torch.distributed as dist

        out = [None] * self.world
        dist.all_gather_object(out, value)
        return out

    def broadcast(self, value):
        """Rank 0's ``value``, on every rank (the others may pass None)."""
        if self.world == 1:
            return value
        import torch.distributed as dist

        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def total(self, value: float) -> float:
        """The sum of ``value`` over every rank (every rank gets it)."""
        if self.world == 1:
            return value
        import torch
        import torch.distributed as dist

        t = torch.tensor([value], dtype=torch.float64, device="cuda" if dist.get_backend() == "nccl" else "cpu")  # NCCL reduces GPU tensors only
        dist.all_reduce(t)
        return t.item()

    def device(self, asked: str | None) -> str | None:
        """The device this rank uses: the one asked for, else its own GPU when there are GPUs."""
        if asked is not None or self.world == 1:
            return asked
        import torch

        return f"cuda:{self.local_rank}" if torch.cuda.is_available() else "cpu"


def _leave_group() -> None:
    """The process group destroyed at exit while the interpreter is whole. Left to Python's teardown, a process
    sometimes aborted after its work was done ("terminate called without an active exception", exit -6: seen with
    two FSDP processes stopped by Ctrl-C, on a loaded machine), and its launcher then failed the run."""
    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()


def ranks_from_env() -> Ranks:
    """This process's place among those a launcher started (one process, rank 0, when none did)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Ranks()
    import torch
    import torch.distributed as dist

    if not dist.is_initialized():
        if torch.cuda.is_available():
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
        atexit.register(_leave_group)
    return Ranks(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))
