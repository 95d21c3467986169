"""A small study for the tests (the lab's tiny model size, one epoch of each training, the 4-bit attack), run by
whoever starts this file: one process, or the N processes of a launcher.

    python tests/launched_study.py RELEASE OUT
    python -m torch.distributed.run --standalone --nproc-per-node 2 tests/launched_study.py RELEASE OUT
"""

from __future__ import annotations

import sys

from lab_recipe import SMALL

from entity_unlearn.pipeline.finetune import TrainConfig
from entity_unlearn.pipeline.study import StudyConfig, run_study


def config(release: str, out: str) -> StudyConfig:
    return StudyConfig(
        data=release,
        out=out,
        methods=("ga",),
        coverage_methods=(),
        deep_method=None,
        robustness_methods=("ga",),
        attacks=("quant4",),
        tiny=SMALL,
        inject_train=TrainConfig(epochs=1, batch_size=64),
        unlearn_overrides={"epochs": 1},
        max_new_tokens=2,
        progress=False,
    )


if __name__ == "__main__":
    run_study(config(sys.argv[1], sys.argv[2]))
