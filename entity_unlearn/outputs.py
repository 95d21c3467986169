"""Output folders that are never half written and never take a user's files.

``check_output(out, command, is_ours, force)`` refuses an ``--out`` that is a file,
or an existing folder holding anything that is not a previous output of the same
command (``is_ours``), unless ``force``. ``staged(out, stale)`` yields a fresh
temporary folder beside ``out``; when the block completes, every file written
there is moved into ``out`` (each replace is atomic; a new ``out`` is one rename)
and the ``stale`` files of the previous output that were not written again are
removed. If the block fails or is interrupted, the temporary folder is removed
and ``out`` is as it was. Files in ``out`` that are not ours are never touched.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from entity_unlearn.errors import EntityUnlearnError

PARTIAL = ".partial-"


class OutputError(EntityUnlearnError, ValueError):
    """An output folder cannot be written as asked; the message names it and what to do."""


def write_atomic(path: Path, data: str | bytes) -> None:
    """Write ``data`` (text as UTF-8, or bytes) to ``path`` whole or not at all: into a temporary file beside it whose
    name no other process or call uses, then renamed over it (creating the folder first). A reader never sees half a
    file, and concurrent writers of one path leave one whole version."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
    try:
        tmp.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)  # left only where writing or renaming failed


def check_output(out: str | Path, command: str, is_ours: Callable[[Path], bool], force: bool = False) -> Path:
    """``out`` as a Path once it is safe to write: absent, empty, a previous output of ``command``, or ``force``."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise OutputError(f"--out {out}: is a file; give a folder (it is created if needed)")
    ancestor = next(p for p in (out, *out.parents) if p.exists())  # checked before any work, not after it
    if not ancestor.is_dir():
        raise OutputError(f"--out {out}: {ancestor} is a file, so no folder can be made under it; give another --out")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise OutputError(f"--out {out}: {ancestor} is not writable by you; give a folder you may write in")
    if out.is_dir() and not force:
        entries = sorted(p.name for p in out.iterdir())
        if entries and not is_ours(out):
            shown = ", ".join(entries[:3]) + (", ..." if len(entries) > 3 else "")
            raise OutputError(
                f"--out {out}: the folder holds files that are not a previous output of `entity-unlearn {command}` ({shown}); "
                f"give a new or empty folder, or pass --force to write into it (only {command}'s own files are replaced)"
            )
    return out


@contextmanager
def staged(out: str | Path, stale: Iterable[str] = ()) -> Iterator[Path]:
    """A fresh folder beside ``out`` to write into; moved into ``out`` when the block completes (see the module docstring).

    ``stale``: paths relative to ``out`` of the previous output's own files, removed unless written again."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    _remove_abandoned(out)
    tmp = out.parent / f".{out.name}{PARTIAL}{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        yield tmp
        _commit(tmp, out, stale)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _commit(tmp: Path, out: Path, stale: Iterable[str]) -> None:
    if not out.exists():
        os.replace(tmp, out)
        return
    written = set()
    for path in sorted(p for p in tmp.rglob("*") if p.is_file()):
        rel = path.relative_to(tmp)
        dest = out / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(path, dest)
        written.add(rel.as_posix())
    for rel in sorted(set(stale) - written):
        old = out / rel
        if old.resolve().is_relative_to(out.resolve()) and old.is_file():
            old.unlink()
            _prune_empty(old.parent, out)


def _prune_empty(folder: Path, root: Path) -> None:
    """Remove ``folder`` and its parents up to ``root`` (excluded) while they are empty."""
    while folder != root and folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()
        folder = folder.parent


def _remove_abandoned(out: Path) -> None:
    """Temporary folders of ``out`` left by a process that no longer runs (killed before it could clean up)."""
    for tmp in out.parent.glob(f".{out.name}{PARTIAL}*"):
        pid = tmp.name[len(f".{out.name}{PARTIAL}") :].split("-")[0]
        if pid.isdigit() and not _running(int(pid)):
            shutil.rmtree(tmp, ignore_errors=True)


def _running(pid: int) -> bool:
    if os.name == "nt":  # os.kill(pid, 0) would end the process there: never assume it is gone
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True
