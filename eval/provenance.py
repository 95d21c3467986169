"""Where a result came from: when, by which command, from which commit of this project, from which input files."""

from __future__ import annotations

import hashlib
import shlex
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]  # the checkout holding eval/ (an editable install), or site-packages


def now() -> str:
    """The current time in UTC, ISO 8601 to the second."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def command_line(argv: list[str] | None = None) -> str:
    """The command as a shell would take it: ``argv``, else this process's own."""
    return shlex.join(argv if argv is not None else [Path(sys.argv[0]).name, *sys.argv[1:]])


def project_commit(root: Path = PROJECT_ROOT) -> dict | None:
    """``{"commit", "dirty"}`` of the git checkout this code runs from; None outside a checkout (an installed wheel)."""
    if not (root / ".git").exists():
        return None
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, check=True).stdout.strip()
        status = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True, timeout=10, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": head, "dirty": bool(status.strip())}


def file_source(path: str | Path, data: bytes) -> dict:
    """Absolute path and SHA-256 of an input file whose bytes were ``data``."""
    return {"path": str(Path(path).resolve()), "sha256": hashlib.sha256(data).hexdigest()}
