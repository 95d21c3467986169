"""Robustness attacks on an unlearned model (``entity-unlearn attack``): one small class per attack, its recipe
as dataclass fields, in a registry like the unlearning methods.

| kind            | what the attacker does                                                              | source |
|-----------------|--------------------------------------------------------------------------------------|--------|
| relearn         | fine-tunes briefly on the forget QA (answer-only loss, chat format)                 | OpenUnlearning (arXiv 2506.12618) |
| relearn_known   | fine-tunes on the QA of ``coverage``% of each forget entity's facts; scored on the rest | Deeb & Roger (arXiv 2410.08827) |
| retain_finetune | fine-tunes on retain QA only (as many pairs as the forget set has)                  | benign fine-tuning (Lynch et al. 2024) |
| quant8 / quant4 | LLM.int8 / NF4 weights (``quant``)                                                   | Zhang et al., ICLR 2025 (arXiv 2410.16454) |
| in_context      | asks after ``shots`` other QA turns about the same entity                            | in-context relearning |
| prefill         | starts the assistant's turn with "Sure, here is the answer: " and the like          | prefilling attacks (Andriushchenko et al. 2024) |

Relearning reuses the training loop of ``inject`` (seeded, resumable from epoch checkpoints) and is applied
to the reference model too: a model that never saw the entities also learns relearned facts. Under a launcher
(``attack`` or ``study --num-processes N``, torchrun, accelerate launch) relearning trains on every process, each
on its share of every batch as ``inject`` does (``processes``; with ``--fsdp`` or an FSDP2 config, sharded as
``inject --fsdp`` shards); a quantised model is made by process 0 alone.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import ClassVar

from entity_unlearn.errors import EntityUnlearnError


class AttackError(EntityUnlearnError, ValueError):
    """Bad attack name or input; the message names the option."""


@dataclass(frozen=True)
class Attack:
    name: ClassVar[str] = ""
    changes_weights: ClassVar[bool] = False
    trains: ClassVar[bool] = False  # ``make`` trains: every process of many takes part in it

    def prompt(self):
        """The prompt-side attack for the evaluator (``eval.prompt_attacks``), or None."""
        return None

    def keep(self, data: str, forget: str) -> Callable[[dict], bool] | None:
        """Which forget rows the attack is scored on (None: all)."""
        return None

    def make(self, source: str, data: str, forget: str, out: Path, options: dict, ranks=None) -> dict:
        """Write the attacked model of ``source`` to ``out``; returns what ``attack.json`` records beyond the recipe.
        ``ranks`` (``eval.ranks.Ranks``): this process's place among many, for an attack that ``trains``."""
        raise NotImplementedError


# OpenUnlearning's relearning recipe: 1 epoch, lr 2e-5, batch 4 x 4 accumulation, loss on the answer only,
# chat format (their finetune config, as in arXiv 2506.12618 §4). The tiny model trained from scratch at
# lr 3e-3 moves nowhere at 2e-5. TINY_RELEARN is measured (bench/relearn_known.py, a 20-person
# release of seed 1): relearning 50% of a GA- or NPO+GD-unlearned entity's facts lifts the held-out facts' probability
# above the equally relearned reference only after about 10 epochs (1 epoch: 0.010 vs the reference's 0.040;
# 3: 0.033 vs 0.041; 10: 0.071 vs 0.036).
TINY_RELEARN = {"lr": 1e-3, "batch_size": 4, "grad_accum": 1, "epochs": 10}


@dataclass(frozen=True)
class Relearn(Attack):
    epochs: int = 1
    lr: float = 2e-5
    batch_size: int = 4
    grad_accum: int = 4
    seed: int = 0
    name: ClassVar[str] = "relearn"
    changes_weights: ClassVar[bool] = True
    trains: ClassVar[bool] = True

    def pairs(self, data: str, forget: str) -> list[tuple[str, str]]:
        from .unlearn import unlearning_data

        return unlearning_data(data, forget)[0]

    def make(self, source, data, forget, out, options, ranks=None):
        from entity_unlearn.eval.model import CausalLM
        from entity_unlearn.eval.ranks import Ranks

        from .finetune import EpochCheckpoint, TrainConfig, finetune, training_precision
        from .processes import check, strategy
        from .tiny import save
        from .unlearn import _is_tiny

        explicit = set(options.get("explicit", ()))  # recipe fields the user set: the tiny preset never overrides them
        recipe = replace(self, **{k: v for k, v in TINY_RELEARN.items() if k not in explicit}) if _is_tiny(source) else self
        pairs = self.pairs(data, forget)
        ranks = ranks or Ranks()
        check(ranks)  # a launcher's config these commands cannot honour, before the model is loaded
        device = ranks.device(options.get("device"))
        lm = CausalLM(source, device, "float32", options.get("allow_pickle", False), options.get("trust_remote_code", False))
        amp = training_precision(lm.device, options.get("dtype"))
        train = TrainConfig(epochs=recipe.epochs, lr=recipe.lr, batch_size=recipe.batch_size, grad_accum=recipe.grad_accum, seed=recipe.seed)
        run = {"attack": self.name, "recipe": asdict(recipe), "source": lm.fingerprint(), "pairs": pairs, "autocast": amp}
        ckpt = EpochCheckpoint(out if options.get("checkpoint", True) else None, run)
        progress = options.get("progress", False)
        history = finetune(lm.model, lm.tokenizer, pairs, train, progress=progress, amp=amp, checkpoint=ckpt, ranks=ranks).by_epoch
        if not ranks.main:  # every rank holds the same model: rank 0 saves it
            return {}
        if amp is not None:
            lm.model.to(getattr(__import__("torch"), amp))
        save(lm.model, lm.tokenizer, out)
        ckpt.finish()
        return {
            "recipe_used": asdict(recipe),
            "preset": "tiny" if recipe is not self else "literature",
            "pairs": len(pairs),
            "processes": ranks.world,
            "sharding": strategy(ranks),
            "loss_by_epoch": history,
        }


@dataclass(frozen=True)
class RelearnKnown(Relearn):
    coverage: int = 50  # relearn the QA of this share of each forget entity's facts (a coverage set of the release)
    name: ClassVar[str] = "relearn_known"

    def pairs(self, data, forget):
        from .unlearn import unlearning_data

        return unlearning_data(data, forget, self.coverage)[0]

    def relearned_facts(self, data: str, forget: str) -> set[str]:
        from entity_unlearn.eval.data import open_release

        return {f for r in open_release(data).load(f"{forget}_cov{self.coverage:02d}") for f in r["fact_ids"]}

    def keep(self, data, forget):
        facts = self.relearned_facts(data, forget)
        return lambda row: not facts.intersection(row.get("fact_ids") or ())


@dataclass(frozen=True)
class RetainFinetune(Relearn):
    name: ClassVar[str] = "retain_finetune"

    def pairs(self, data, forget):
        from .unlearn import unlearning_data

        forget_pairs, retain, _ = unlearning_data(data, forget)
        return random.Random(f"{self.seed}/retain_finetune").sample(retain, min(len(forget_pairs), len(retain)))


@dataclass(frozen=True)
class Quantise(Attack):
    backend: str = "auto"  # auto: bitsandbytes on CUDA when installed, else the exact simulation; simulate; bnb
    mode: ClassVar[str] = "nf4"
    changes_weights: ClassVar[bool] = True

    def make(self, source, data, forget, out, options, ranks=None):
        import torch

        from entity_unlearn.eval.model import CausalLM

        from . import quant
        from .tiny import save

        lm = CausalLM(source, "cpu", "float32", options.get("allow_pickle", False), options.get("trust_remote_code", False))
        backend = self.backend
        if backend == "auto":
            backend = "bnb" if torch.cuda.is_available() and _has_bitsandbytes() else "simulate"
        if backend == "bnb":
            if not torch.cuda.is_available() or not _has_bitsandbytes():
                raise AttackError(f"--kind {self.name} with backend bnb: needs a CUDA device and pip install 'entity-unlearn[quant]'")
            model = quant.bnb_dequantised(source, self.mode)
        elif backend == "simulate":
            model = quant.quantise_model_(lm.model, self.mode)
        else:
            raise AttackError(f"quantisation backend {backend!r}: choose auto, simulate or bnb")
        save(model, lm.tokenizer, out)
        return {"backend": backend, "mode": self.mode, "quantised_layers": len(quant.quantisable(model))}


@dataclass(frozen=True)
class Quant8(Quantise):
    name: ClassVar[str] = "quant8"
    mode: ClassVar[str] = "int8"


@dataclass(frozen=True)
class Quant4(Quantise):
    name: ClassVar[str] = "quant4"
    mode: ClassVar[str] = "nf4"


@dataclass(frozen=True)
class InContextAttack(Attack):
    shots: int = 5  # k in {1, 3, 5} in the issue; the strongest by default
    seed: int = 0
    name: ClassVar[str] = "in_context"

    def prompt(self):
        from entity_unlearn.eval.prompt_attacks import InContext

        return InContext(self.shots, self.seed)


@dataclass(frozen=True)
class PrefillAttack(Attack):
    seed: int = 0
    name: ClassVar[str] = "prefill"

    def prompt(self):
        from entity_unlearn.eval.prompt_attacks import Prefill

        return Prefill(self.seed)


ATTACKS: dict[str, type[Attack]] = {}
for _cls in (Relearn, RelearnKnown, RetainFinetune, Quant8, Quant4, InContextAttack, PrefillAttack):
    if _cls.name in ATTACKS:
        raise ValueError(f"attack {_cls.name!r} registered twice")
    ATTACKS[_cls.name] = _cls


def get_attack(name: str, **overrides) -> Attack:
    if name not in ATTACKS:
        close = difflib.get_close_matches(name, list(ATTACKS), n=1)
        raise AttackError(
            f"--kind {name}: not an attack" + (f"; did you mean {close[0]!r}?" if close else "") + f" Attacks: {', '.join(ATTACKS)}, all"
        )
    cls = ATTACKS[name]
    fields = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in overrides.items() if k in fields and v is not None})


def parse_kinds(text: str) -> tuple[str, ...]:
    """``all`` or a comma-separated list of attack names (checked)."""
    kinds = tuple(ATTACKS) if text.strip() == "all" else tuple(k.strip() for k in text.split(",") if k.strip())
    for k in kinds:
        get_attack(k)
    return kinds


def _has_bitsandbytes() -> bool:
    import importlib.util

    return importlib.util.find_spec("bitsandbytes") is not None


def attacked_model(attack: Attack, source: str, data: str, forget: str, out: Path, options: dict) -> Path:
    """Write ``attack`` applied to the model at ``source`` into ``out`` with ``attack.json``; a finished one is kept.
    On many processes every one returns ``out`` once the model is on disk: an attack that ``trains`` runs on all of
    them, another one on process 0 alone, and process 0 writes it."""
    from entity_unlearn.eval.ranks import ranks_from_env

    out = Path(out)
    record_path = out / "attack.json"
    if record_path.is_file():
        return out
    ranks = ranks_from_env()
    start = time.perf_counter()
    if attack.trains or ranks.main:
        extra = attack.make(source, data, forget, out, options, ranks)
    if ranks.main:
        record = {"attack": attack.name, "recipe": asdict(attack), "source": source, "data": data, "forget": forget, **extra}
        record["seconds"] = round(time.perf_counter() - start, 1)
        tmp = record_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(record, indent=1, sort_keys=True), encoding="utf-8")
        tmp.replace(record_path)
    ranks.barrier()
    return out
