"""Jinja templates of published prose: the dataset card, metric cards, reports."""

from pathlib import Path

CARD_DIR = Path(__file__).resolve().parent

__all__ = ["CARD_DIR"]
