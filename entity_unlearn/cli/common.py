"""What every command module shares: the usage error and quieting of library output."""

from __future__ import annotations


class UsageError(ValueError):
    """A command-line option is malformed; the message names it."""


def quiet_libraries() -> None:
    """--quiet also silences the progress bars of datasets and transformers (loading, caching, saving).
    A library not imported yet is told through its environment variable, so that --quiet imports nothing."""
    import os
    import sys

    if "datasets" in sys.modules:
        sys.modules["datasets"].disable_progress_bars()
    else:
        os.environ["HF_DATASETS_DISABLE_PROGRESS_BARS"] = "1"
    if "transformers" in sys.modules:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    else:
        os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"  # transformers reads it at import
