"""pyproject.toml declares exactly what the package imports: no undeclared import, no declared package left unused."""

from __future__ import annotations

import ast
import functools
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("entity_unlearn", "builders", "eval", "prompts", "cards")  # the folders that install as entity_unlearn
RUNTIME_EXTRAS = ("model", "llm", "gpu", "quant", "vllm")  # "test" holds the tools of the test suite, not of the package


def _dist(requirement: str) -> str:
    return re.sub(r"[-_.]+", "-", re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0]).lower()


def declared() -> dict[str, set[str]]:
    """{"core" | extra: normalised distribution names}."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    out = {"core": {_dist(r) for r in project["dependencies"]}}
    out.update({extra: {_dist(r) for r in project["optional-dependencies"][extra]} for extra in RUNTIME_EXTRAS})
    return out


def third_party_imports(folders=SOURCES) -> dict[str, set[Path]]:
    """Top-level module name -> the files importing it, for every non-stdlib absolute import."""
    found: dict[str, set[Path]] = {}
    for folder in folders:
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
                if isinstance(node, ast.ImportFrom) and node.level == 0:
                    names = [node.module]
                for name in names:
                    top = name.split(".")[0]
                    if top not in sys.stdlib_module_names and top != "entity_unlearn":
                        found.setdefault(top, set()).add(path.relative_to(ROOT))
    return found


@functools.cache
def _installed() -> dict[str, list[str]]:
    return packages_distributions()


def distributions_of(module: str) -> set[str]:
    """The installed distributions providing ``module``; for one not installed here (an optional extra such as
    vllm), the distribution of the same name."""
    return {_dist(d) for d in _installed().get(module, [])} or {_dist(module)}


def test_every_import_is_declared_and_every_declared_package_is_imported():
    deps = declared()
    everything = set().union(*deps.values())
    imports = third_party_imports()
    undeclared = {m: sorted(map(str, files)) for m, files in imports.items() if not distributions_of(m) & everything}
    assert not undeclared, f"imported but not in pyproject.toml: {undeclared}"
    used = set().union(*(distributions_of(m) for m in imports))
    unused = everything - used
    assert not unused, f"declared in pyproject.toml but imported nowhere in {SOURCES}: {sorted(unused)}"


def test_release_building_needs_only_the_core_dependencies():
    """generate, build and publish work from `pip install entity-unlearn` without extras (builders/llm needs [llm])."""
    core = declared()["core"]
    imports = third_party_imports(("builders",))
    outside_core = {m: sorted(str(f) for f in files if f.parts[1] != "llm") for m, files in imports.items() if not distributions_of(m) & core}
    assert not {m: f for m, f in outside_core.items() if f}, f"builders/ (outside builders/llm) imports packages outside the core: {outside_core}"
