"""``entity-unlearn score-queue``: the scorer that works through the queue.

Order: a request this scorer itself was running when it stopped (it resumes from
the evaluator's request cache in ``--work``), then references, then models that
are the base of another request, then the rest; oldest submission first in each.
Claiming writes ``running`` with a lease (holder id, expiry) in a commit on top of
the queue commit that was read, so two scorers never claim the same request; a
request whose lease expired (its scorer crashed) is taken again. Scoring = the
model downloaded at its commit (safetensors, config and tokenizer only, unless the
queue's policy allows pickle weights or remote code), ``entity_unlearn.eval``'s
``evaluate`` with the reference's (and the base's) finished result from the
results repo, the Hub eval-results files, one upload to
``<org>/<name>/<commit>/<release-rev>_<forget>/`` and ``finished``. Any error
marks that request ``failed`` with the error's first line and the queue goes on.
A result already in the results repo (the scorer stopped after uploading) is
never computed again: the request is marked ``finished`` from it.
"""

from __future__ import annotations

import json
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .repos import (
    PICKLE_SUFFIXES,
    SAFE_PATTERNS,
    HubError,
    Queue,
    QueueConflict,
    ResultsRepo,
    Snapshot,
    check_weights,
    client,
    endpoint_of,
    resolve_model,
)
from .requests import Request, RequestError, broken_record, is_reported_broken, iso, lease_until, parse_request, utc_now


@dataclass(frozen=True)
class ScorerConfig:
    queue: str
    results: str
    work: str = "scorer-work"
    poll: float | None = None  # None: score what is pending, then return
    lease_seconds: float = 6 * 3600
    limit: int | None = None
    device: str | None = None
    max_new_tokens: int = 48  # the evaluator's default; every run of one leaderboard should share it (recorded in each spec)
    batch_groups: int = 16
    batch_generate: int = 32
    progress: bool = True
    open_prs: bool = True
    token: str | None = None
    endpoint: str | None = None


@dataclass(frozen=True)
class Outcome:
    path: str
    status: str
    error: str | None = None


def holder_id(work: Path) -> str:
    """This scorer's lease holder id, kept in ``work`` so a restarted scorer recognises its own leases."""
    work.mkdir(parents=True, exist_ok=True)
    path = work / "scorer-id"
    if not path.is_file():
        path.write_text(f"{socket.gethostname()}-{uuid.uuid4().hex[:12]}\n", encoding="utf-8")
    return path.read_text(encoding="utf-8").strip()


def _key(model: str | None, commit: str | None, run_key: str) -> tuple:
    return (model, commit, run_key)


def next_request(requests: list[Request], holder: str, now) -> Request | None:
    """The request to score next, or None (see the module docstring for the order)."""
    by_key = {_key(r.model, r.commit, r.run_key): r for r in requests}

    def ours(r: Request) -> bool:
        return r.status == "running" and r.lease is not None and r.lease.holder == holder

    def runnable(r: Request) -> bool:
        return r.status == "pending" or ours(r) or (r.status == "running" and (r.lease is None or r.lease.expired(now)))

    def blocked(r: Request) -> bool:  # its reference or base is being scored by another scorer right now
        deps = [_key(r.reference_model, r.reference_commit, r.run_key), _key(r.base_model, r.base_commit, r.run_key)]
        return any(d in by_key and by_key[d] is not r and by_key[d].status == "running" and not runnable(by_key[d]) for d in deps)

    references = {_key(r.reference_model, r.reference_commit, r.run_key) for r in requests if r.reference_model}
    bases = {_key(r.base_model, r.base_commit, r.run_key) for r in requests if r.base_model}

    def rank(r: Request) -> tuple:
        k = _key(r.model, r.commit, r.run_key)
        tier = 0 if r.role == "reference" or k in references else 1 if k in bases else 2
        return (not ours(r), tier, r.submitted_at, r.path)

    for r in sorted((r for r in requests if runnable(r)), key=rank):
        if not blocked(r):
            return r
    return None


def first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    known = (HubError, RequestError) + _eval_errors()
    head = text[0] if text else ""
    return head if isinstance(exc, known) and head else f"{exc.__class__.__name__}: {head}".rstrip(": ")


def _eval_errors() -> tuple[type, ...]:
    from entity_unlearn.eval import DataError, FormatError, ModelLoadError

    return (DataError, FormatError, ModelLoadError)


class Scorer:
    def __init__(self, cfg: ScorerConfig, log: Callable[[str], None] = print) -> None:
        self.cfg, self.log = cfg, log
        self.api = client(cfg.token, cfg.endpoint)
        self.queue = Queue(self.api, cfg.queue)
        self.results = ResultsRepo(self.api, cfg.results)
        self.work = Path(cfg.work)
        self.holder = holder_id(self.work)
        self.memo: dict = {}  # requests on one release share its items (and a tokenizer's plan): evaluate's memo

    # -- the loop ------------------------------------------------------------------------
    def run(self) -> list[Outcome]:
        self.queue.create()
        self.results.create()
        done: list[Outcome] = []
        while self.cfg.limit is None or len(done) < self.cfg.limit:
            snap = self.queue.snapshot()
            requests, broken = self._read(snap)
            if broken:
                try:
                    self.queue.write(broken, f"Mark {len(broken)} unreadable request file(s) failed", snap.commit)
                    done += [Outcome(p, "failed", json.loads(raw)["error"]) for p, raw in broken.items()]
                    for p, raw in broken.items():
                        self.log(f"failed   {p}: {json.loads(raw)['error']}")
                except QueueConflict:
                    pass
                continue
            pick = next_request(requests, self.holder, utc_now())
            if pick is None:
                if self.cfg.poll is None:
                    break
                time.sleep(self.cfg.poll)
                continue
            try:
                claimed = self._claim(snap, pick)
            except QueueConflict:
                continue  # someone else wrote the queue first: read it again
            done.append(self._score(claimed, snap))
        return done

    def _read(self, snap: Snapshot) -> tuple[list[Request], dict[str, bytes]]:
        requests, broken = [], {}
        for path, raw in snap.files.items():
            if is_reported_broken(raw):
                continue
            try:
                req = parse_request(raw, path)
                if req.path != path:
                    raise RequestError(f"{path}: the record belongs at {req.path} (model, commit, release revision and forget set name the file)")
                requests.append(req)
            except RequestError as exc:
                broken[path] = broken_record(str(exc), raw)
        return requests, broken

    def _claim(self, snap: Snapshot, req: Request) -> Request:
        now = utc_now()
        resumed = req.status == "running"
        claimed = req.evolve(
            status="running", lease=lease_until(self.holder, now, self.cfg.lease_seconds), attempts=req.attempts + 1, started_at=iso(now), error=None
        )
        self.queue.write({req.path: claimed.to_json()}, f"Score {req.model}@{req.commit[:12]} ({req.run_key}): running", snap.commit)
        self.log(f"{'resumed ' if resumed else 'running '} {req.path}")
        return claimed

    def _update(self, path: str, change: Callable[[Request], Request], message: str) -> Request | None:
        """Apply ``change`` to the current record while it is still ours (re-read on every conflict)."""
        while True:
            snap = self.queue.snapshot()
            raw = snap.files.get(path)
            current = parse_request(raw, path) if raw is not None and not is_reported_broken(raw) else None
            if current is None or current.status != "running" or current.lease is None or current.lease.holder != self.holder:
                self.log(f"warning: {path} is no longer leased to this scorer; leaving it as it is")
                return None
            new = change(current)
            try:
                self.queue.write({path: new.to_json()}, message, snap.commit)
                return new
            except QueueConflict:
                continue

    # -- one request ---------------------------------------------------------------------
    def _score(self, req: Request, snap: Snapshot) -> Outcome:
        start = time.perf_counter()
        try:
            final = self._evaluate(req, snap)
        except KeyboardInterrupt:
            self.log(f"stopped: {req.path} stays leased to this scorer until {req.lease.expires}; rerun with the same --work to resume it")
            raise
        except Exception as exc:
            error = first_line(exc)
            self._update(
                req.path, lambda cur: cur.evolve(status="failed", error=error, lease=None, finished_at=iso(utc_now())), f"Score {req.model}: failed"
            )
            self.log(f"failed   {req.path}: {error}")
            return Outcome(req.path, "failed", error)
        self._update(req.path, lambda cur: final.evolve(attempts=cur.attempts), f"Score {req.model}@{req.commit[:12]} ({req.run_key}): finished")
        self.log(f"finished {req.path} -> {self.cfg.results}/{final.results_path} ({time.perf_counter() - start:.1f} s)")
        return Outcome(req.path, "finished")

    def _evaluate(self, req: Request, snap: Snapshot) -> Request:
        from entity_unlearn.eval import EvalConfig, evaluate

        from .eval_results import open_pull_request, write_hub_files

        prefix = req.results_prefix
        if self.results.has(prefix):  # uploaded before this scorer stopped: never computed twice
            done = self.results.download(prefix, self.work / "uploaded", ("request.json",)) / "request.json"
            earlier = parse_request(done.read_bytes(), f"{self.cfg.results}/{prefix}/request.json") if done.is_file() else None
            return (earlier or req).evolve(status="finished", lease=None, results_path=prefix, error=None)
        policy = snap.policy
        model = resolve_model(self.api, f"{req.model}@{req.commit}", "model")
        check_weights(self.api, model, policy, "model")
        model_dir = self._download_model(req, policy)
        warnings = list(req.warnings)
        reference = self._finished_result(req.reference_model, req.reference_commit, req, "reference", warnings)
        before = self._finished_result(req.base_model, req.base_commit, req, "base", warnings)
        out = self.work / "runs" / prefix
        result = evaluate(
            EvalConfig(
                model=str(model_dir),
                data=f"{req.release}@{req.release_commit}",
                forget=req.forget,
                out=str(out),
                reference=str(reference) if reference else None,
                before=str(before) if before else None,
                chat_template=req.chat_template,
                device=self.cfg.device,
                dtype=None if req.dtype == "auto" else req.dtype,
                allow_pickle=policy.allow_pickle,
                trust_remote_code=policy.allow_remote_code,
                max_new_tokens=self.cfg.max_new_tokens,
                batch_groups=self.cfg.batch_groups,
                batch_generate=self.cfg.batch_generate,
                progress=self.cfg.progress,
            ),
            self.memo,
        )
        final = req.evolve(status="finished", lease=None, finished_at=iso(utc_now()), results_path=prefix, error=None, warnings=tuple(warnings))
        source_url = f"{endpoint_of(self.api)}/datasets/{self.cfg.results}/tree/main/{prefix}"
        write_hub_files(out, result, final, source_url)
        if req.open_pr and self.cfg.open_prs:
            try:
                final = final.evolve(pr_url=open_pull_request(self.api, result, final, source_url))
            except Exception as exc:  # the score stands without the pull request
                final = final.evolve(warnings=(*final.warnings, f"pull request on {req.model} not opened: {first_line(exc)}"))
        (out / "request.json").write_bytes(final.to_json())
        self.results.upload(out, prefix, f"Results of {req.model}@{req.commit[:12]} on {req.release}@{req.release_revision} {req.forget}")
        return final

    def _download_model(self, req: Request, policy) -> Path:
        from huggingface_hub import snapshot_download

        from .repos import hub_failure

        patterns = list(SAFE_PATTERNS)
        patterns += [f"*{s}" for s in PICKLE_SUFFIXES] if policy.allow_pickle else []
        patterns += ["*.py"] if policy.allow_remote_code else []
        dest = self.work / "models" / req.model / req.commit
        try:
            snapshot_download(
                req.model, revision=req.commit, allow_patterns=patterns, local_dir=str(dest), endpoint=self.api.endpoint, token=self.api.token
            )
        except Exception as exc:
            raise hub_failure(exc, "model", req.model, req.commit, "model") from exc
        return dest

    def _finished_result(self, model: str | None, commit: str | None, req: Request, role: str, warnings: list[str]) -> Path | None:
        """The local folder of ``model``'s finished result on the same release and forget set, or None (with a warning)."""
        if not model or not commit:
            return None
        prefix = f"{model}/{commit}/{req.run_key}"
        if not self.results.has(prefix):
            warnings.append(
                f"{role} {model}@{commit[:12]} has no result on {req.release_revision} {req.forget} (its request failed or is missing); "
                + ("forget quality, privleak and surviving-entity share are left out" if role == "reference" else "forget efficacy is left out")
            )
            return None
        return self.results.download(prefix, self.work / "inputs", ("*.json", "*.jsonl", "*.gz", "*.parquet"))


def score_queue(cfg: ScorerConfig, log: Callable[[str], None] = print) -> list[Outcome]:
    return Scorer(cfg, log).run()
