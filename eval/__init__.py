"""Evaluation of a model on a release (see issue: evaluator). Nothing here yet."""

__all__: list[str] = []
