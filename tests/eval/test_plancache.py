"""The tokenised plan on disk: read back as built, missed when the items change, and bounded (least recently used out)."""

from __future__ import annotations

from transformers import AutoTokenizer

from entity_unlearn.eval import Formatter, load_items, open_release, plan, plancache
from entity_unlearn.eval.plancache import cached_plan


def test_plans_are_read_back_missed_on_other_items_and_the_least_recently_used_leave(tiny_release, tiny_model, tmp_path, monkeypatch):
    items, _ = load_items(open_release(str(tiny_release)), "forget05")
    formatter = Formatter(AutoTokenizer.from_pretrained(tiny_model))
    folder = tmp_path / "plans"
    selections = {n: items[n * 5 : n * 5 + 5] for n in range(4)}
    built, was_read = cached_plan(selections[0], formatter, folder)
    assert not was_read and cached_plan(selections[0], formatter, folder) == (built, True) and built == plan(selections[0], formatter)
    for n in (1, 2):
        assert cached_plan(selections[n], formatter, folder)[1] is False  # other items: another plan
    cached_plan(selections[3], formatter, tmp_path / "aside")  # the fourth plan's size, written elsewhere
    sizes = [f.stat().st_size for f in (*folder.iterdir(), *(tmp_path / "aside").iterdir())]
    monkeypatch.setattr(plancache, "PLAN_CACHE_BYTES", sum(sizes) - 1)  # one byte short of room for all four
    assert cached_plan(selections[0], formatter, folder)[1] is True  # used again: now the most recent
    before = {f.name for f in folder.iterdir()}
    cached_plan(selections[3], formatter, folder)  # the fourth: the least recently used (selection 1) leaves, alone
    (gone,) = before - {f.name for f in folder.iterdir()}
    assert gone == plancache.plan_key(selections[1], formatter) + ".json" and len(list(folder.iterdir())) == 3
    assert all(cached_plan(selections[n], formatter, folder)[1] for n in (0, 2, 3))
