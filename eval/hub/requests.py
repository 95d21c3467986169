"""The scoring request: one JSON file per request in the queue (a Hub dataset repo).

A request names a model by its resolved commit (never a branch), the release
revision and forget set it is scored on, and who submitted it. The scorer moves
it ``pending -> running -> finished | failed``; ``running`` carries a lease
(holder id and expiry) so that a crashed scorer's request is taken up again
after the lease expires. The file format is ``request.schema.json`` beside this
module (JSON Schema, draft 2020-12); every read is checked against it.

Queue repo layout::

    policy.json                                              optional: {"allow_pickle": false, "allow_remote_code": false}
    requests/<org>/<name>/<commit>_<release-rev>_<forget>.json

A queue file that is not valid JSON or not a valid request is rewritten by the
scorer as ``{"format", "status": "failed", "error", "raw"}`` (the original text in
``raw``), so it gets one clear status and the queue goes on.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

from entity_unlearn.errors import EntityUnlearnError

FORMAT = "entity-unlearn-request/1"
STATUSES = ("pending", "running", "finished", "failed")
ROLES = ("submission", "reference")
QUEUE_DIR = "requests"
POLICY_FILE = "policy.json"
SAFE_REV = re.compile(r"^[A-Za-z0-9._-]+$")


class RequestError(EntityUnlearnError, ValueError):
    """A request (or a queue file) is malformed; the message names the file and the field."""


def utc_now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def iso(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


@dataclass(frozen=True)
class Lease:
    """Who is scoring a running request, and until when the claim holds."""

    holder: str
    expires: str

    def expired(self, now: datetime) -> bool:
        return parse_time(self.expires) <= now


@dataclass(frozen=True)
class Policy:
    """What the queue accepts (``policy.json`` at the queue repo's root; absent: nothing unsafe)."""

    allow_pickle: bool = False
    allow_remote_code: bool = False

    @classmethod
    def parse(cls, raw: bytes | None, where: str) -> Policy:
        if raw is None:
            return cls()
        try:
            data = json.loads(raw)
        except ValueError as exc:
            raise RequestError(f'{where}: not valid JSON ({exc}); write e.g. {{"allow_pickle": false, "allow_remote_code": false}}') from exc
        unknown = sorted(set(data) - {"allow_pickle", "allow_remote_code"}) if isinstance(data, dict) else ["<not an object>"]
        if unknown or not all(isinstance(v, bool) for v in data.values()):
            raise RequestError(f"{where}: only the boolean keys allow_pickle and allow_remote_code are understood (found {unknown or data})")
        return cls(**data)


@dataclass(frozen=True)
class Request:
    model: str
    commit: str
    revision: str
    release: str
    release_revision: str
    release_commit: str
    forget: str
    submitter: str
    submitted_at: str
    dtype: str = "auto"
    chat_template: str = "auto"
    reference_model: str | None = None
    reference_commit: str | None = None
    base_model: str | None = None
    base_commit: str | None = None
    method: str | None = None
    notes: str = ""
    role: str = "submission"
    open_pr: bool = False
    status: str = "pending"
    lease: Lease | None = None
    attempts: int = 0
    started_at: str | None = None
    finished_at: str | None = None
    error: str | None = None
    warnings: tuple[str, ...] = field(default_factory=tuple)
    results_path: str | None = None
    pr_url: str | None = None
    format: str = FORMAT

    @property
    def run_key(self) -> str:
        """``<release-rev>_<forget>``: one model commit may be scored on several releases and forget sets."""
        return f"{self.release_revision}_{self.forget}"

    @property
    def path(self) -> str:
        """Where the request lives in the queue repo."""
        return f"{QUEUE_DIR}/{self.model}/{self.commit}_{self.run_key}.json"

    @property
    def results_prefix(self) -> str:
        """Where its results live in the results repo."""
        return f"{self.model}/{self.commit}/{self.run_key}"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["warnings"] = list(self.warnings)
        return data

    def to_json(self) -> bytes:
        return (json.dumps(self.to_dict(), indent=1, sort_keys=True) + "\n").encode()

    def evolve(self, **changes: Any) -> Request:
        return replace(self, **changes)


@cache
def schema() -> dict[str, Any]:
    return json.loads((Path(__file__).parent / "request.schema.json").read_text(encoding="utf-8"))


def validate(data: Any, where: str) -> None:
    """RequestError naming the file and the first offending field, if ``data`` breaks the schema."""
    from jsonschema import Draft202012Validator

    errors = sorted(Draft202012Validator(schema()).iter_errors(data), key=lambda e: list(e.absolute_path))
    if errors:
        e = errors[0]
        field_name = ".".join(str(p) for p in e.absolute_path) or "(the record)"
        more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
        raise RequestError(f"{where}: field {field_name}: {e.message}{more}; resubmit it with `entity-unlearn submit`")


def parse_request(raw: bytes, where: str) -> Request:
    """The request in ``raw`` (a queue file's bytes); RequestError naming ``where`` when it is not one."""
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise RequestError(f"{where}: not valid JSON ({exc}); resubmit it with `entity-unlearn submit`") from exc
    validate(data, where)
    lease = Lease(**data["lease"]) if data.get("lease") else None
    return Request(**{**data, "lease": lease, "warnings": tuple(data.get("warnings", ()))})


def is_reported_broken(raw: bytes) -> bool:
    """A queue file the scorer already rewrote as a failure record (see the module docstring)."""
    try:
        data = json.loads(raw)
    except ValueError:
        return False
    return isinstance(data, dict) and data.get("status") == "failed" and "raw" in data and "model" not in data


def broken_record(error: str, raw: bytes) -> bytes:
    """The failure record that replaces an unreadable queue file, keeping its text."""
    record = {"format": FORMAT, "status": "failed", "error": error, "raw": raw.decode("utf-8", "replace"), "finished_at": iso(utc_now())}
    return (json.dumps(record, indent=1, sort_keys=True) + "\n").encode()


def lease_until(holder: str, now: datetime, seconds: float) -> Lease:
    return Lease(holder=holder, expires=iso(now + timedelta(seconds=seconds)))
