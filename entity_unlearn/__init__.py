"""entity-unlearn: fictitious-entity worlds, graded probes and unlearning evaluation.

The import package maps the repository's top-level folders: ``builders/`` is
``entity_unlearn.builders``, ``eval/`` is ``entity_unlearn.eval``, ``prompts/``
and ``cards/`` hold the Jinja templates.
"""

__all__ = ["__version__"]


def __getattr__(name: str) -> str:
    # Looked up on first use: importlib.metadata costs more than the rest of ``entity-unlearn --help``.
    if name != "__version__":
        raise AttributeError(f"module 'entity_unlearn' has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        value = version("entity-unlearn")
    except PackageNotFoundError:  # running from a source tree that was never installed
        value = "0.0.0+unknown"
    globals()["__version__"] = value
    return value
