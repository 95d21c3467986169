"""An entity-unlearn command stopped, as Ctrl-C would stop it, right after its first epoch checkpoint is written, run
by whoever starts this file: one process, or the N processes of a launcher. It exits 0 when it stopped there.

    python -m torch.distributed.run --standalone --nproc-per-node 2 tests/launched_stopped.py unlearn --model M ... --fsdp
"""

from __future__ import annotations

import sys

from entity_unlearn.cli import main
from entity_unlearn.pipeline.finetune import EpochCheckpoint

original = EpochCheckpoint.save


def stop_after_the_first(self, done, *args):
    original(self, done, *args)
    if done == 1:
        raise KeyboardInterrupt


if __name__ == "__main__":
    EpochCheckpoint.save = stop_after_the_first
    sys.exit(0 if main(sys.argv[1:]) == 130 else 1)
