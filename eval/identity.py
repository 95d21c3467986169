"""A model's identity: the folder its files load from, the Hub commit they came from, their SHA-256.

``resolve_model("ORG/NAME", revision)`` fetches a Hub model's files into the Hugging Face cache
(``snapshot_download``; offline, from the cache alone) and returns the snapshot folder, whose name is
the resolved commit; a local folder is used as it is, with no commit. Every file the model loads
from (weights, configs, tokenizer, chat template) is hashed once: ``files_sha256`` keeps the digests
in ``<cache>/file-sha256.json`` keyed by absolute path, size and modification time, so a second
evaluation of the same files reads them back instead of hashing gigabytes again. The cache folder is
``$ENTITY_UNLEARN_CACHE``, else ``~/.cache/entity-unlearn``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from entity_unlearn.outputs import write_atomic

from .model import ModelLoadError, looks_like_hub_id

HASHED = (".safetensors", ".json", ".bin", ".model", ".jinja", ".txt", ".py", ".tiktoken")
COMMIT = re.compile(r"^[0-9a-f]{40}$")
_MEMO: dict[tuple[str, int, int], str] = {}


class ModelIdentityError(ModelLoadError):
    """The model cannot be found or resolved; the message names --model and what to do."""


@dataclass(frozen=True)
class ModelIdentity:
    path: str  # as given: a folder or a Hub id
    revision: str | None  # as asked (branch, tag or commit), None for the default branch or a folder
    commit: str | None  # the Hub commit the files came from; None for a local folder
    local_dir: str  # the folder the files are loaded from
    files_sha256: dict[str, str]

    def spec(self) -> dict:
        return {"path": self.path, "revision": self.revision, "commit": self.commit, "files_sha256": self.files_sha256}


def split_model_arg(model: str) -> tuple[str, str | None]:
    """``ORG/NAME@REVISION`` -> (``ORG/NAME``, ``REVISION``); an existing folder is never split."""
    if Path(model).exists() or "@" not in model:
        return model, None
    path, _, revision = model.rpartition("@")
    return path, revision or None


def cache_dir() -> Path:
    return Path(os.environ.get("ENTITY_UNLEARN_CACHE") or Path.home() / ".cache" / "entity-unlearn")


def _disk_cache() -> tuple[Path, dict]:
    path = cache_dir() / "file-sha256.json"
    try:
        return path, json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return path, {}


def files_sha256(paths: list[Path]) -> list[str]:
    """SHA-256 of each file, computed once per (absolute path, size, mtime) and remembered in memory and on disk.

    The disk cache is read once per call and written once when something was hashed; entries of files that no longer
    exist are dropped then (evaluated copies, test folders), so it holds about what is on disk."""
    keys = []
    for path in paths:
        real = Path(path).resolve()
        st = real.stat()
        keys.append((str(real), st.st_size, st.st_mtime_ns))
    if all(k in _MEMO for k in keys):
        return [_MEMO[k] for k in keys]
    cache_path, disk = _disk_cache()
    hashed = {}
    for key in keys:
        if key in _MEMO:
            continue
        entry = disk.get(key[0])
        if entry and entry.get("size") == key[1] and entry.get("mtime_ns") == key[2]:
            _MEMO[key] = entry["sha256"]
            continue
        digest = hashlib.sha256()
        with open(key[0], "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        _MEMO[key] = hashed[key[0]] = digest.hexdigest()
    if hashed:
        _, disk = _disk_cache()  # another process may have written meanwhile
        disk = {path: entry for path, entry in disk.items() if os.path.exists(path)}
        disk.update({key[0]: {"size": key[1], "mtime_ns": key[2], "sha256": _MEMO[key]} for key in keys if key[0] in hashed})
        try:
            write_atomic(cache_path, json.dumps(disk, sort_keys=True))
        except OSError:
            pass  # a read-only home: the digests are still right, only not remembered
    return [_MEMO[k] for k in keys]


def file_hashes(folder: str | Path) -> dict[str, str]:
    """File name -> SHA-256 of every file a model loads from in ``folder`` (weights, configs, tokenizer, template)."""
    folder = Path(folder)
    if not folder.is_dir():
        return {}
    files = [p for p in sorted(folder.iterdir()) if p.is_file() and p.suffix in HASHED]
    return dict(zip((p.name for p in files), files_sha256(files)))


def resolve_model(model: str, revision: str | None = None, allow_pickle: bool = False, trust_remote_code: bool = False) -> ModelIdentity:
    """The identity of ``model`` (a folder or ``ORG/NAME[@REVISION]``); a Hub model's files are fetched into the HF cache."""
    path, inline = split_model_arg(model)
    if inline and revision and inline != revision:
        raise ModelIdentityError(f"--model {model}: names revision {inline!r} but --revision is {revision!r}; give one")
    revision = revision or inline
    folder = Path(path)
    if folder.exists():
        if revision:
            raise ModelIdentityError(f"--model {model}: a local folder has no revisions; drop @{revision} (or --revision)")
        return ModelIdentity(path, None, None, str(folder), file_hashes(folder))
    if not looks_like_hub_id(path):
        raise ModelIdentityError(f"--model {path}: no such folder; give the folder a model was saved to (save_pretrained) or a Hub id ORG/NAME")
    from huggingface_hub import snapshot_download

    patterns = ["*.json", "*.safetensors", "*.model", "*.jinja", "*.txt", "*.tiktoken"]
    patterns += ["*.bin", "*.pt", "*.pth"] if allow_pickle else []
    patterns += ["*.py"] if trust_remote_code else []
    try:
        local = snapshot_download(path, revision=revision, allow_patterns=patterns)
    except Exception as exc:  # the hub client raises many kinds (not found, offline, gated); all mean the same to the user
        offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")
        hint = (
            f"HF_HUB_OFFLINE is set and it is not in the local Hugging Face cache; download it first (`hf download {path}`) or unset HF_HUB_OFFLINE"
            if offline
            else "check the id and revision, and HF_TOKEN for a gated or private model"
        )
        raise ModelIdentityError(
            f"--model {model}: not a local folder and cannot be fetched from the Hub ({exc.__class__.__name__}); {hint}"
        ) from exc
    commit = Path(local).name if COMMIT.match(Path(local).name) else None
    return ModelIdentity(path, revision, commit, local, file_hashes(local))
