"""One context and all its continuations as one sequence: the continuations' prefix tree after the context.

A group (context, continuations) is scored by one row of one forward. The row holds the context's tokens,
then one slot per distinct proper prefix of the continuations (a trie node): the node for ``x[:i]`` holds
token ``x[i-1]`` at position ``len(context) + i - 1``, and attends to the context and to its own ancestors
only (an attention mask per row, ``tree_batch``). Its output is then what a sequence ``context + x[:i]`` gives
at its last position: the logits that predict ``x[i]``. Candidates that share a beginning (an answer and its
paraphrases, the options of a question) share those slots, and a context is forwarded once with nothing
copied. A continuation's last token is never a slot: nothing reads what follows it.

Readers: token ``t`` of continuation ``x`` is predicted at the context's last slot (``t = 0``) or at the
node of ``x[:t]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class PackedGroup:
    """One group as one row: its tokens and positions, each slot's parent (-1 for the first), how many slots are
    the context, and for each continuation the slot that predicts each of its tokens."""

    tokens: tuple[int, ...]
    positions: tuple[int, ...]
    parents: tuple[int, ...]
    context: int
    readers: tuple[tuple[int, ...], ...]


def pack_group(context: Sequence[int], continuations: Sequence[Sequence[int]]) -> PackedGroup:
    """The context followed by the trie of the continuations' proper prefixes (``x[:i]`` for ``1 <= i < len(x)``)."""
    m = len(context)
    if m == 0:
        raise ValueError("a scored context needs at least one token (the one that predicts the continuation's first)")
    tokens, positions, parents = list(context), list(range(m)), list(range(-1, m - 1))
    child: dict[tuple[int, int], int] = {}  # (parent slot, token) -> slot
    readers = []
    for x in continuations:
        at, read, t, last = m - 1, [m - 1], 0, len(x) - 1
        while t < last and (nxt := child.get((at, x[t]))) is not None:  # down the slots made for earlier candidates
            at = nxt
            read.append(at)
            t += 1
        if t < last:  # the rest of its proper prefixes are new: one chain of slots
            start, new = len(tokens), x[t:last]
            chain = range(start, start + len(new))
            child.update(zip(zip((at, *chain[:-1]), new), chain))
            tokens.extend(new)
            positions.extend(range(positions[at] + 1, positions[at] + 1 + len(new)))
            parents.append(at)
            parents.extend(chain[:-1])
            read.extend(chain)
        readers.append(tuple(read) if x else ())
    return PackedGroup(tuple(tokens), tuple(positions), tuple(parents), m, tuple(readers))


def tree_batch(packed: Sequence[PackedGroup], pad: int, dtype):
    """Input ids, position ids and a 4D additive attention mask (0 where a slot may attend, the dtype's minimum
    elsewhere) for rows of packed groups, right padded to the longest; and the rows' lengths. A context slot sees
    the context up to itself, a trie node the whole context and its ancestors; a padding slot sees itself."""
    import numpy as np
    import torch

    lengths = np.array([len(g.tokens) for g in packed])
    rows, width = len(packed), int(lengths.max())
    ids = np.full((rows, width), pad, dtype=np.int64)
    pos = np.zeros((rows, width), dtype=np.int64)
    parent = np.full((rows, width), -1, dtype=np.int64)
    ctx = np.array([g.context for g in packed])
    for r, g in enumerate(packed):
        n = len(g.tokens)
        ids[r, :n], pos[r, :n], parent[r, :n] = g.tokens, g.positions, g.parents
    slot = np.arange(width)
    in_ctx = slot[None, :] < ctx[:, None]
    # context slots: causal within the context
    seen = in_ctx[:, :, None] & in_ctx[:, None, :] & (slot[None, None, :] <= slot[None, :, None])
    # trie nodes, shallowest first: a node sees what its parent sees, and itself (a parent comes before its child)
    depth = np.where(in_ctx, 0, pos - ctx[:, None] + 1)
    depth[slot[None, :] >= lengths[:, None]] = 0
    for d in range(1, int(depth.max()) + 1):
        r, s = np.nonzero(depth == d)
        seen[r, s] = seen[r, parent[r, s]]
        seen[r, s, s] = True
    r, s = np.nonzero(slot[None, :] >= lengths[:, None])
    seen[r, s, s] = True  # padding: a row that attends somewhere (its output is never read)
    mask = torch.zeros((rows, 1, width, width), dtype=dtype)
    mask.masked_fill_(~torch.from_numpy(seen).unsqueeze(1), torch.finfo(dtype).min)
    return torch.from_numpy(ids), torch.from_numpy(pos), mask, lengths
