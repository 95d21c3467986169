"""Evaluation of any causal LM checkpoint on a release: plan, passes, metrics, report.

Importing this package does not import torch; the model adapter does, when used.
"""

from . import catalog  # noqa: F401  (registers every metric)
from .data import DataError, load_items, open_release
from .formatting import FormatError, Formatter
from .model import CausalLM, ModelLoadError, TokenScores
from .passes import Item, Plan, RequestCache, plan, run_passes
from .registry import METRICS, Column, Metric, get_metric, metrics_of, register
from .result_file import RESULT_FORMAT, load_result, read_result
from .run import EvalConfig, evaluate

__all__ = [
    "DataError",
    "load_items",
    "open_release",
    "FormatError",
    "Formatter",
    "METRICS",
    "Column",
    "Metric",
    "get_metric",
    "metrics_of",
    "register",
    "CausalLM",
    "ModelLoadError",
    "TokenScores",
    "Item",
    "Plan",
    "RequestCache",
    "plan",
    "run_passes",
    "EvalConfig",
    "evaluate",
    "RESULT_FORMAT",
    "load_result",
    "read_result",
]
