"""The audit's thresholds: ``thresholds.toml`` (one file, a comment per value) read into a frozen dataclass.

The TOML's sections group the values for a reader; the dataclass is flat (each key is unique).
An unknown or missing key is an error naming the file and the key.
"""

from __future__ import annotations

import difflib
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path

from .load import AuditError

THRESHOLDS_FILE = Path(__file__).with_name("thresholds.toml")


@dataclass(frozen=True)
class Thresholds:
    max_gain_overall: float
    max_gain_relation: float
    min_probes: int
    relation_false_alarm: float
    add_k: float
    prior_weight: float
    max_own_question_share: float
    min_d1_question_forms: int
    max_violations: int
    order_min_support: int
    order_max_share: float
    symmetric_min_share: float
    max_findings: int
    max_retain_rows_naming_forget: int
    max_world_rows_naming_forget: int
    max_holdout_texts_in_training: int


def load_thresholds(path: str | Path = THRESHOLDS_FILE) -> Thresholds:
    """The thresholds in ``path`` (default: the package's ``thresholds.toml``)."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise AuditError(f"{path}: cannot read thresholds ({exc})") from None
    names = [f.name for f in fields(Thresholds)]
    flat = {}
    for section, values in raw.items():
        if not isinstance(values, dict):
            raise AuditError(f"{path}: {section!r} must be a [section] of thresholds")
        for key, value in values.items():
            if key not in names:
                close = difflib.get_close_matches(key, names, n=1)
                raise AuditError(f"{path}: [{section}] {key!r} is not a threshold" + (f"; did you mean {close[0]!r}?" if close else ""))
            if not isinstance(value, int | float) or isinstance(value, bool):
                raise AuditError(f"{path}: [{section}] {key} = {value!r} must be a number")
            flat[key] = value
    missing = [n for n in names if n not in flat]
    if missing:
        raise AuditError(f"{path}: thresholds {missing} are missing")
    return Thresholds(**flat)
