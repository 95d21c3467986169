"""Accuracy against chance, summed over probes and read out overall and by relation, depth, attack, entity type.

A chooser (a shortcut heuristic, the bigram floor) picks a set S of a probe's options. It scores
1/|S| when the true option is in S and 0 otherwise; an empty S, or every option, is no
preference and scores chance, 1/len(options). ``gain`` = mean score - mean chance: what the
chooser wins over guessing without knowing anything about the entity; ``se`` its standard error, from the
spread of the probes' own (score - chance).
"""

from __future__ import annotations

import math
from collections.abc import Collection
from typing import Any

from .load import ProbeRow

DIMENSIONS = ("relation", "depth", "attack", "entity_type")
DIGITS = 4


def pick_score(chosen: Collection[int] | None, probe: ProbeRow) -> float:
    """1/|S| if the truth is in S, else 0; no preference (S empty or every option) scores chance."""
    n = len(probe.options)
    if not chosen or len(chosen) >= n:
        return 1.0 / n
    return 1.0 / len(chosen) if probe.answer_index in chosen else 0.0


def argmax_set(scores: list[float]) -> set[int]:
    """Indices of the highest scores (ties kept, so they split evenly)."""
    top = max(scores)
    return {i for i, s in enumerate(scores) if s == top} if scores.count(top) > 1 else {scores.index(top)}


class Tally:
    """Sums of (probes, score, chance) by (dimension, key); ``result()`` gives accuracy, chance and gain.

    Sums are kept per combination of relation, depth, attack and entity type (a few hundred) and
    rolled up into each dimension at the end.
    """

    def __init__(self) -> None:
        self.sums: dict[tuple[str, ...], list[float]] = {}

    def add(self, probe: ProbeRow, score: float) -> None:
        self.add_to(probe.cell, 1.0 / len(probe.options), score)

    def add_to(self, cell: tuple[str, ...], chance: float, score: float) -> None:
        """``add`` for a probe of ``cell`` whose chance score is ``chance`` (a loop over many choosers computes them once)."""
        s = self.sums.get(cell)
        if s is None:
            s = self.sums[cell] = [0, 0.0, 0.0, 0.0]
        s[0] += 1
        s[1] += score
        s[2] += chance
        s[3] += (score - chance) ** 2

    @staticmethod
    def cell(s: list[float]) -> dict[str, Any]:
        """n, accuracy, chance, gain and ``se``, the standard error of the gain (from the probes' own scores)."""
        n, score, chance, squares = s
        gain = (score - chance) / n
        var = max(0.0, (squares - n * gain * gain) / (n - 1)) if n > 1 else 0.0
        return {
            "n": int(n),
            "accuracy": round(score / n, DIGITS),
            "chance": round(chance / n, DIGITS),
            "gain": round(gain, DIGITS),
            "se": round(math.sqrt(var / n), DIGITS),
        }

    def result(self) -> dict[str, Any]:
        """``{"overall": cell, "by_relation": {key: cell}, "by_depth": ..., "by_attack": ..., "by_entity_type": ...}``."""
        rolled: dict[tuple[str, str], list[float]] = {}
        for combo, s in self.sums.items():
            for key in (("overall", "all"), *zip(DIMENSIONS, combo)):
                r = rolled.setdefault(key, [0, 0.0, 0.0, 0.0])
                for i in range(4):
                    r[i] += s[i]
        empty = {"n": 0, "accuracy": None, "chance": None, "gain": None, "se": None}
        out: dict[str, Any] = {"overall": self.cell(rolled[("overall", "all")]) if ("overall", "all") in rolled else empty}
        for dim in DIMENSIONS:
            out[f"by_{dim}"] = {k: self.cell(s) for (d, k), s in sorted(rolled.items()) if d == dim}
        return out
