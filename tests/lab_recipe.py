"""The release and tiny models that the eval, pipeline and attack tests share, built once per run (tests/built_once.py);
the fixtures ``lab_release`` and ``lab_models`` (tests/conftest.py) hand them out.

The release: seed 0, 20 persons, version 1.0.0. The models, each with the tokenizer trained on the release's text
and 18 epochs of plain injection (QA only): ``target`` (everything), ``ref`` (without forget05) and ``ref2``
(without forget05, from other seeds). The golden files (tests/eval/golden/) depend on all of it: after a change
here, regenerate them with ``UPDATE_GOLDEN=1 python -m pytest -p no:randomly tests/eval/test_golden.py``.

18 epochs, not more: the eval tests' tightest thresholds still hold with room (forget d1 prob of ``target`` 0.887
against 0.6, ROUGE-L recall 0.899 against 0.6, forget quality of ``ref2`` 0.967 against 0.5); at 12 epochs ROUGE-L
falls to 0.49. Each epoch costs about 1.1 s per model on this machine, three models per test run.
"""

from __future__ import annotations

from pathlib import Path

from entity_unlearn.pipeline.tiny import TinyConfig

SMALL = TinyConfig(vocab_size=1000, hidden_size=64, intermediate_size=192)
EPOCHS = 18
RELEASE = "entity-unlearn"  # the release's folder name, as `make demo` writes it
FORGET = "forget05"
# name -> (forget set left out, seed of the weights and of the batches)
MODELS = {"target": (None, 0), "ref": (FORGET, 0), "ref2": (FORGET, 1)}


def build_release(folder: Path) -> None:
    """The release, at ``folder/RELEASE``."""
    from entity_unlearn.cli import main

    assert main(["build", "--entities", "20", "--seed", "0", "--version", "1.0.0", "--out", str(folder / RELEASE), "--quiet"]) == 0


def build_model(release: str, name: str, folder: Path) -> None:
    from dataclasses import replace

    from entity_unlearn.pipeline.finetune import TrainConfig
    from entity_unlearn.pipeline.inject import inject_tiny, release_texts
    from entity_unlearn.pipeline.tiny import train_tokenizer

    exclude, seed = MODELS[name]
    tok = train_tokenizer(release_texts(release))
    inject_tiny(release, folder, exclude=exclude, tokenizer=tok, tiny=replace(SMALL, seed=seed), train=TrainConfig(epochs=EPOCHS, seed=seed))
