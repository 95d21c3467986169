"""Loading and rendering the Jinja templates in ``prompts/``.

Each template file holds named blocks; a block is one phrasing. Blocks render
on their own (``render``), with ``StrictUndefined`` so a missing variable is an
error, in a sandboxed environment because users add their own templates. The
shared macros of ``prompts/macros.j2`` are passed to every block as ``m``.
"""

from __future__ import annotations

import hashlib
import re
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import ChoiceLoader, FileSystemLoader, StrictUndefined, TemplateError, TemplateNotFound, TemplateSyntaxError
from jinja2.runtime import new_context
from jinja2.sandbox import SandboxedEnvironment

from entity_unlearn.errors import EntityUnlearnError
from entity_unlearn.prompts import TEMPLATE_DIR

from .language import FILTERS

_VARIANT = re.compile(r"^(?P<base>.+)__(?P<n>\d+)$")


class TemplateProblem(EntityUnlearnError, ValueError):
    """A template is missing, malformed or fails to render; the message names file and block."""


class Templates:
    def __init__(self, extra_dirs: tuple[Path, ...] = ()) -> None:
        loaders = [FileSystemLoader(str(d)) for d in extra_dirs] + [FileSystemLoader(str(TEMPLATE_DIR))]
        self.env = SandboxedEnvironment(loader=ChoiceLoader(loaders), undefined=StrictUndefined, autoescape=False)
        self.env.filters.update(FILTERS)
        self.macros = self.template("macros.j2").module
        self._cache: dict[str, Any] = {}
        self._variants: dict[tuple[str, str], list[str]] = {}

    def template(self, path: str):
        try:
            return self.env.get_template(path)
        except TemplateNotFound as exc:
            raise TemplateProblem(f"template {path} not found in {TEMPLATE_DIR} or the type's template folder") from exc
        except TemplateSyntaxError as exc:
            raise TemplateProblem(f"{exc.filename or path}:{exc.lineno}: template syntax error: {exc.message}") from exc

    def blocks(self, path: str) -> dict[str, Any]:
        if path not in self._cache:
            self._cache[path] = self.template(path)
        return self._cache[path].blocks

    def has(self, path: str, block: str) -> bool:
        return block in self.blocks(path)

    def variants(self, path: str, base: str) -> list[str]:
        """Block names ``<base>__1``, ``<base>__2``, ... in numeric order."""
        key = (path, base)
        if key not in self._variants:
            found = [(int(m["n"]), b) for b in self.blocks(path) if (m := _VARIANT.match(b)) and m["base"] == base]
            self._variants[key] = [b for _, b in sorted(found)]
        return self._variants[key]

    def render(self, path: str, block: str, collapse: bool = True, **variables: Any) -> str:
        """One block rendered on its own; whitespace collapsed to single spaces unless ``collapse`` is False."""
        blocks = self.blocks(path)
        if block not in blocks:
            raise TemplateProblem(f"{path}: no block {block!r}; add {{% block {block} %}}...{{% endblock %}}")
        tmpl = self._cache[path]
        variables["m"] = self.macros
        try:
            # a context without the template's other blocks: a block renders alone, and copying hundreds of
            # blocks into every context (as Template.new_context does) would dominate the time
            text = "".join(blocks[block](new_context(self.env, tmpl.name, {}, variables, False, tmpl.globals, None)))
        except TemplateError as exc:
            raise TemplateProblem(f"{path} block {block!r}: {exc}") from exc
        return " ".join(text.split()) if collapse else text

    def source_hash(self, path: str) -> str:
        source, _, _ = self.env.loader.get_source(self.env, path)  # type: ignore[union-attr]
        return hashlib.sha256(source.encode("utf-8")).hexdigest()


@cache
def builtin_templates() -> Templates:
    return Templates()
