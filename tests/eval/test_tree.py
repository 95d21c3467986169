"""Packing a group (context, continuations) as one row: the prefix tree's slots, positions, readers and mask."""

from __future__ import annotations

import pytest

from entity_unlearn.eval.tree import pack_group, tree_batch


def test_shared_beginnings_share_slots_and_last_tokens_take_none():
    g = pack_group((5, 6), [(7, 8, 9), (7, 8, 4), (3,), (7, 2)])
    # slots: context 5 6, then the proper prefixes (7), (7, 8), the others add nothing new
    assert g.tokens == (5, 6, 7, 8)
    assert g.positions == (0, 1, 2, 3)
    assert g.parents == (-1, 0, 1, 2)
    assert g.context == 2
    # token t of a continuation is read at the context's last slot (t = 0) or at the slot of its first t tokens
    assert g.readers == ((1, 2, 3), (1, 2, 3), (1,), (1, 2))


def test_branches_get_positions_by_depth_not_by_slot():
    g = pack_group((1,), [(2, 3, 4), (5, 6, 7)])
    assert g.tokens == (1, 2, 3, 5, 6)
    assert g.positions == (0, 1, 2, 1, 2)
    assert g.parents == (-1, 0, 1, 0, 3)
    assert g.readers == ((0, 1, 2), (0, 3, 4))


def test_an_empty_context_is_refused():
    with pytest.raises(ValueError, match="context needs at least one token"):
        pack_group((), [(1, 2)])


def test_each_slot_sees_the_context_and_its_own_ancestors_only():
    import torch

    rows = [pack_group((1,), [(2, 3, 4), (5, 6, 7)]), pack_group((8, 9), [(1, 2)])]
    ids, pos, mask, lengths = tree_batch(rows, pad=0, dtype=torch.float32)
    assert ids.tolist() == [[1, 2, 3, 5, 6], [8, 9, 1, 0, 0]]
    assert pos.tolist() == [[0, 1, 2, 1, 2], [0, 1, 2, 0, 0]]
    assert lengths.tolist() == [5, 3]
    seen = (mask[:, 0] == 0).int().tolist()
    assert seen[0] == [
        [1, 0, 0, 0, 0],
        [1, 1, 0, 0, 0],
        [1, 1, 1, 0, 0],
        [1, 0, 0, 1, 0],  # the second branch: the context and itself, not the first branch
        [1, 0, 0, 1, 1],
    ]
    assert seen[1] == [
        [1, 0, 0, 0, 0],
        [1, 1, 0, 0, 0],
        [1, 1, 1, 0, 0],
        [0, 0, 0, 1, 0],  # padding sees itself only
        [0, 0, 0, 0, 1],
    ]
    assert float(mask.min()) == torch.finfo(torch.float32).min
