"""Evaluating the bound and constraint expressions of a type specification."""

from __future__ import annotations

import operator
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .spec import Constraint, Expr

_OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge, "==": operator.eq, "!=": operator.ne}


def year_of(value: Any) -> int | None:
    """The year a scalar value stands for: an ISO date's year, an int itself, None for none."""
    if value is None:
        return None
    if isinstance(value, str):
        return int(value[:4]) if value[:1] == "-" or value[:4].isdigit() else None
    return int(value)


def eval_expr(expr: Expr, me: Mapping[str, Any], target: Mapping[str, Any] | None = None, year: int | None = None) -> Any:
    """The value of ``expr``; None when it names a value that is absent (an optional attribute).

    A date stands for its year; a text value (a choice, a name) is itself, for ``==`` and ``!=``.
    """
    if expr.ref is None:
        return expr.offset
    if expr.ref == "year":
        base = year
    else:
        side, _, attr = expr.ref.partition(".")
        source = me if side == "self" else (target or {})
        raw = source.get(attr)
        if isinstance(raw, str) and not (raw[:4].isdigit() or raw[:1] == "-"):
            return raw
        base = year_of(raw)
    return None if base is None else base + expr.offset


def year_range(mins: tuple[Expr, ...], maxs: tuple[Expr, ...], me: Mapping[str, Any], target: Mapping[str, Any] | None = None) -> tuple[int, int]:
    """[lo, hi] from the largest lower bound and the smallest upper bound that are present."""
    lows = [v for v in (eval_expr(e, me, target) for e in mins) if v is not None]
    highs = [v for v in (eval_expr(e, me, target) for e in maxs) if v is not None]
    return (max(lows) if lows else -(10**9), min(highs) if highs else 10**9)


def holds(c: Constraint, me: Mapping[str, Any], target: Mapping[str, Any] | None = None, year: int | None = None) -> bool:
    """True when the constraint holds or names an absent value."""
    left, right = eval_expr(c.left, me, target, year), eval_expr(c.right, me, target, year)
    return left is None or right is None or _OPS[c.op](left, right)
