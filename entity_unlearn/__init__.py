"""entity-unlearn: fictitious-entity worlds, graded probes and unlearning evaluation.

The import package maps the repository's top-level folders: ``builders/`` is
``entity_unlearn.builders``, ``eval/`` is ``entity_unlearn.eval``, ``prompts/``
and ``cards/`` hold the Jinja templates.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("entity-unlearn")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
