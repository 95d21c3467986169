"""What every command module shares: the usage error and quieting of library output."""

from __future__ import annotations


class UsageError(ValueError):
    """A command-line option is malformed; the message names it."""


def quiet_libraries() -> None:
    """--quiet also silences the progress bars of datasets and transformers (loading, caching, saving)."""
    import datasets

    datasets.disable_progress_bars()
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:  # installed without the [model] extra
        return
    hf_logging.disable_progress_bar()
