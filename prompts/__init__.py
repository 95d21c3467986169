"""Jinja templates of all wording: biographies, probes, attacks, LLM prompts."""

from pathlib import Path

TEMPLATE_DIR = Path(__file__).resolve().parent

__all__ = ["TEMPLATE_DIR"]
