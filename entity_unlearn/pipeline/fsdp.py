"""Sharded training (FSDP2): the options an accelerate config asks for, the sharded copy that trains, and its state whole.

``accelerate launch --config_file CONFIG`` with ``distributed_type: FSDP`` sets ``ACCELERATE_USE_FSDP=true`` and the
config's ``fsdp_*`` entries as ``FSDP_*`` variables in every process (``--fsdp`` of inject, unlearn, attack and study sets the first two itself).
``options`` reads them, and refuses, in one message naming the entry and what to write instead, those these
commands do not honour: FSDP1 (``fsdp_version: 1``, accelerate's default), CPU offload, activation checkpointing,
a wrap policy other than per transformer layer, sharded state dicts, and ``fsdp_cpu_ram_efficient_loading: true``
(accelerate's default: transformers then loads the weights in process 0 alone, and these commands load the model
in every process and shard it themselves).

``sharded`` makes a copy of the model and applies torch's ``fully_shard`` to each transformer layer (the classes
the model names in ``_no_split_modules``, or ``fsdp_transformer_layer_cls_to_wrap``) and then to the whole copy:
each process keeps 1/N of every weight, and so of its gradient and AdamW moments, gathers a layer's weights for
its forward and backward passes and frees them after (``fsdp_reshard_after_forward: false`` keeps them until the
backward). FSDP2 averages the gradients over the processes as DDP does, so the loss scaling of ``processes``
holds unchanged. The caller's model waits whole in CPU memory while its copy trains and gets the trained weights
back at the end (``restore``): after training it is the plain model one process would have, on its device.
Nothing is broadcast: every process loads the same weights (the same files, or the tiny model from the same seed),
so the shards are those of one model. Between accumulated batches (``--grad-accum``) FSDP2 keeps each process's
gradients whole and reduce-scatters them on the batch before a step.

Weights and optimiser moments of the sharded copy are DTensors. ``full_state`` gathers them (a collective: every
process calls it) into the tensors one process would hold, named and numbered as one process names them, so
an epoch checkpoint written under FSDP is the file one process writes and resumes anywhere; ``place_*`` loads
such tensors back, each process keeping its shard.
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass

from entity_unlearn.eval.ranks import switched_on

from .finetune import TrainingError


@dataclass(frozen=True)
class FsdpOptions:
    """What the launcher's FSDP config asks for that these commands honour."""

    reshard_after_forward: bool = True
    layer_classes: tuple[str, ...] = ()  # empty: the model's own ``_no_split_modules``


def asked(env=None) -> bool:
    """Whether the launcher asks for FSDP (``ACCELERATE_USE_FSDP``) in ``env`` (default: this process's environment)."""
    return switched_on("ACCELERATE_USE_FSDP", env)


def options(lora: bool = False, env=None) -> FsdpOptions:
    """The FSDP options of the launcher's environment ``env`` (default: this process's); one clear error for an
    option these commands do not honour."""
    env = os.environ if env is None else env

    def _refuse(var: str, entry: str, why: str, value: str | None = None) -> TrainingError:
        return TrainingError(f"FSDP: {var}={value or env[var]} (the accelerate config's {entry}): {why}")

    version = env.get("FSDP_VERSION", "1")  # accelerate writes 1 when the config names no version
    if version != "2":
        why = "training here shards with FSDP2 (torch's fully_shard); write fsdp_version: 2 in the config"
        raise _refuse("FSDP_VERSION", "fsdp_version", why, version)
    if switched_on("FSDP_CPU_RAM_EFFICIENT_LOADING", env):
        raise _refuse(
            "FSDP_CPU_RAM_EFFICIENT_LOADING",
            "fsdp_cpu_ram_efficient_loading",
            "every process loads the whole model and shards it itself; write fsdp_cpu_ram_efficient_loading: false",
        )
    for var, entry in (("FSDP_OFFLOAD_PARAMS", "fsdp_offload_params"), ("FSDP_ACTIVATION_CHECKPOINTING", "fsdp_activation_checkpointing")):
        if switched_on(var, env):
            raise _refuse(var, entry, f"not supported by the training here; write {entry}: false")
    policy = env.get("FSDP_AUTO_WRAP_POLICY", "TRANSFORMER_BASED_WRAP")
    if policy != "TRANSFORMER_BASED_WRAP":
        raise _refuse("FSDP_AUTO_WRAP_POLICY", "fsdp_auto_wrap_policy", "each transformer layer is sharded on its own; write TRANSFORMER_BASED_WRAP")
    state = env.get("FSDP_STATE_DICT_TYPE", "FULL_STATE_DICT")
    if state != "FULL_STATE_DICT":
        raise _refuse(
            "FSDP_STATE_DICT_TYPE",
            "fsdp_state_dict_type",
            "the epoch checkpoints and the model are written whole by process 0; write FULL_STATE_DICT",
        )
    reshard = env.get("FSDP_RESHARD_AFTER_FORWARD", "true").lower()
    if reshard not in ("true", "false"):
        raise _refuse("FSDP_RESHARD_AFTER_FORWARD", "fsdp_reshard_after_forward", "FSDP2 takes true or false")
    if lora:
        raise TrainingError(
            "--lora-rank with FSDP: LoRA adapters are trained with DDP (their optimiser state is small); "
            "launch without the FSDP config, or train every weight under FSDP"
        )
    layers = tuple(c.strip() for c in env.get("FSDP_TRANSFORMER_CLS_TO_WRAP", "").split(",") if c.strip())
    return FsdpOptions(reshard_after_forward=reshard == "true", layer_classes=layers)


def _shard(model, device, opts: FsdpOptions):
    """``model`` with each transformer layer and then the whole sharded over the processes (in place)."""
    import torch.distributed as dist
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    mesh = init_device_mesh(device.type, (dist.get_world_size(),))
    names = set(opts.layer_classes or getattr(model, "_no_split_modules", None) or ())
    layers = [m for m in model.modules() if type(m).__name__ in names]
    if opts.layer_classes and not layers:
        raise TrainingError(
            f"FSDP: FSDP_TRANSFORMER_CLS_TO_WRAP={','.join(opts.layer_classes)} (fsdp_transformer_layer_cls_to_wrap): "
            f"no module of {type(model).__name__} is of that class; name its decoder layer class"
        )
    for layer in layers:
        fully_shard(layer, mesh=mesh, reshard_after_forward=opts.reshard_after_forward)
    return fully_shard(model, mesh=mesh, reshard_after_forward=opts.reshard_after_forward), len(layers)


def sharded(model, device, opts: FsdpOptions):
    """A sharded copy of ``model`` on ``device``; ``model`` itself moves to CPU memory and waits there (``restore``).
    Process 0 says how many weights it holds."""
    import torch.distributed as dist

    net, layers = _shard(copy.deepcopy(model.to("cpu")), device, opts)
    if dist.get_rank() == 0:
        held, total = sum(p.to_local().numel() for p in net.parameters()), sum(p.numel() for p in net.parameters())
        print(
            f"FSDP2: {layers} layers and the whole model sharded over {dist.get_world_size()} processes; process 0 holds {held:,} of {total:,} weights",
            flush=True,
        )
    return net


def frozen(model, device, opts: FsdpOptions):
    """A sharded copy of ``model``, frozen, in eval mode (a reference model): 1/N of its weights on each process."""
    twin = copy.deepcopy(model.to("cpu"))  # copied in CPU memory: the device never holds two whole models
    for p in twin.parameters():
        p.requires_grad_(False)
    return _shard(twin, device, opts)[0].eval()


def is_sharded(module) -> bool:
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):  # one process: nothing is sharded, nothing more to import
        return False
    from torch.distributed.fsdp import FSDPModule

    return isinstance(module, FSDPModule)


def full_state(module, main: bool) -> dict:
    """Every trained weight of ``module`` whole, on CPU, by its one-process name; a collective, the dict is filled on
    process ``main`` only (each weight is gathered alone, so a process holds at most one whole weight at a time)."""
    out = {}
    for name, p in module.named_parameters():
        if p.requires_grad:
            t = p.full_tensor().detach()
            if main:
                out[name] = t.cpu()
    return out


def full_optimizer_state(opt, main: bool) -> dict:
    """``opt.state_dict()`` with every DTensor gathered whole on CPU (a collective; filled on process ``main`` only)."""
    from torch.distributed.tensor import DTensor

    sd = opt.state_dict()
    state = {}
    for i in sorted(sd["state"]):
        entry = {}
        for k in sorted(sd["state"][i]):
            v = sd["state"][i][k]
            entry[k] = v.full_tensor().cpu() if isinstance(v, DTensor) else v
        state[i] = entry
    return {"state": state, "param_groups": sd["param_groups"]} if main else {}


def _like(param, tensor):
    """``tensor`` (whole, as one process holds it) laid out as the DTensor ``param``: this process keeps its shard."""
    from torch.distributed.tensor import distribute_tensor

    return distribute_tensor(tensor.to(param.device, param.dtype), param.device_mesh, param.placements)


def place_state(module, tensors: dict) -> None:
    """Load whole weights, named as one process names them, into the sharded ``module``."""
    import torch

    params = dict(module.named_parameters())
    with torch.no_grad():
        for name, t in tensors.items():
            params[name].copy_(_like(params[name], t))


def place_optimizer_state(opt, state: dict) -> dict:
    """``state`` (an optimiser state dict of whole tensors) with each moment shaped like its parameter laid out as that
    DTensor parameter, for ``opt.load_state_dict``."""
    from torch.distributed.tensor import DTensor

    params = [p for g in opt.param_groups for p in g["params"]]
    out = {}
    for i, entry in state["state"].items():
        p = params[int(i)]
        out[i] = {
            k: _like(p, v) if isinstance(p, DTensor) and hasattr(v, "shape") and tuple(v.shape) == tuple(p.shape) else v for k, v in entry.items()
        }
    return {"state": out, "param_groups": state["param_groups"]}


def restore(net, model, device) -> None:
    """The trained weights of the sharded copy ``net`` into ``model`` (whole, on every process), and ``model`` back on
    ``device``. A collective: each weight is gathered alone."""
    import torch

    params = dict(model.named_parameters())
    with torch.no_grad():
        for name, p in net.named_parameters():
            params[name].copy_(p.full_tensor())
    model.to(device)
