"""Draws of wrong answers that leave no option likelier the truth: weighted bags, a balanced systematic draw, nearest
values at a uniform rank. Pure functions of a random stream and counts; ``perturb.py`` decides what to draw from."""

from __future__ import annotations

import random
from bisect import bisect_left
from collections import Counter
from collections.abc import Iterable

REJECTION_TRIES = 20  # draws per wanted value before a bag is scanned instead


class Bag:
    """A multiset of answers (one entry per entity holding it): a uniform draw from ``items`` is a draw weighted
    by how many entities hold the answer."""

    __slots__ = ("items", "counts")

    def __init__(self, items: Iterable[str] = ()) -> None:
        self.items = list(items)
        self.counts = Counter(self.items)

    def draw(self, rng: random.Random, n: int, bad: set[str]) -> list[str]:
        """Up to ``n`` distinct answers not in ``bad``, weighted by count, without repeats (adds them to ``bad``)."""
        out: list[str] = []
        if n <= 0 or not self.items:
            return out
        if len(self.counts) > 4 * (n + len(bad)):  # plenty: draw and reject, without scanning the bag
            for _ in range(REJECTION_TRIES * n):
                x = self.items[rng.randrange(len(self.items))]
                if x not in bad:
                    bad.add(x)
                    out.append(x)
                    if len(out) == n:
                        return out
        # weighted sampling without replacement (Efraimidis & Spirakis 2006): the n largest u^(1/w)
        cands = [(rng.random() ** (1.0 / w), x) for x, w in self.counts.items() if x not in bad]
        cands.sort(reverse=True)
        for _, x in cands[: n - len(out)]:
            bad.add(x)
            out.append(x)
        return out


def pick(rng: random.Random, n: int, tiers: Iterable[Bag], bad: set[str]) -> list[str]:
    """``n`` distinct texts not in ``bad``: as many as possible from the first bag, then the next ..."""
    out: list[str] = []
    for bag in tiers:
        if len(out) >= n:
            break
        out += bag.draw(rng, n - len(out), bad)
    return out


def balanced(rng: random.Random, n: int, counts: Counter, truth: str, bad: set[str]) -> list[str] | None:
    """``n`` wrong answers from a small vocabulary held with ``counts`` (the truth's among them), chosen so that,
    with the truth drawn in proportion to ``counts``, each of the n + 1 options is equally likely the truth.

    A weighted draw without repeats from a few values nearly always includes the popular ones, so the truth is
    the most popular option more often than chance. Instead the option set is a systematic sample with
    inclusion probabilities pi_v = (n + 1) p_v (Madow 1949), conditioned on holding the truth: then
    P(truth = v | options) is proportional to p_v / pi_v, the same for every option. A value with p_v above
    1 / (n + 1) is in every set (pi_v capped at 1): no choice of options can hide that it is the likeliest.
    Returns None (draw otherwise) when fewer than n + 1 values are held or the truth is not one of them.
    """
    weights = {v: float(c) for v, c in counts.items() if c > 0 and (v == truth or v not in bad)}
    m = n + 1
    if truth not in weights or len(weights) < m:
        return None
    pi: dict[str, float] = {}
    free = dict(weights)
    while True:  # cap at 1, spreading the rest over the uncapped values
        slots, mass = m - len(pi), sum(free.values())
        capped = {v for v, w in free.items() if slots * w / mass >= 1}
        if not capped:
            pi.update({v: slots * w / mass for v, w in free.items()})
            break
        pi.update({v: 1.0 for v in capped})
        free = {v: w for v, w in free.items() if v not in capped}
    order = sorted(pi)
    rng.shuffle(order)
    start, spans = 0.0, {}
    for v in order:
        spans[v] = (start, start + pi[v])
        start += pi[v]
    lo, hi = spans[truth]
    u = (lo + rng.random() * (hi - lo)) % 1.0
    points = [u + i for i in range(m)]
    chosen = [v for v in order if any(spans[v][0] <= x < spans[v][1] for x in points)]
    out = [v for v in chosen if v != truth][:n]
    if len(out) < n:
        return None
    bad.update(out)
    return out


def nearest(
    rng: random.Random, pool: list[tuple[float, str, int]], truth: float, n_below: int, n_above: int, seen: set[str]
) -> tuple[list[str], list[str]]:
    """Texts of ``pool`` (sorted (value, text, holders)) near ``truth``, none in ``seen`` (those taken are added):
    ``n_below`` under it and ``n_above`` over it, each side drawn from its 2n nearest values weighted by how many
    entities hold them (a value two cities share is as likely a wrong option as a true one); where one side has
    too few, more from the other (a value of the training text is worth more than the truth's exact rank at the
    edge of the world's range)."""
    n_below, n_above = max(0, n_below), max(0, n_above)
    i = bisect_left(pool, (truth, "", 0))
    w = 4 * (n_below + n_above) + len(seen) + 4  # enough entries for 2n on either side
    lower = [(t, c) for v, t, c in reversed(pool[max(0, i - w) : i]) if v < truth and t not in seen]
    upper = [(t, c) for v, t, c in pool[i : i + w] if v > truth and t not in seen]
    n_down = min(len(lower), n_below + max(0, n_above - len(upper)))
    n_up = min(len(upper), n_above + max(0, n_below - len(lower)))
    down = Bag(x for t, c in lower[: 2 * n_down] for x in [t] * c).draw(rng, n_down, seen)
    up = Bag(x for t, c in upper[: 2 * n_up] for x in [t] * c).draw(rng, n_up, seen)
    return down, up
