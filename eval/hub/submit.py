"""``entity-unlearn submit``: write a scoring request into the queue (a Hub dataset repo).

Before anything is written, every name is resolved on the Hub: the model's revision
to its commit hash, the release's revision (its tag, e.g. ``v1.0.0``) to a commit,
and the forget set is looked up in the release's manifest. A model whose weights
are pickle-only or that needs its own code is refused unless the queue's
``policy.json`` allows it; so is a duplicate of a pending, running or finished
request (a failed one may be submitted again). A ``--reference-model`` that is not
in the queue yet is queued beside the submission with role ``reference``: the
scorer scores references first, so forget quality, privleak and surviving-entity
share can be computed for every submission that names it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from .repos import HubError, ModelRef, Queue, QueueConflict, check_weights, client, hub_failure, resolve_model, split_spec
from .requests import FORMAT, SAFE_REV, Request, RequestError, iso, parse_request, utc_now

DTYPES = ("auto", "float32", "bfloat16", "float16")


@dataclass(frozen=True)
class SubmitConfig:
    model: str
    queue: str
    release: str
    forget: str = "forget05"
    reference_model: str | None = None
    base: str | None = None
    method: str | None = None
    notes: str = ""
    dtype: str = "auto"
    chat_template: str = "auto"
    open_pr: bool = False
    token: str | None = None
    endpoint: str | None = None


@dataclass(frozen=True)
class ReleaseRef:
    repo: str
    revision: str  # the tag when the revision is one, else the commit: it names the run in paths
    commit: str
    forget_sets: tuple[str, ...]


def resolve_release(api, spec: str, forget: str) -> ReleaseRef:
    from huggingface_hub import hf_hub_download

    repo, rev = split_spec(spec, "--release", need_revision=True)
    try:
        commit = api.dataset_info(repo, revision=rev).sha
        tags = {t.name for t in api.list_repo_refs(repo, repo_type="dataset").tags}
        manifest = json.loads(Path(hf_hub_download(repo, "manifest.json", repo_type="dataset", revision=commit, endpoint=api.endpoint)).read_text())
    except ValueError as exc:
        raise HubError(f"--release {spec}: manifest.json is not valid JSON ({exc}); is this an entity-unlearn release?") from exc
    except Exception as exc:
        raise hub_failure(exc, "--release", repo, rev, "release dataset") from exc
    forget_sets = tuple(sorted(c for c in manifest.get("configs", {}) if c.startswith("forget") and c[6:].isdigit()))
    if forget not in forget_sets:
        raise HubError(f"--forget {forget}: release {repo}@{rev} has no such forget set; it has {', '.join(forget_sets) or 'none'}")
    named = rev if rev in tags and SAFE_REV.match(rev) else commit
    return ReleaseRef(repo, named, commit, forget_sets)


def _request(cfg: SubmitConfig, model: ModelRef, release: ReleaseRef, submitter: str, role: str, **extra) -> Request:
    return Request(
        model=model.repo,
        commit=model.commit,
        revision=model.revision,
        release=release.repo,
        release_revision=release.revision,
        release_commit=release.commit,
        forget=cfg.forget,
        submitter=submitter,
        submitted_at=iso(utc_now()),
        dtype=cfg.dtype,
        chat_template=cfg.chat_template,
        role=role,
        **extra,
    )


def submit(cfg: SubmitConfig) -> list[Request]:
    """Queue ``cfg.model`` (and its reference when new); returns the requests written."""
    if cfg.dtype not in DTYPES:
        raise HubError(f"--dtype {cfg.dtype}: choose one of {', '.join(DTYPES)}")
    if cfg.chat_template not in ("auto", "none"):
        raise HubError(f"--chat-template {cfg.chat_template}: a queued request takes auto (the tokenizer's) or none (plain)")
    api = client(cfg.token, cfg.endpoint)
    if not api.token:
        raise HubError("submit writes to the queue as you: set HF_TOKEN to a token with write access")
    try:
        submitter = api.whoami()["name"]
    except Exception as exc:
        raise HubError(f"HF_TOKEN: the Hub does not accept it ({exc.__class__.__name__}); create a new token") from exc
    queue = Queue(api, cfg.queue)
    snap = queue.snapshot()
    model = resolve_model(api, cfg.model, "--model")
    check_weights(api, model, snap.policy, "--model")
    release = resolve_release(api, cfg.release, cfg.forget)
    extra: dict = {"method": cfg.method, "notes": cfg.notes, "open_pr": cfg.open_pr}
    reference = base = None
    if cfg.reference_model:
        reference = resolve_model(api, cfg.reference_model, "--reference-model")
        check_weights(api, reference, snap.policy, "--reference-model")
        extra.update(reference_model=reference.repo, reference_commit=reference.commit)
    if cfg.base:
        base = resolve_model(api, cfg.base, "--base")
        extra.update(base_model=base.repo, base_commit=base.commit)
    wanted = [_request(cfg, model, release, submitter, "submission", **extra)]
    if reference is not None:
        wanted.append(_request(cfg, reference, release, submitter, "reference", notes=f"reference model of {model.repo}"))
    for attempt in range(3):
        existing = {p: _read(raw, p) for p, raw in snap.files.items() if p in {r.path for r in wanted}}
        new = []
        for req in wanted:
            old = existing.get(req.path)
            if old is not None and old.release != req.release:
                raise HubError(f"{req.path}: the queue already holds a request for {old.release}@{req.release_revision}; use another queue")
            if old is not None and old.status != "failed":
                if req.role == "submission":
                    raise HubError(
                        f"--model {req.model}@{req.commit[:12]}: already in the queue for {req.release}@{req.release_revision} {req.forget} "
                        f"(status {old.status}, {req.path}); a model commit is scored once per release and forget set"
                    )
                continue  # the reference is queued or scored already
            new.append(req)
        files = {r.path: r.to_json() for r in new}
        try:
            queue.write(files, f"Submit {model.repo}@{model.commit[:12]} ({release.revision} {cfg.forget})", snap.commit)
            return new
        except QueueConflict:
            if attempt == 2:
                raise HubError(f"--queue {cfg.queue}: the queue kept changing while submitting; try again") from None
            snap = queue.snapshot()
    return []


def _read(raw: bytes, path: str) -> Request | None:
    try:
        return parse_request(raw, path)
    except RequestError:
        return None  # an unreadable file is the scorer's to report; a new submission replaces it


__all__ = ["FORMAT", "SubmitConfig", "ReleaseRef", "resolve_release", "submit"]
