"""Every registered metric has a metric card that states its formula and its source."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import entity_unlearn.cards
from entity_unlearn.eval import robustness as R
from entity_unlearn.eval.registry import load_all

CARDS = Path(entity_unlearn.cards.__file__).parent / "metrics"
HEADINGS = ("Definition", "Direction and range", "Source", "Differences from the source")
METRICS = load_all()


def sections(card: Path) -> dict[str, str]:
    """Heading -> text under it, for the level-2 headings of a card."""
    parts = re.split(r"^##\s+(.+)$", card.read_text(encoding="utf-8"), flags=re.M)
    return {parts[i].strip(): parts[i + 1].strip("\n") for i in range(1, len(parts) - 1, 2)}


def test_the_registry_holds_every_metric_eval_writes():
    names = set(METRICS)
    assert {"prob", "rouge_l_recall", "truth_ratio", "mc_accuracy", "forget_quality", "model_utility", "surviving_entity_share"} <= names
    assert {f"mia_auc_{a}" for a in ("loss", "zlib", "min_k", "min_k_plus_plus")} <= names
    assert {f"privleak_{a}" for a in ("loss", "zlib", "min_k", "min_k_plus_plus")} <= names
    assert {"efficacy_prob", "efficacy_rouge_l_recall", "efficacy_mc_accuracy"} <= names


@pytest.mark.parametrize("name", sorted(METRICS))
def test_metric_has_a_card_with_formula_and_source(name):
    metric = METRICS[name]
    card = CARDS / f"{metric.card}.md"
    assert card.is_file(), f"metric {name!r} names the card {metric.card!r}, but {card} does not exist"
    found = sections(card)
    missing = [h for h in HEADINGS if h not in found]
    assert not missing, f"{card.name} lacks the headings {missing}"
    assert found["Source"] and found["Definition"], f"{card.name}: empty Definition or Source"
    assert re.search(r"^ {4}\S.*=", found["Definition"], re.M), f"{card.name}: the Definition states no formula (an indented equation)"
    text = card.read_text(encoding="utf-8")
    assert name in text or metric.card in text, f"{card.name} does not name the metric {name!r}"
    assert metric.version.isdigit()


ROBUSTNESS_CARDS = {"recovery_": "recovery", "ou_": "ou_robustness"}  # robustness.json's metrics, computed outside eval


@pytest.mark.parametrize("name", R.METRIC_NAMES)
def test_robustness_metric_has_a_card(name):
    stem = next((card for prefix, card in ROBUSTNESS_CARDS.items() if name.startswith(prefix)), name)
    card = CARDS / f"{stem}.md"
    assert card.is_file(), f"robustness metric {name!r} has no card at {card}"
    found = sections(card)
    assert not [h for h in HEADINGS if h not in found], f"{card.name} lacks one of {HEADINGS}"
