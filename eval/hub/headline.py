"""The headline numbers of a result, read from its aggregates by (metric, set, depth, attack).

Shared by the Hub eval-results entries (one task per headline metric) and the
leaderboard's columns. A headline whose metric a result lacks is ``None`` (the
result was computed without a reference, or by an older version); a column no
run has is left out of the page. Robustness aggregates (those with a
``robustness_attack`` other than ``none``) are found, not listed: one column per
metric and robustness attack, on the forget set.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from entity_unlearn.builders.schema import DEPTHS


@dataclass(frozen=True)
class Headline:
    key: str  # column name in leaderboard.json/.csv, task id suffix on the Hub
    metric: str
    set: str | None  # None: any set (model utility names the sets it combines)
    depth: str
    attack: str
    # The direction to rank by, when it is not the aggregate's own: on the forget set a lower answer probability
    # means more forgotten, while the aggregate carries the metric's generic direction (higher is better).
    higher_is_better: bool | None = None


HEADLINE = (
    Headline("forget_quality", "forget_quality", "forget", "d1", "none"),
    Headline("model_utility", "model_utility", None, "d1", "none"),
    Headline("model_utility_entity", "model_utility_entity", None, "d1", "none"),
    Headline("surviving_entity_share", "surviving_entity_share", "forget", "all", "all"),
    Headline("privleak", "privleak_min_k", "forget", "d1", "none"),
)
DEPTH_PROB = tuple(Headline(f"forget_prob_{d}", "prob", "forget", d, "none", higher_is_better=False) for d in DEPTHS)
FORGET_PROB_ALL = Headline("forget_prob_all", "prob", "forget", "all", "none", higher_is_better=False)


def _plain(a: dict) -> bool:
    return a.get("robustness_attack", "none") in (None, "none")


def find(aggregates: Sequence[dict], h: Headline) -> dict | None:
    for a in aggregates:
        if a["metric"] == h.metric and (h.set is None or a["set"] == h.set) and a["depth"] == h.depth and a["attack"] == h.attack and _plain(a):
            return a
    return None


def value(aggregates: Sequence[dict], h: Headline) -> float | None:
    a = find(aggregates, h)
    return None if a is None else a["value"]


def direction(aggregates: Sequence[dict], h: Headline) -> bool | None:
    if h.higher_is_better is not None:
        return h.higher_is_better
    a = find(aggregates, h)
    return None if a is None else a["higher_is_better"]


def robustness(aggregates: Sequence[dict]) -> dict[str, dict]:
    """``{"<metric>@<robustness attack>": aggregate}`` on the forget set, all depths (else d1)."""
    out: dict[str, dict] = {}
    for depth in ("d1", "all"):  # "all" read last wins
        for a in aggregates:
            if not _plain(a) and a["set"] == "forget" and a["depth"] == depth and a["attack"] in ("all", "none"):
                out[f"{a['metric']}@{a['robustness_attack']}"] = a
    return out
