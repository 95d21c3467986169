"""A content-addressed on-disk cache of LLM answers, so interrupted runs resume and rebuilds cost nothing.

An entry's key is the SHA-256 of the canonical JSON (sorted keys, compact, UTF-8)
of the exact request sent: ``{model, messages, response_format, temperature}``.
The same request therefore always finds the same answer, whichever endpoint,
machine or run produced it. Each entry is one JSON file ``<dir>/<key[:2]>/<key>.json``
holding the answer's text, its token usage and how it was obtained (endpoint
host, HTTP retries by cause). Files are written to a temporary name and renamed
into place, so a crash never leaves a partial entry: an entry exists completely
or not at all.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from entity_unlearn.outputs import write_atomic

CACHE_FORMAT = "entity-unlearn-llm-cache/1"


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def request_key(request: dict[str, Any]) -> str:
    """SHA-256 hex digest of the canonical JSON of a chat-completions request body."""
    return hashlib.sha256(canonical_json(request).encode("utf-8")).hexdigest()


class LLMCache:
    """Entries under ``folder`` (created on first write); ``None`` disables caching."""

    def __init__(self, folder: str | Path | None) -> None:
        self.folder = Path(folder) if folder is not None else None

    def path(self, key: str) -> Path:
        assert self.folder is not None
        return self.folder / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        """The entry stored for ``key``, or None. An unreadable entry counts as absent (it is refetched)."""
        if self.folder is None:
            return None
        path = self.path(key)
        try:
            entry = json.loads(path.read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError, UnicodeDecodeError):
            return None
        if not isinstance(entry, dict) or entry.get("format") != CACHE_FORMAT or entry.get("key") != key:
            return None  # not an entry of ours (another format, a JSON array...): refetched and overwritten
        return entry

    def put(self, key: str, entry: dict[str, Any]) -> None:
        """Store ``entry`` for ``key`` atomically (temporary file, then ``os.replace``)."""
        if self.folder is None:
            return
        write_atomic(self.path(key), canonical_json({**entry, "format": CACHE_FORMAT, "key": key}) + "\n")

    def __len__(self) -> int:
        if self.folder is None or not self.folder.is_dir():
            return 0
        return sum(1 for _ in self.folder.glob("??/*.json"))
