"""Standard errors of aggregates: a seeded bootstrap over entities.

Rows of one entity are not independent (the same person's facts, asked many ways), so the unit of
resampling is the entity: every row of an entity gets the same weight. Rows without an entity (the
world questions) are each their own unit. The weights are Poisson(1) counts drawn once per unit and
replicate (the "Poisson bootstrap", Hanley & MacGibbon 2006; Chamandy et al. 2012, "Estimating
uncertainty for massive data streams"): it approximates resampling units with replacement, and
because each unit's weight is fixed across slices, one replicate is one resampled world for every
metric at once, so a metric built from other aggregates (model utility from nine of them, efficacy
from a before value) gets its replicates from theirs.

``stderr`` is the standard deviation (ddof 1) of the finite replicate values; fewer than two gives None. A
replicate in which every unit of a slice drew weight 0 (likely only for slices of one or two entities:
e^-1 = 37% per entity) has no value there and is left out, so such a slice's stderr describes the
replicates in which it exists.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

REPLICATES = 200


def unit_of(row: dict) -> str:
    """The resampling unit of a row: its entity, or the item itself when it has none."""
    return row.get("entity_id") or f"item:{row['item_id']}"


class Bootstrap:
    def __init__(self, units: Iterable[str], replicates: int = REPLICATES, seed: int = 0) -> None:
        import numpy as np

        self.replicates, self.seed = replicates, seed
        self.index = {u: i for i, u in enumerate(sorted(set(units)))}
        self.weights = np.random.default_rng(seed).poisson(1.0, size=(replicates, len(self.index))).astype(float)

    def spec(self) -> dict:
        return {"method": "Poisson bootstrap over entities", "replicates": self.replicates, "seed": self.seed, "units": len(self.index)}

    def weights_of(self, units: Sequence[str]):
        """(replicates x len(units)) weights: column j is the weight of ``units[j]`` in every replicate."""
        import numpy as np

        return self.weights[:, np.array([self.index[u] for u in units], dtype=int)] if units else self.weights[:, :0]

    def mean(self, values: Sequence[float], units: Sequence[str]):
        """Replicates of the mean of ``values`` (one per row, the row's unit in ``units``): Σ w v / Σ w."""
        import numpy as np

        w = self.weights_of(units)
        v = np.asarray(values, dtype=float)
        total = w.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(total > 0, (w @ v) / np.where(total > 0, total, 1), np.nan)

    def resample(self, fn: Callable[[list], float], items: Sequence, units: Sequence[str]):
        """Replicates of ``fn(items)``: each replicate repeats every item by its unit's weight."""
        import numpy as np

        w = self.weights_of(units).astype(int)
        out = np.empty(self.replicates)
        for b in range(self.replicates):
            picked = [item for item, k in zip(items, w[b]) for _ in range(k)]
            out[b] = fn(picked) if picked else np.nan
        return out

    def auc(self, holdout: Sequence[float], forget: Sequence[float], holdout_units: Sequence[str], forget_units: Sequence[str]):
        """Replicates of AUC = P(s_h > s_f) + ½ P(s_h = s_f), every (holdout, forget) pair weighted by the product of
        its units' weights: the Mann-Whitney AUC of the resampled scores, without ranking each replicate again."""
        import numpy as np

        h, f = np.asarray(holdout, dtype=float), np.asarray(forget, dtype=float)
        if not h.size or not f.size:
            return np.full(self.replicates, np.nan)
        wins = (h[:, None] > f[None, :]) + 0.5 * (h[:, None] == f[None, :])
        wh, wf = self.weights_of(holdout_units), self.weights_of(forget_units)
        pairs = wh.sum(axis=1) * wf.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(pairs > 0, np.einsum("bh,hf,bf->b", wh, wins, wf) / np.where(pairs > 0, pairs, 1), np.nan)


def stderr(replicates) -> float | None:
    """Standard deviation (ddof 1) of the finite replicates; None with fewer than two."""
    import numpy as np

    if replicates is None:
        return None
    finite = np.asarray(replicates, dtype=float)
    finite = finite[np.isfinite(finite)]
    return float(finite.std(ddof=1)) if finite.size >= 2 else None
