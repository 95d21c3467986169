"""Aggregates: every registered metric computed from one model's per-item rows.

``aggregate(rows, reference, before)`` runs the registry (``eval/registry.py``) by kind: every
``slice`` metric on every (set, depth, attack) slice (depth ``all`` and attack ``all`` are extra
slices), then the ``cross_set`` metrics, then, given a reference result, the ``reference`` ones, and,
given a before result, the ``before`` ones. Each aggregate is a flat dict

    {metric, set, depth, attack, value, stderr, n, higher_is_better}

``value`` None is NaN (nothing scorable); ``stderr`` comes from a seeded bootstrap over entities
(``eval/bootstrap.py``); ``higher_is_better`` is the metric's direction on that set.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence

from .bootstrap import REPLICATES, Bootstrap, stderr, unit_of
from .registry import Metric, get_metric, metrics_of

Key = tuple[str, str, str]


def slices(rows: Sequence[dict]) -> dict[Key, list[dict]]:
    """(set, depth, attack) -> rows, with depth 'all' and attack 'all' as extra slices."""
    out: dict[Key, list[dict]] = defaultdict(list)
    for r in rows:
        for depth in (r["depth"], "all"):
            for attack in {r["attack"], "all"}:
                out[(r["set"], depth, attack)].append(r)
    return out


def slice_value(metric: Metric, rows: Sequence[dict]) -> float:
    """A slice metric's value on ``rows``: the mean of its item values over the scorable rows (NaN if none)."""
    values = [v for v in map(metric.compute, rows) if v is not None]
    return sum(values) / len(values) if values else float("nan")


class Context:
    """What a metric's ``compute`` reads (rows, the other results, aggregates so far) and how it writes (``emit``)."""

    def __init__(self, rows: Sequence[dict], reference: dict | None = None, before: dict | None = None, seed: int = 0, replicates: int = REPLICATES):
        self.rows = list(rows)
        self.reference, self.before = reference, before
        self.boot = Bootstrap((unit_of(r) for r in self.rows), replicates, seed)
        self.aggregates: list[dict] = []
        self.entities: list[dict] = []
        self._found: dict[tuple[str, str, str, str], dict] = {}
        self._reps: dict[int, object] = {}  # id(aggregate) -> replicate values

    slices = staticmethod(slices)

    @staticmethod
    def units(rows: Sequence[dict]) -> list[str]:
        return [unit_of(r) for r in rows]

    def reference_rows(self, set_: str) -> dict[str, dict]:
        return {r["item_id"]: r for r in self.reference["rows"] if r["set"] == set_} if self.reference else {}

    def find(self, metric: str, set_: str, depth: str, attack: str) -> dict | None:
        return self._found.get((metric, set_, depth, attack))

    def replicates_of(self, agg: dict):
        return self._reps.get(id(agg))

    def emit(self, metric: str, set_: str, depth: str, attack: str, value: float, n: int, replicates=None) -> dict:
        agg = {
            "metric": metric,
            "set": set_,
            "depth": depth,
            "attack": attack,
            "value": None if value is None or math.isnan(value) else float(value),
            "stderr": None if value is None or math.isnan(value) else stderr(replicates),
            "n": n,
            "higher_is_better": get_metric(metric).higher_is_better(set_),
        }
        self.aggregates.append(agg)
        self._found[(metric, set_, depth, attack)] = agg
        if replicates is not None:
            self._reps[id(agg)] = replicates
        return agg


def slice_aggregates(ctx: Context) -> None:
    """Every slice metric on every slice, slices in sorted order, metrics in registration order."""
    grouped = metrics_of("slice")
    units = {id(r): unit_of(r) for r in ctx.rows}
    values = {m.name: {id(r): m.compute(r) for r in ctx.rows} for m in grouped}
    for (set_, depth, attack), group in sorted(slices(ctx.rows).items()):
        for m in grouped:
            scored = [(values[m.name][id(r)], units[id(r)]) for r in group if values[m.name][id(r)] is not None]
            value = sum(v for v, _ in scored) / len(scored) if scored else float("nan")
            reps = ctx.boot.mean([v for v, _ in scored], [u for _, u in scored])
            ctx.emit(m.name, set_, depth, attack, value, len(group), reps)


def entity_depth(rows: Sequence[dict], set_: str = "forget") -> list[dict]:
    """Per entity of ``set_`` and depth (entities sorted, depths in release order; only cells with probes): how many
    of its probes there are (every attack kind) and the share the model answered right (``metrics.answered_right``).
    The report's heatmap is drawn from these records, so it needs no per-item rows."""
    from entity_unlearn.builders.schema import DEPTHS

    from .metrics import answered_right

    cells: dict[tuple[str, str], list[int]] = defaultdict(list)
    for r in rows:
        if r["set"] == set_:
            cells[(r["entity_id"], r["depth"])].append(int(answered_right(r)))
    rank = {d: i for i, d in enumerate(DEPTHS)}
    return [
        {"set": set_, "entity_id": e, "depth": d, "answered_right": sum(v) / len(v), "n": len(v)}
        for (e, d), v in sorted(cells.items(), key=lambda c: (c[0][0], rank.get(c[0][1], len(rank))))
    ]


def grouped_metrics(rows: Sequence[dict], seed: int = 0) -> list[dict]:
    """The slice aggregates alone."""
    ctx = Context(rows, seed=seed)
    slice_aggregates(ctx)
    return ctx.aggregates


def aggregate(
    rows: Sequence[dict], reference: dict | None = None, before: dict | None = None, seed: int = 0, replicates: int = REPLICATES
) -> tuple[list[dict], list[dict], dict]:
    """(aggregates, per-entity survival records, bootstrap spec) of one model's rows."""
    ctx = Context(rows, reference, before, seed, replicates)
    slice_aggregates(ctx)
    for kind, needed in (("cross_set", True), ("reference", reference is not None), ("before", before is not None)):
        if needed:
            for m in metrics_of(kind):
                m.compute(ctx)
    return ctx.aggregates, ctx.entities, ctx.boot.spec()
