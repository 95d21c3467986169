"""Hub access shared by submit, the scorer and the site: one client, names resolved to commits,
the queue read at one commit and written with compare-and-swap, the results repo.

Every write to the queue names the commit it was read at (``parent_commit``); the Hub
refuses it (HTTP 412) when someone else committed in between, and the caller reads
the queue again. That is what makes claiming a request safe with several scorers.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from entity_unlearn.errors import EntityUnlearnError

from .requests import POLICY_FILE, QUEUE_DIR, Policy

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
# What a scorer downloads of a model: config, tokenizer, safetensors weights, chat template files.
SAFE_PATTERNS = ("*.json", "*.safetensors", "*.model", "*.txt", "*.jinja", "*.tiktoken")


class HubError(EntityUnlearnError, ValueError):
    """A Hub name cannot be used as given; the message names the option or repo and what to do."""


class QueueConflict(RuntimeError):
    """The queue moved between reading and writing; read it again."""


def client(token: str | None = None, endpoint: str | None = None):
    from huggingface_hub import HfApi

    return HfApi(endpoint=endpoint or os.environ.get("HF_ENDPOINT") or None, token=token or os.environ.get("HF_TOKEN") or None)


def endpoint_of(api) -> str:
    return (api.endpoint or "https://huggingface.co").rstrip("/")


def split_spec(spec: str, what: str, need_revision: bool = False) -> tuple[str, str | None]:
    """``ORG/NAME[@REV]`` -> (repo id, revision or None)."""
    repo, _, rev = spec.partition("@")
    if repo.count("/") != 1 or not all(repo.split("/")) or (_ and not rev):
        raise HubError(f"{what} {spec!r}: write ORG/NAME or ORG/NAME@REVISION")
    if need_revision and not rev:
        raise HubError(f"{what} {spec!r}: name the version, e.g. {repo}@v1.0.0 (a tag or commit, so the score can be reproduced)")
    return repo, rev or None


def hub_failure(exc: Exception, what: str, repo: str, rev: str | None, kind: str) -> HubError:
    """One clear message for the many ways a Hub call fails."""
    from huggingface_hub.errors import GatedRepoError, OfflineModeIsEnabled, RepositoryNotFoundError, RevisionNotFoundError

    if isinstance(exc, RevisionNotFoundError):
        return HubError(f"{what} {repo}@{rev}: the {kind} has no revision {rev!r}; give one of its branches, tags or commits")
    if isinstance(exc, GatedRepoError):
        return HubError(f"{what} {repo}: the {kind} is gated; accept its terms with the account of HF_TOKEN, or submit another")
    if isinstance(exc, RepositoryNotFoundError):
        return HubError(f"{what} {repo}: no such {kind} on the Hub (or it is private and HF_TOKEN cannot read it); check the name")
    if isinstance(exc, OfflineModeIsEnabled):
        return HubError(f"{what} {repo}: HF_HUB_OFFLINE is set, so the Hub cannot be asked; unset it")
    return HubError(f"{what} {repo}: the Hub refused ({exc.__class__.__name__}: {str(exc).splitlines()[0] if str(exc) else ''})")


@dataclass(frozen=True)
class ModelRef:
    repo: str
    revision: str
    commit: str
    files: tuple[str, ...]


def resolve_model(api, spec: str, what: str) -> ModelRef:
    """A model ``ORG/NAME[@REV]`` with its revision resolved to the commit hash and its file list."""
    repo, rev = split_spec(spec, what)
    try:
        info = api.model_info(repo, revision=rev)
    except Exception as exc:
        raise hub_failure(exc, what, repo, rev, "model") from exc
    return ModelRef(repo, rev or "main", info.sha, tuple(s.rfilename for s in info.siblings or ()))


def check_weights(api, model: ModelRef, policy: Policy, what: str) -> None:
    """Refuse pickle-only weights and checkpoints that need their own code, unless the queue's policy allows them."""
    import json

    from huggingface_hub import hf_hub_download

    safe = [f for f in model.files if f.endswith(".safetensors")]
    pickled = [f for f in model.files if f.endswith(PICKLE_SUFFIXES)]
    if not safe and not pickled:
        raise HubError(f"{what} {model.repo}@{model.commit[:12]}: no weights (*.safetensors) in the repo")
    if not safe and not policy.allow_pickle:
        raise HubError(
            f"{what} {model.repo}@{model.commit[:12]}: only pickle weights ({pickled[0]}), which can run code when loaded, "
            "and this queue does not accept them (policy allow_pickle); convert them to safetensors and push again"
        )
    for name in ("config.json", "tokenizer_config.json"):
        if name not in model.files:
            if name == "config.json":
                raise HubError(f"{what} {model.repo}@{model.commit[:12]}: no config.json; push the folder save_pretrained wrote")
            continue
        try:
            path = hf_hub_download(model.repo, name, revision=model.commit, endpoint=api.endpoint, token=api.token)
            config = json.loads(Path(path).read_text(encoding="utf-8"))
        except ValueError as exc:
            raise HubError(f"{what} {model.repo}@{model.commit[:12]}: {name} is not valid JSON ({exc})") from exc
        except Exception as exc:
            raise hub_failure(exc, what, model.repo, model.commit, "model") from exc
        if isinstance(config, dict) and config.get("auto_map") and not policy.allow_remote_code:
            raise HubError(
                f"{what} {model.repo}@{model.commit[:12]}: {name} names its own code (auto_map), which this queue does not run "
                "(policy allow_remote_code); submit a checkpoint of a model class transformers ships"
            )


@dataclass(frozen=True)
class Snapshot:
    """The queue at one commit: every request file's bytes and the policy."""

    commit: str
    files: dict[str, bytes]
    policy: Policy


class Queue:
    def __init__(self, api, repo: str) -> None:
        split_spec(repo, "--queue")
        self.api, self.repo = api, repo

    def create(self) -> None:
        self.api.create_repo(self.repo, repo_type="dataset", exist_ok=True)

    def snapshot(self) -> Snapshot:
        from huggingface_hub import snapshot_download

        try:
            commit = self.api.dataset_info(self.repo).sha
            folder = Path(
                snapshot_download(
                    self.repo,
                    repo_type="dataset",
                    revision=commit,
                    allow_patterns=[f"{QUEUE_DIR}/*", POLICY_FILE],
                    endpoint=self.api.endpoint,
                    token=self.api.token,
                )
            )
        except Exception as exc:
            raise hub_failure(exc, "--queue", self.repo, None, "queue dataset") from exc
        files = {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.glob(f"{QUEUE_DIR}/**/*.json")) if p.is_file()}
        policy_file = folder / POLICY_FILE
        policy = Policy.parse(policy_file.read_bytes() if policy_file.is_file() else None, f"{self.repo}/{POLICY_FILE}")
        return Snapshot(commit, files, policy)

    def write(self, files: dict[str, bytes], message: str, parent: str) -> str:
        """Commit ``files`` on top of ``parent``; QueueConflict if the queue moved since."""
        from huggingface_hub import CommitOperationAdd
        from huggingface_hub.errors import HfHubHTTPError

        ops = [CommitOperationAdd(path_in_repo=p, path_or_fileobj=data) for p, data in sorted(files.items())]
        try:
            info = self.api.create_commit(self.repo, ops, commit_message=message, repo_type="dataset", parent_commit=parent)
        except HfHubHTTPError as exc:
            if exc.response is not None and exc.response.status_code in (409, 412):
                raise QueueConflict(str(exc)) from exc
            raise
        return info.oid


class ResultsRepo:
    """The results dataset: ``<org>/<name>/<commit>/<release-rev>_<forget>/`` per scored request."""

    def __init__(self, api, repo: str) -> None:
        split_spec(repo, "--results")
        self.api, self.repo = api, repo

    def create(self) -> None:
        self.api.create_repo(self.repo, repo_type="dataset", exist_ok=True)

    def has(self, prefix: str) -> bool:
        return self.api.file_exists(self.repo, f"{prefix}/results.json", repo_type="dataset")

    def download(self, prefix: str, dest: Path, patterns: tuple[str, ...] = ("*",)) -> Path:
        from huggingface_hub import snapshot_download

        snapshot_download(
            self.repo,
            repo_type="dataset",
            allow_patterns=[f"{prefix}/{p}" for p in patterns],
            local_dir=str(dest),
            endpoint=self.api.endpoint,
            token=self.api.token,
        )
        return dest / prefix

    def upload(self, folder: Path, prefix: str, message: str) -> str:
        info = self.api.upload_folder(
            repo_id=self.repo,
            repo_type="dataset",
            folder_path=str(folder),
            path_in_repo=prefix,
            ignore_patterns=["cache/*", "*.tmp", "*.partial"],
            commit_message=message,
        )
        return info.oid
