"""Training shows one bar of steps with the loss (fine-tuning and unlearning), not one tick per epoch."""

from __future__ import annotations

import re

from entity_unlearn.eval import CausalLM
from entity_unlearn.pipeline.finetune import TrainConfig, finetune, length_batches
from entity_unlearn.pipeline.unlearn import UnlearnConfig, get_method, unlearn

PAIRS = [(f"What is the code of item {i}?", f"The code of item {i} is {i * 7}.") for i in range(10)]


def last_bar(err: str, desc: str) -> str:
    return [part for part in re.split(r"[\r\n]", err) if part.startswith(desc)][-1]


def test_fine_tuning_shows_steps_and_the_loss(tiny_model, capsys):
    import torch

    lm = CausalLM(str(tiny_model), "cpu")
    finetune(lm.model, lm.tokenizer, PAIRS, TrainConfig(epochs=2, batch_size=4, lr=1e-3), progress=True)
    bar = last_bar(capsys.readouterr().err, "fine-tuning")
    steps = 2 * len(length_batches([1] * len(PAIRS), 4, torch.Generator().manual_seed(0)))
    assert f"{steps}/{steps}" in bar and "step" in bar and re.search(r"epoch=2/2, loss=\d+\.\d{3}", bar), bar


def test_unlearning_shows_steps_and_the_loss(tiny_model, capsys):
    lm = CausalLM(str(tiny_model), "cpu")
    unlearn(lm.model, lm.tokenizer, PAIRS[:6], PAIRS[6:], get_method("ga"), UnlearnConfig(epochs=3, batch_size=4, lr=1e-4), progress=True)
    bar = last_bar(capsys.readouterr().err, "unlearning (ga)")
    assert "6/6" in bar and re.search(r"epoch=3/3, loss=-?\d+\.\d{3}", bar), bar
