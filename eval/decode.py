"""Greedy decoding that stops each row as soon as its answer is settled, and stops computing it.

An answer is the greedy continuation cut at the first stop token (end of turn, EOS)
and then at the first newline that follows some text (``answer_text``: leading
whitespace and newlines are stripped first). Both cuts are decided while decoding:

- a stop token ends its row at once;
- a token whose text holds a newline ends its row when the decoded answer so far,
  leading whitespace removed, holds one (only then is the row decoded; the
  newline-bearing token ids are found once per tokenizer, ``newline_ids``).

A row that has ended is removed from the batch (its KV-cache rows are dropped), so a
batch costs what its longest answer costs, in rows still running. The tokens of
every row are the ones ``model.generate(do_sample=False)`` picks on the raw logits:
the same left-padded prompts, position ids and attention mask, one step at a time.
"""

from __future__ import annotations

from collections.abc import Sequence

_NEWLINES: dict[int, frozenset[int]] = {}


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
) -> list[list[int]]:
    """Generated tokens of each prompt (one batch), up to and excluding its stop token. ``counters["decode_rows"]``
    grows by the rows forwarded at each decoding step (what dropping finished rows saves). Without
    ``cut_at_newline`` a row ends at its stop token or ``max_new_tokens`` only."""
    import torch

    pad = tokenizer.pad_token_id
    stops, newlines = set(stop_ids), newline_ids(tokenizer)
    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), pad, dtype=torch.long)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for row, p in enumerate(prompts):  # left padding keeps every prompt's end aligned
        ids[row, width - len(p) :] = torch.tensor(list(p))
        mask[row, width - len(p) :] = 1
    position = (mask.cumsum(-1) - 1).masked_fill(mask == 0, 0)
    ids, mask, position = ids.to(device), mask.to(device), position.to(device)
    out: list[list[int]] = [[] for _ in prompts]
    alive = list(range(len(prompts)))  # original row of each batch row still decoding
    with torch.inference_mode():
        step = model(input_ids=ids, attention_mask=mask, position_ids=position, use_cache=True)
        cache = getattr(step, cache_arg)  # the name this version uses: the old one logs a deprecation on 5.x
        position = position[:, -1:]
        for n in range(max_new_tokens):
            picked = step.logits[:, -1].float().argmax(-1)
            keep = []
            for row, token in enumerate(picked.tolist()):
                owner = out[alive[row]]
                if token in stops:
                    continue
                owner.append(token)
                if cut_at_newline and token in newlines and settled(tokenizer, owner):
                    continue
                keep.append(row)
            if not keep or n + 1 == max_new_tokens:
                break
            if len(keep) < len(alive):
                index = torch.tensor(keep, device=device)
                cache.batch_select_indices(index)
                mask, position, picked = mask[index], position[index], picked[index]
                alive = [alive[row] for row in keep]
            mask = torch.cat([mask, mask.new_ones((len(alive), 1))], 1)
            position = position + 1
            if counters is not None:
                counters["decode_rows"] = counters.get("decode_rows", 0) + len(alive)
            step = model(input_ids=picked.unsqueeze(1), attention_mask=mask, position_ids=position, use_cache=True, **{cache_arg: cache})
    return out
