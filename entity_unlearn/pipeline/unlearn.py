"""The unlearning baselines: one small class per method, each overriding one loss hook.

All methods fine-tune the model on batches of forget QA (and, where the method
uses one, retain QA), formatted exactly as the evaluator scores them. ``lp``
below is the summed log-probability of an answer's tokens given its question.

| method   | loss                                                                                  | source |
|----------|---------------------------------------------------------------------------------------|--------|
| ga       | -NLL(forget)                                                                          | gradient ascent (TOFU) |
| gd       | -NLL(forget) + w * NLL(retain)                                                        | gradient difference (TOFU) |
| kl       | -NLL(forget) + w * KL(p_ref || p) on retain tokens                                    | KL minimisation (TOFU) |
| idk_po   | NLL(forget question -> refusal) + w * NLL(retain)                                     | preference optimisation towards refusals (TOFU's PO) |
| npo      | (2/β) * softplus(β (lp(a) - lp_ref(a)))                                               | NPO (Zhang et al. 2024) |
| npo_gd   | npo + w * NLL(retain)                                                                 | NPO with a retain term |

``p_ref`` / ``lp_ref`` come from a frozen copy of the model as it was before unlearning. Means are over a
batch's answer tokens (NLL, KL) or sequences (NPO); a hook multiplies each by its ``Batch``'s share, so
that on many processes the ranks' losses add up to the one-process loss (``processes``).
idk_po is TOFU's form (learn the refusal), not DPO against the true answer: with summed
log-probabilities the DPO margin is won by raising the refusal alone, and on the tiny model
the true answer's probability then barely moves (0.98 -> 0.96 in our test).
"""

from __future__ import annotations

import difflib
import json
import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from tqdm.auto import tqdm

from entity_unlearn.errors import EntityUnlearnError
from entity_unlearn.eval.ranks import Ranks, ranks_from_env

from .finetune import IGNORE, EpochCheckpoint, Losses, accumulated, autocast, collate, encode_pairs, training_precision, with_lora


class UnlearnError(EntityUnlearnError, ValueError):
    """Bad method name, missing forget set or similar; the message names the option."""


@dataclass(frozen=True)
class UnlearnConfig:
    """Hyperparameters. Defaults are the literature's for 7B models (TOFU: lr 1e-5, 5 epochs,
    batch 32; NPO: β = 0.1); ``TINY_PRESET`` overrides lr and epochs for the embedded tiny model."""

    epochs: int = 5
    lr: float = 1e-5
    batch_size: int = 32
    grad_accum: int = 1
    retain_weight: float = 1.0
    beta: float = 0.1
    max_grad_norm: float = 1.0
    seed: int = 0
    lora_rank: int = 0  # > 0: train LoRA adapters of this rank on the attention projections, saved merged


TINY_PRESET = {"lr": 3e-4, "epochs": 5, "batch_size": 16}  # sized on the default release: see README, "Reference pipeline"


def sequence_logp(model, ids, mask, labels):
    """Summed log-probability of the labelled tokens of each sequence, and the token log-probs."""
    import torch

    logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1].float()
    target = labels[:, 1:]
    logprobs = torch.log_softmax(logits, -1)
    keep = target != IGNORE
    picked = logprobs.gather(-1, target.clamp_min(0).unsqueeze(-1)).squeeze(-1) * keep
    return picked.sum(-1), logprobs, keep


class Batch(tuple):
    """(input ids, attention mask, labels) of this process's shard of a global batch, with the shard's share of the
    global batch's answer tokens (``tokens``) and sequences (``rows``). A loss's mean over a batch is the shard's
    mean times its share, so that the ranks' losses add up to the global batch's (``processes``); in one process
    both shares are 1."""

    tokens: float
    rows: float

    def __new__(cls, tensors, tokens: float = 1.0, rows: float = 1.0):
        batch = super().__new__(cls, tensors)
        batch.tokens, batch.rows = tokens, rows
        return batch


def nll(model, batch: Batch):
    """Mean token negative log-likelihood of the answers (the usual LM loss)."""
    total, _, keep = sequence_logp(model, *batch)
    return -total.sum() / keep.sum() * batch.tokens


class Method:
    name = ""
    uses_retain = False
    uses_reference = False
    uses_refusals = False

    def loss(self, model, ref, forget, retain, refusal, cfg: UnlearnConfig):
        raise NotImplementedError


class GradientAscent(Method):
    name = "ga"

    def loss(self, model, ref, forget, retain, refusal, cfg):
        return -nll(model, forget)


class GradientDifference(Method):
    name, uses_retain = "gd", True

    def loss(self, model, ref, forget, retain, refusal, cfg):
        return -nll(model, forget) + cfg.retain_weight * nll(model, retain)


class KLMinimisation(Method):
    name, uses_retain, uses_reference = "kl", True, True

    def loss(self, model, ref, forget, retain, refusal, cfg):
        import torch

        _, logp, keep = sequence_logp(model, *retain)
        with torch.no_grad():
            _, ref_logp, _ = sequence_logp(ref, *retain)
        kl = (ref_logp.exp() * (ref_logp - logp)).sum(-1)
        return -nll(model, forget) + cfg.retain_weight * (kl * keep).sum() / keep.sum() * retain.tokens


class IdkPreference(Method):
    """TOFU's preference optimisation: learn a refusal as the answer to each forget question, keep the retain answers."""

    name, uses_retain, uses_refusals = "idk_po", True, True

    def loss(self, model, ref, forget, retain, refusal, cfg):
        return nll(model, refusal) + cfg.retain_weight * nll(model, retain)


class NPO(Method):
    name, uses_reference = "npo", True

    def loss(self, model, ref, forget, retain, refusal, cfg):
        import torch
        import torch.nn.functional as F

        lp, _, _ = sequence_logp(model, *forget)
        with torch.no_grad():
            ref_lp, _, _ = sequence_logp(ref, *forget)
        return (2 / cfg.beta) * F.softplus(cfg.beta * (lp - ref_lp)).mean() * forget.rows


class NPOWithRetain(NPO):
    name, uses_retain = "npo_gd", True

    def loss(self, model, ref, forget, retain, refusal, cfg):
        return super().loss(model, ref, forget, retain, refusal, cfg) + cfg.retain_weight * nll(model, retain)


METHODS: dict[str, type[Method]] = {}
for _cls in (GradientAscent, GradientDifference, KLMinimisation, IdkPreference, NPO, NPOWithRetain):
    if _cls.name in METHODS:
        raise ValueError(f"unlearning method {_cls.name!r} registered twice")
    METHODS[_cls.name] = _cls


def get_method(name: str) -> Method:
    if name not in METHODS:
        close = difflib.get_close_matches(name, list(METHODS), n=1)
        raise UnlearnError(f"--method {name}: not a method" + (f"; did you mean {close[0]!r}?" if close else "") + f" Methods: {', '.join(METHODS)}")
    return METHODS[name]()


def refusals(questions: Sequence[str], seed: int) -> list[str]:
    """A refusal answer per question, phrasings from ``prompts/unlearn/refusals.j2`` chosen by the seed."""
    from entity_unlearn.builders.world.templates import builtin_templates

    t = builtin_templates()
    blocks = t.variants("unlearn/refusals.j2", "refusal")
    rng = random.Random(f"{seed}/refusals")
    return [t.render("unlearn/refusals.j2", rng.choice(blocks)) for _ in questions]


def unlearn(
    model,
    tokenizer,
    forget_pairs: Sequence[tuple[str, str]],
    retain_pairs: Sequence[tuple[str, str]],
    method: Method,
    cfg: UnlearnConfig,
    progress: bool = False,
    amp: str | None = None,
    checkpoint: EpochCheckpoint | None = None,
    ranks: Ranks | None = None,
) -> Losses:
    """Run ``method`` in place on ``model``; returns the losses of each step and epoch. ``amp``: autocast dtype of the
    forward passes; ``checkpoint``: where to keep the state after each epoch (``finetune.EpochCheckpoint``);
    ``ranks``: this process's place among many, each training on its shard of every batch (``processes``)."""
    import torch

    from entity_unlearn.eval.formatting import Formatter

    from .processes import check, reference, shard, syncing, trained, unwrap, wrap

    ranks = ranks or Ranks()
    check(ranks, lora=cfg.lora_rank > 0)
    if not forget_pairs:
        raise UnlearnError("the forget set is empty: nothing to unlearn")
    if method.uses_retain and not retain_pairs:
        raise UnlearnError(f"method {method.name!r} needs retain data and the retain set is empty")
    torch.manual_seed(cfg.seed)
    fmt = Formatter(tokenizer)
    forget = encode_pairs(fmt, forget_pairs)
    idk = (
        encode_pairs(fmt, list(zip([q for q, _ in forget_pairs], refusals([q for q, _ in forget_pairs], cfg.seed)))) if method.uses_refusals else None
    )
    retain = encode_pairs(fmt, retain_pairs) if method.uses_retain else []
    device = next(model.parameters()).device
    ref = reference(model, ranks, device) if method.uses_reference else None
    # LoRA: peft puts adapter layers into ``model`` itself and freezes its other weights, so the loop below
    # trains the adapters; merging folds them back into ``model``'s own weights. The reference stays plain.
    lora = with_lora(model, cfg.lora_rank) if cfg.lora_rank else None
    pad = tokenizer.pad_token_id
    gen = torch.Generator().manual_seed(cfg.seed)
    net = wrap(model, ranks, device)
    module = trained(net)  # ``model``, or under FSDP its sharded copy
    opt = torch.optim.AdamW([p for p in module.parameters() if p.requires_grad], lr=cfg.lr)
    retain_order = torch.randperm(max(1, len(retain)), generator=gen).tolist()
    checkpoint = checkpoint or EpochCheckpoint(None, None)
    done, step, log = checkpoint.resume(module, opt, gen)  # after the reference copy: that is the starting model
    net.train()

    def batch_of(examples, indices) -> Batch:
        part = shard(indices, examples, ranks)
        return Batch(tuple(t.to(device) for t in collate([examples[i] for i in part.indices], pad)), part.tokens, part.rows)

    per_epoch = -(-len(forget) // cfg.batch_size)
    bar = tqdm(
        total=cfg.epochs * per_epoch,
        initial=done * per_epoch,
        desc=f"unlearning ({method.name})",
        unit="step",
        disable=not progress or not ranks.main,
    )
    for epoch in range(done, cfg.epochs):
        order = torch.randperm(len(forget), generator=gen).tolist()
        losses = []
        starts = range(0, len(order), cfg.batch_size)
        for k, start in enumerate(starts):
            idx = order[start : start + cfg.batch_size]
            f_batch = batch_of(forget, idx)
            i_batch = batch_of(idk, idx) if idk else None
            r_batch = None
            if retain:
                r_idx = [retain_order[(step * cfg.batch_size + k) % len(retain_order)] for k in range(len(idx))]
                r_batch = batch_of(retain, r_idx)
            stepping = accumulated(k, len(starts), cfg.grad_accum)
            with syncing(net, stepping):
                with autocast(device, amp):
                    loss = method.loss(net, ref, f_batch, r_batch, i_batch, cfg) / cfg.grad_accum
                (loss * ranks.world).backward()  # DDP and FSDP average over ranks; the sum is the global batch's gradient
            step += 1
            if stepping:
                torch.nn.utils.clip_grad_norm_(module.parameters(), cfg.max_grad_norm)  # under FSDP, the norm of the gathered gradient
                opt.step()
                opt.zero_grad()
            losses.append(ranks.total(loss.item() * cfg.grad_accum))
            bar.set_postfix(epoch=f"{epoch + 1}/{cfg.epochs}", loss=f"{sum(losses) / len(losses):.3f}", refresh=False)
            bar.update()
        log = Losses(log.by_epoch + [sum(losses) / len(losses)], log.by_step + losses)
        checkpoint.save(epoch + 1, step, log, module, opt, gen, ranks)
        ranks.barrier()  # no rank goes on before the epoch's checkpoint is on disk
    bar.close()
    unwrap(net, model, device)
    model.eval()
    if lora is not None:
        lora.merge_and_unload()
    return log


def unlearning_data(data: str, forget: str, coverage: int | None = None) -> tuple[list[tuple[str, str]], list[tuple[str, str]], dict]:
    """(forget pairs, retain pairs, description) for ``--forget forgetXX [--coverage NN]``.

    The forget pairs are the rows of ``forgetXX`` or, with a coverage below 100, of
    ``forgetXX_covNN`` (QA of NN% of each forget entity's facts); the retain pairs are
    ``retain{100-XX}``. Evaluation always uses the whole forget set.
    """
    from entity_unlearn.eval.data import FORGET, open_release

    release = open_release(data)
    configs = release.manifest.get("configs", {})
    m = FORGET.match(forget)
    if not m or forget not in configs:
        raise UnlearnError(f"--forget {forget}: not a forget set of {data}; choose one of {sorted(c for c in configs if FORGET.match(c))}")
    name = forget
    if coverage is not None and coverage != 100:
        name = f"{forget}_cov{coverage:02d}"
        if name not in configs:
            levels = sorted(int(c.rsplit("_cov", 1)[1]) for c in configs if c.startswith(f"{forget}_cov")) + [100]
            raise UnlearnError(f"--coverage {coverage}: {data} has no {name}; coverage levels of {forget}: {levels}")
    retain_name = f"retain{100 - int(m[1]):02d}"
    if retain_name not in configs:
        raise UnlearnError(f"{data}: no {retain_name} config to go with {forget}; rebuild the release")
    rows = list(release.load(name))
    retain = [(r["question"], r["answer"]) for r in release.load(retain_name)]
    info = {
        "forget": forget,
        "coverage": coverage or 100,
        "config": name,
        "retain_config": retain_name,
        "forget_pairs": len(rows),
        "retain_pairs": len(retain),
        "entities": len({r["entity_id"] for r in rows}),
        "release_version": release.manifest.get("version"),
        "release_manifest_sha256": release.manifest_sha256,
    }
    return [(r["question"], r["answer"]) for r in rows], retain, info


def run_unlearning(
    model: str,
    data: str,
    forget: str,
    method: str,
    out: str | Path,
    coverage: int | None = None,
    overrides: dict | None = None,
    device: str | None = None,
    dtype: str | None = None,
    allow_pickle: bool = False,
    trust_remote_code: bool = False,
    progress: bool = False,
    checkpoint: bool = True,
) -> Path | None:
    """``entity-unlearn unlearn``: load MODEL, unlearn the forget set with METHOD, save to OUT (safetensors) with ``unlearning.json``.
    With ``checkpoint`` the state after each epoch is kept in OUT, and a rerun after an interruption resumes there.
    Started by a launcher as many processes, each trains on a share of every batch (``processes``); rank 0
    saves the model and returns its folder, the other ranks return None."""
    import time

    from entity_unlearn.eval.model import CausalLM

    from .processes import check, strategy
    from .tiny import save

    start = time.perf_counter()
    ranks = ranks_from_env()
    algorithm = get_method(method)
    forget_pairs, retain_pairs, info = unlearning_data(data, forget, coverage)
    check(ranks, lora=bool((overrides or {}).get("lora_rank")))  # before the model is loaded
    lm = CausalLM(model, ranks.device(device), "float32", allow_pickle, trust_remote_code)
    tiny = _is_tiny(model)
    cfg = config_for(tiny, **(overrides or {}))
    amp = training_precision(lm.device, dtype)
    run = {"model": model, "model_fingerprint": lm.fingerprint(), "method": method, "config": asdict(cfg), "autocast": amp, "data_info": info}
    ckpt = EpochCheckpoint(out if checkpoint else None, run)
    losses = unlearn(lm.model, lm.tokenizer, forget_pairs, retain_pairs, algorithm, cfg, progress=progress, amp=amp, checkpoint=ckpt, ranks=ranks)
    if not ranks.main:  # every rank holds the same model: rank 0 saves it
        ranks.barrier()
        return None
    if amp is not None:
        lm.model.to(getattr(__import__("torch"), amp))
    folder = save(lm.model, lm.tokenizer, out)
    save_record(
        folder,
        {
            "model": model,
            "data": data,
            "method": method,
            "config": asdict(cfg),
            "device": lm.device,
            "autocast": amp,
            "preset": "tiny" if tiny else "literature",
            "data_info": info,
            "processes": ranks.world,
            "sharding": strategy(ranks),
            "loss_by_epoch": losses.by_epoch,
            "loss_by_step": losses.by_step,
            "seconds": round(time.perf_counter() - start, 1),
        },
    )
    ckpt.finish()
    ranks.barrier()
    return folder


def _is_tiny(model: str) -> bool:
    """A model ``entity-unlearn inject --base tiny`` made (its injection.json says so), or unlearned from one."""
    folder = Path(model)
    for name, key in (("injection.json", ("config", "base")), ("unlearning.json", ("preset",))):
        path = folder / name
        if path.is_file():
            record = json.loads(path.read_text(encoding="utf-8"))
            value = record.get(key[0], {}).get(key[1]) if len(key) == 2 else record.get(key[0])
            return value == "tiny"
    return False


def config_for(base_is_tiny: bool, **overrides) -> UnlearnConfig:
    """The defaults, the tiny preset when the model is the embedded default, then explicit overrides."""
    cfg = UnlearnConfig()
    if base_is_tiny:
        cfg = replace(cfg, **TINY_PRESET)
    return replace(cfg, **{k: v for k, v in overrides.items() if v is not None})


def save_record(folder: Path, record: dict) -> None:
    (folder / "unlearning.json").write_text(json.dumps(record, indent=1, sort_keys=True, default=lambda o: asdict(o)), encoding="utf-8")
