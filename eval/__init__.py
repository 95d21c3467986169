"""Evaluation of any causal LM checkpoint on a release: plan, passes, metrics, report.

Importing this package does not import torch; the model adapter does, when used.
"""

from .data import DataError, load_items, open_release
from .formatting import FormatError, Formatter
from .metrics import METRICS, get_metric
from .model import CausalLM, ModelLoadError, TokenScores
from .passes import Item, Plan, RequestCache, plan, run_passes
from .run import EvalConfig, evaluate, read_result

__all__ = [
    "DataError",
    "load_items",
    "open_release",
    "FormatError",
    "Formatter",
    "METRICS",
    "get_metric",
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
    "read_result",
]
