"""The tokenised plan kept on disk, so every evaluation of the same items with the same tokenizer reuses it.

A plan depends only on the items (their ids, questions, candidate answers and format)
and on the formatter (the tokenizer's full serialised state, the chat template and the
special tokens: ``Formatter.fingerprint``). Both are hashed into the file name, so a
changed release, forget choice, selection rule or tokenizer simply misses. Files are
JSON, written aside and renamed (a crash never leaves half a plan). A tokenizer that
cannot serialise itself has no fingerprint and is never cached.

The folder: ``--plan-cache DIR``, else ``$ENTITY_UNLEARN_CACHE/plans``, else
``$XDG_CACHE_HOME/entity-unlearn/plans`` (``~/.cache/entity-unlearn/plans``);
``--plan-cache none`` turns it off. The folder keeps the most recently used plans up to ``PLAN_CACHE_BYTES``
(1 GiB): a plan read is touched, and writing one removes the least recently used beyond the bound.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Sequence
from pathlib import Path

from entity_unlearn.outputs import write_atomic

from .formatting import Formatter
from .passes import Item, Plan, plan

PLAN_FORMAT = "entity-unlearn-plan/1"
# The plans kept: the most recently used, up to this many bytes in all (a plan of the default release is about
# 16 MB; a scorer meets a new tokenizer with many submissions, and each would otherwise stay for good).
PLAN_CACHE_BYTES = 1 << 30


def plan_folder(option: str | None) -> Path | None:
    """Where plans live for a ``--plan-cache`` value (None: the default place; "none": no cache)."""
    if option is not None:
        return None if option.lower() in ("none", "off", "") else Path(option)
    root = os.environ.get("ENTITY_UNLEARN_CACHE") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "entity-unlearn"
    return Path(root) / "plans"


def plan_key(items: Sequence[Item], formatter: Formatter) -> str | None:
    fingerprint = formatter.fingerprint()
    if fingerprint is None:
        return None
    h = hashlib.sha256(f"{PLAN_FORMAT}\n{fingerprint}\n".encode())
    for item in items:
        # everything the contexts are built from: a prompt attack changes history or prefill, not the question
        h.update(json.dumps([item.item_id, item.fmt, item.question, item.candidates(), item.history, item.prefill]).encode("utf-8"))
    return h.hexdigest()


def cached_plan(items: Sequence[Item], formatter: Formatter, folder: Path | None) -> tuple[Plan, bool]:
    """The plan of ``items`` (read from ``folder`` when there, else built and stored); and whether it was read."""
    key = plan_key(items, formatter) if folder is not None else None
    path = folder / f"{key}.json" if folder is not None and key is not None else None
    if path is not None and path.is_file():
        try:
            read = _read(path)
        except (ValueError, KeyError, TypeError, OSError):
            pass  # unreadable: rebuilt and overwritten
        else:
            try:
                os.utime(path)  # used now: the last to leave
            except OSError:
                pass  # a read-only cache: it is not written either
            return read, True
    p = plan(items, formatter)
    if path is not None:
        _write(path, p)
        _evict(path)
    return p, False


def _evict(kept: Path) -> None:
    """Remove the least recently used plans beside ``kept`` (just written) beyond ``PLAN_CACHE_BYTES`` in all."""
    plans = []
    for f in kept.parent.glob("*.json"):
        try:
            st = f.stat()
        except OSError:
            continue  # removed meanwhile by another process
        plans.append((f != kept, -st.st_mtime_ns, st.st_size, f))
    total = 0
    for _, _, size, f in sorted(plans):  # the new plan first, then the most recently used
        total += size
        if total > PLAN_CACHE_BYTES and f != kept:
            f.unlink(missing_ok=True)


def _read(path: Path) -> Plan:
    raw = json.loads(path.read_text(encoding="utf-8"))
    if raw.get("format") != PLAN_FORMAT:
        raise ValueError("another plan format")
    return Plan(
        contexts={k: tuple(v) for k, v in raw["contexts"].items()},
        continuations={k: {c: tuple(ids) for c, ids in conts.items()} for k, conts in raw["continuations"].items()},
        item_keys={k: (v[0], list(v[1])) for k, v in raw["item_keys"].items()},
        requested=int(raw["requested"]),
        texts=raw["texts"],
        prompts={k: (v[0], v[1]) for k, v in raw["prompts"].items()},
    )


def _write(path: Path, p: Plan) -> None:
    data = {
        "format": PLAN_FORMAT,
        "contexts": p.contexts,
        "continuations": p.continuations,
        "item_keys": p.item_keys,
        "requested": p.requested,
        "texts": p.texts,
        "prompts": p.prompts,
    }
    try:
        write_atomic(path, json.dumps(data, separators=(",", ":")))
    except OSError as exc:  # a read-only or full disk costs the next run its planning time, nothing else
        warnings.warn(f"plan cache {path.parent}: cannot write ({exc}); the next evaluation will tokenise again", stacklevel=2)
