"""Every metric name that can appear in an aggregate has a metric card with the required sections."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import entity_unlearn.cards
from entity_unlearn.eval import metrics as M
from entity_unlearn.eval import robustness as R

CARDS = Path(entity_unlearn.cards.__file__).parent / "metrics"
SHARED = {"mia_auc_": "mia_auc", "privleak_": "privleak", "efficacy_": "efficacy", "recovery_": "recovery", "ou_": "ou_robustness"}
HEADINGS = ("Definition", "Direction and range", "Source", "Differences from the source")


def aggregate_metric_names() -> list[str]:
    names = set(M.METRICS) | {"forget_quality", "model_utility", "surviving_entity_share"}
    names |= {f"mia_auc_{a}" for a in M.MIA_ATTACKS} | {f"privleak_{a}" for a in M.MIA_ATTACKS}
    names |= {f"efficacy_{m}" for m in ("prob", "rouge_l_recall", "mc_accuracy")}
    names |= set(R.METRIC_NAMES)  # robustness attacks (entity-unlearn attack, study)
    return sorted(names)


def card_for(name: str) -> Path:
    stem = next((card for prefix, card in SHARED.items() if name.startswith(prefix)), name)
    return CARDS / f"{stem}.md"


def test_expected_names_are_covered():
    names = aggregate_metric_names()
    assert {"mia_auc_loss", "mia_auc_zlib", "mia_auc_min_k", "mia_auc_min_k_plus_plus"} <= set(names)
    assert {"privleak_loss", "privleak_zlib", "privleak_min_k", "privleak_min_k_plus_plus"} <= set(names)
    assert {"efficacy_prob", "efficacy_rouge_l_recall", "efficacy_mc_accuracy"} <= set(names)


@pytest.mark.parametrize("name", aggregate_metric_names())
def test_metric_has_card(name):
    assert card_for(name).is_file(), f"metric {name!r} has no card at {card_for(name)}"


@pytest.mark.parametrize("card", sorted({card_for(n) for n in aggregate_metric_names()}), ids=lambda p: p.name)
def test_card_has_required_sections(card):
    headings = {m.group(1).strip() for m in re.finditer(r"^#{2,}\s+(.+)$", card.read_text(encoding="utf-8"), re.M)}
    missing = [h for h in HEADINGS if h not in headings]
    assert not missing, f"{card.name} lacks the headings {missing}"
