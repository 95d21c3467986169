"""The metric registry: every metric that reaches an output, registered once with its metadata.

The API is small on purpose:

- ``register(metric)``: add a ``Metric``; a second registration of a name raises ``ValueError``.
- ``get_metric(name)``: the ``Metric``; an unknown name raises ``KeyError`` with "did you mean".
- ``METRICS``: name -> ``Metric``, in registration order (the order of tables and reports).
- ``metrics_of(*kinds)``: the registered metrics of those kinds, in registration order.

A ``Metric`` holds:

- ``name``: as it appears in ``aggregates[].metric``;
- ``kind``: what it needs, which decides when it is computed:
  ``"slice"`` (one value per (set, depth, attack) slice of one model's rows),
  ``"cross_set"`` (one model's rows across sets, e.g. model utility, membership inference),
  ``"reference"`` (also the result of a never-trained reference model, ``--reference``),
  ``"before"`` (also the result of the same model before unlearning, ``--before``),
  ``"study"`` (several results of a study; computed by the study, not by ``eval``);
- ``compute``: for ``slice``, ``item(row) -> float | None`` (None: the row cannot be scored; the
  aggregate is the mean over the scored rows); for every other kind, ``compute(ctx) -> list[dict]``
  of aggregates (``eval/aggregate.py`` passes the context; the study calls its own);
- ``directions``: set -> ``True`` (higher is better), ``False`` (lower is better) or ``None``
  (closer to a target is better, stated in the card); key ``"*"`` for every other set;
- ``version``: bumped whenever the definition changes a number;
- ``card``: the stem of ``cards/metrics/<card>.md`` that defines it (formula and source);
- ``summary``: shown in the terminal summary and the report's main tables;
- ``columns``: where it appears in the study's table (``Column``: key, header, set, depth, attack).

Evaluation metrics are registered in ``eval/catalog.py``; ``load_all()`` imports every module that
registers (add yours to ``PROVIDERS``). Adding a metric is one function, one ``register`` call, one card
and one test.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from entity_unlearn.errors import UnknownNameError

KINDS = ("slice", "cross_set", "reference", "before", "study")
PROVIDERS = ("entity_unlearn.eval.catalog",)  # modules whose import registers metrics


@dataclass(frozen=True)
class Column:
    """One column of the study's table: the aggregate of this metric at (set, depth, attack)."""

    key: str
    header: str
    set: str
    depth: str
    attack: str


@dataclass(frozen=True)
class Metric:
    name: str
    kind: str
    compute: Callable
    directions: Mapping[str, bool | None]
    card: str
    version: str = "1"
    summary: bool = False
    columns: tuple[Column, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"metric {self.name!r}: kind {self.kind!r} is not one of {KINDS}")
        if "*" not in self.directions:
            raise ValueError(f"metric {self.name!r}: directions need a '*' entry (the direction on every other set)")

    def higher_is_better(self, set_: str) -> bool | None:
        """The direction of this metric's aggregate on ``set_``."""
        return self.directions.get(set_, self.directions["*"])

    def spec(self) -> dict:
        """What a result records about the metric."""
        return {"version": self.version, "kind": self.kind, "card": self.card, "directions": dict(sorted(self.directions.items()))}


METRICS: dict[str, Metric] = {}


def register(metric: Metric) -> Metric:
    if metric.name in METRICS:
        raise ValueError(f"metric {metric.name!r} is registered twice")
    METRICS[metric.name] = metric
    return metric


def load_all() -> dict[str, Metric]:
    """Import every registering module (idempotent); returns ``METRICS``."""
    for module in PROVIDERS:
        importlib.import_module(module)
    return METRICS


def get_metric(name: str) -> Metric:
    load_all()
    if name not in METRICS:
        close = difflib.get_close_matches(name, list(METRICS), n=1)
        raise UnknownNameError(f"unknown metric {name!r}" + (f"; did you mean {close[0]!r}?" if close else "") + f" Metrics: {sorted(METRICS)}")
    return METRICS[name]


def metrics_of(*kinds: str) -> list[Metric]:
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise ValueError(f"unknown metric kinds {unknown}; kinds are {KINDS}")
    return [m for m in load_all().values() if m.kind in kinds]
