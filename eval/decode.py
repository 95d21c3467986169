"""Greedy decoding that stops each row as soon as its answer is settled, and stops computing it.

An answer is the greedy continuation cut at the first stop token (end of turn, EOS)
and then at the first newline that follows some text (``answer_text``: leading
whitespace and newlines are stripped first). Both cuts are decided while decoding:

- a stop token ends its row at once;
- a token whose text holds a newline ends its row when the decoded answer so far,
  leading whitespace removed, holds one (only then is the row decoded; the
  newline-bearing token ids are found once per tokenizer, ``newline_ids``).

Rows that have ended leave the batch (their KV-cache rows are dropped) once a quarter of
the batch has ended (``COMPACT``): dropping copies the whole cache, so it is done a few times
per batch, not at every step, and a batch costs about what its longest answer costs, in rows
still running. The tokens of every row are the ones ``model.generate(do_sample=False)`` picks
on the raw logits: the same left-padded prompts, position ids and attention mask, one step at
a time.

Where this transformers offers it (5.x, a model of full-attention layers), each layer's KV
cache is allocated once for the prompt and every new token, each step writes its keys in place,
and attention gets the written prefix: the numbers of a cache grown by concatenation, which copies
itself at every step (as much time as a tiny model's layers took). Only the last position is
projected on the vocabulary (``logits_to_keep``).
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence

_NEWLINES: dict[int, frozenset[int]] = {}
COMPACT = 0.75  # finished rows leave the batch when the running ones are this share of it or fewer


def first_line(text: str) -> str:
    """The answer a generated text stands for: its first line, leading whitespace and newlines stripped."""
    return text.strip().split("\n")[0].strip()


def answer_text(tokenizer, tokens: Sequence[int], cut_at_newline: bool = True) -> str:
    """The answer a generated token sequence (already cut at its stop token) stands for: its first line, or
    without ``cut_at_newline`` (OpenUnlearning's decoding) the whole text, stripped."""
    text = tokenizer.decode(list(tokens), skip_special_tokens=True)
    return first_line(text) if cut_at_newline else text.strip()


def newline_ids(tokenizer) -> frozenset[int]:
    """Ids of the tokens whose decoded text holds a newline (computed once per tokenizer object)."""
    key = id(tokenizer)
    if key not in _NEWLINES:
        texts = tokenizer.batch_decode([[i] for i in range(len(tokenizer))], skip_special_tokens=True)
        _NEWLINES[key] = frozenset(i for i, t in enumerate(texts) if "\n" in t)
    return _NEWLINES[key]


def settled(tokenizer, tokens: Sequence[int]) -> bool:
    """Whether more tokens can no longer change ``answer_text``: the text after leading whitespace holds a newline."""
    return "\n" in tokenizer.decode(list(tokens), skip_special_tokens=True).lstrip()


def greedy_batch(
    model,
    tokenizer,
    prompts: Sequence[Sequence[int]],
    stop_ids: Sequence[int],
    max_new_tokens: int,
    cache_arg: str,
    device,
    counters: dict | None = None,
    cut_at_newline: bool = True,
    preallocate: bool = True,
) -> list[list[int]]:
    """Generated tokens of each prompt (one batch), up to and excluding its stop token. ``counters["decode_rows"]``
    grows by the rows forwarded at each decoding step (what dropping finished rows saves). Without
    ``cut_at_newline`` a row ends at its stop token or ``max_new_tokens`` only. ``preallocate=False``: a cache grown
    by concatenation even where a preallocated one is possible (the path of other transformers versions and models)."""
    import torch

    pad = tokenizer.pad_token_id
    stops, newlines = set(stop_ids), newline_ids(tokenizer)
    width = max(len(p) for p in prompts)
    cache = preallocated_cache(model, width + max_new_tokens) if preallocate else None
    ids = torch.full((len(prompts), width), pad, dtype=torch.long)
    mask = torch.zeros((len(prompts), width + max_new_tokens), dtype=torch.long)  # the new tokens' columns fill in as they come
    for row, p in enumerate(prompts):  # left padding keeps every prompt's end aligned
        ids[row, width - len(p) :] = torch.tensor(list(p))
        mask[row, width - len(p) : width] = 1
    position = (mask[:, :width].cumsum(-1) - 1).masked_fill(mask[:, :width] == 0, 0)
    ids, mask, position = ids.to(device), mask.to(device), position.to(device)
    keep = {"logits_to_keep": 1} if "logits_to_keep" in inspect.signature(model.forward).parameters else {}
    out: list[list[int]] = [[] for _ in prompts]
    alive = list(range(len(prompts)))  # original row of each batch row
    running = list(range(len(prompts)))  # batch rows whose answer is still open
    with torch.inference_mode():
        given = {cache_arg: cache} if cache is not None else {}  # else the model starts a growing one
        step = model(input_ids=ids, attention_mask=mask[:, :width], position_ids=position, use_cache=True, **keep, **given)
        cache = getattr(step, cache_arg)  # the name this version uses: the old one logs a deprecation on 5.x
        if isinstance(cache, tuple):  # transformers 4.x hands back a tuple of layers where it was given no cache
            from transformers.cache_utils import DynamicCache

            cache = DynamicCache.from_legacy_cache(cache)
        position = position[:, -1:]
        for n in range(max_new_tokens):
            tokens = step.logits[:, -1].float().argmax(-1)
            picked, still = tokens.tolist(), []
            for row in running:
                token, owner = picked[row], out[alive[row]]
                if token in stops:
                    continue
                owner.append(token)
                if cut_at_newline and token in newlines and settled(tokenizer, owner):
                    continue
                still.append(row)
            running = still
            if not running or n + 1 == max_new_tokens:
                break
            if len(running) <= COMPACT * len(alive):
                index = torch.tensor(running, device=device)
                cache.batch_select_indices(index)
                mask, position, tokens = mask[index], position[index], tokens[index]
                alive = [alive[row] for row in running]
                running = list(range(len(alive)))
            mask[:, width + n] = 1
            position = position + 1
            if counters is not None:
                counters["decode_rows"] = counters.get("decode_rows", 0) + len(alive)
            step = model(
                input_ids=tokens.unsqueeze(1),
                attention_mask=mask[:, : width + n + 1],
                position_ids=position,
                use_cache=True,
                **keep,
                **{cache_arg: cache},
            )
    return out


def preallocated_cache(model, length: int):
    """A KV cache whose layers hold ``length`` positions allocated up front and hand attention the written prefix
    only (what a growing cache hands it, so the numbers are the same), or None where this transformers has no
    layered cache (4.x)."""
    try:
        from transformers.cache_utils import DynamicCache, DynamicLayer
    except ImportError:
        return None

    class Preallocated(DynamicLayer):
        def __init__(self) -> None:
            super().__init__()
            self.buffers = None
            self.used = 0

        def update(self, key_states, value_states, *args, **kwargs):
            if self.buffers is None:
                self.is_initialized = True
                self.dtype, self.device = key_states.dtype, key_states.device
                self.buffers = [t.new_empty((*t.shape[:2], length, t.shape[3])) for t in (key_states, value_states)]  # read only where written
            n = key_states.shape[-2]
            for buf, t in zip(self.buffers, (key_states, value_states)):
                buf[:, :, self.used : self.used + n] = t
            self.used += n
            self.keys, self.values = (buf[:, :, : self.used] for buf in self.buffers)
            return self.keys, self.values

        def batch_select_indices(self, indices) -> None:
            self.buffers = [buf.index_select(0, indices) for buf in self.buffers]
            self.keys, self.values = (buf[:, :, : self.used] for buf in self.buffers)

    try:
        cache = DynamicCache(config=model.config)
    except TypeError:
        return None
    layers = getattr(cache, "layers", None)
    if not layers or not all(type(layer) is DynamicLayer for layer in layers):
        return None
    cache.layers = [Preallocated() for _ in layers]
    return cache
