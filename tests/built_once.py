"""Costly test inputs (a release, trained tiny models) built once per test run, not once per process.

pytest-xdist gives each worker process its own temp folder under one shared parent; a session fixture is built
once per process, so modules in different xdist groups that need the same trained model would each train it.
``build_once`` builds each named thing in a folder under the shared parent instead, behind a file lock: the first
process to ask builds it, the others wait for it and read it. A process asking for several things builds those
that no other process is building before it waits, so two processes asking for the same models train them side
by side. Everything built here is deterministic (fixed seeds, float32 on CPU), so which process builds a thing
does not change it.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

from filelock import FileLock, Timeout


def shared_root(tmp_path_factory) -> Path:
    """The temp folder every process of this run sees (the run's own one without pytest-xdist)."""
    base = tmp_path_factory.getbasetemp()
    root = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "built-once"
    root.mkdir(exist_ok=True)
    return root


def _build(folder: Path, build: Callable[[Path], object]) -> None:
    """Build into ``<folder>.partial`` and rename it: a folder that exists is complete."""
    if folder.is_dir():
        return
    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)  # left by a process that failed
    build(partial)
    os.replace(partial, folder)


def build_once(root: Path, builds: dict[str, Callable[[Path], object]]) -> dict[str, Path]:
    """The folder of each of ``builds`` under ``root``, built by ``builds[name](folder)`` once in this run.

    While one is missing, build a missing one that no other process is building; wait only when another process
    builds every missing one.
    """
    folders = {name: root / name for name in builds}
    locks = {name: FileLock(str(folder) + ".lock") for name, folder in folders.items()}
    while missing := [name for name in builds if not folders[name].is_dir()]:
        for name in missing:
            try:
                locks[name].acquire(timeout=0)
            except Timeout:
                continue  # another process builds it
            try:
                _build(folders[name], builds[name])
            finally:
                locks[name].release()
            break
        else:
            with locks[missing[0]]:  # another process builds each missing one: wait for the first
                _build(folders[missing[0]], builds[missing[0]])
    return folders
