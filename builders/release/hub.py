"""Publishing a release folder to the Hugging Face Hub as a tagged dataset version.

``publish_release`` checks the folder against its manifest, creates the dataset
repo if needed (private with ``private=True``), refuses when the tag
``v<version>`` already exists, uploads the folder in one commit (removing data
files of configs the release no longer has) and tags that commit. It honours
``HF_ENDPOINT`` and ``HF_TOKEN``.

Publishing never changes an existing repo's visibility: ``private=True`` for a
repo that exists and is public is refused before anything is uploaded (making
it private would hide every version already published, which users may load);
a private repo stays private.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from entity_unlearn.errors import EntityUnlearnError, strip_userinfo

from .build import read_release_manifest, sha256_file


class PublishError(EntityUnlearnError, ValueError):
    """A release cannot be published as asked; the message names the folder, repo or tag and what to do."""


@dataclass(frozen=True)
class Published:
    repo_id: str
    tag: str
    commit: str
    url: str
    private: bool


def verify_release(folder: str | Path) -> dict[str, Any]:
    """The manifest of ``folder`` after checking every listed file's SHA-256; PublishError on a mismatch."""
    folder = Path(folder)
    manifest = read_release_manifest(folder)
    for rel, info in manifest["files"].items():
        path = folder / rel
        if not path.is_file():
            raise PublishError(f"{path}: listed in manifest.json but missing; rebuild the release with `entity-unlearn build`")
        if sha256_file(path) != info["sha256"]:
            raise PublishError(f"{path}: content differs from manifest.json; the file was edited, rebuild the release")
    return manifest


def publish_release(folder: str | Path, repo_id: str, token: str | None = None, endpoint: str | None = None, private: bool = False) -> Published:
    """Upload release ``folder`` to dataset repo ``repo_id`` and tag it ``v<version>``.

    ``endpoint`` and ``token`` default to ``HF_ENDPOINT`` and ``HF_TOKEN``. Raises
    PublishError if the tag exists (a version is never overwritten) or the Hub refuses.
    """
    from huggingface_hub import HfApi, constants
    from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError

    if repo_id.count("/") != 1 or not all(repo_id.split("/")):
        raise PublishError(f"--repo {repo_id!r}: write ORG/NAME, e.g. my-lab/entity-unlearn")
    folder = Path(folder)
    manifest = verify_release(folder)
    tag = f"v{manifest['version']}"
    # read now, not only at huggingface_hub's import; and huggingface-hub 2.x's Xet upload sends requests unchecked
    if constants.HF_HUB_OFFLINE or os.environ.get("HF_HUB_OFFLINE", "").upper() in constants.ENV_VARS_TRUE_VALUES:
        raise PublishError(f"{repo_id}: HF_HUB_OFFLINE is set, so nothing can be uploaded; unset it to publish")
    api = HfApi(endpoint=endpoint or os.environ.get("HF_ENDPOINT") or None, token=token or os.environ.get("HF_TOKEN") or None)
    try:
        try:
            existing = api.repo_info(repo_id, repo_type="dataset")
        except RepositoryNotFoundError:
            existing = None
        if existing is None:
            api.create_repo(repo_id, repo_type="dataset", exist_ok=True, private=private)
        elif private and not existing.private:
            raise PublishError(
                f"--private: {repo_id} exists and is public; publishing never changes a repo's visibility (its published "
                f"versions would disappear for the people who load them). Publish without --private, or make the repo "
                f"private on the Hub first (its Settings page, or HfApi().update_repo_settings('{repo_id}', private=True, repo_type='dataset'))"
            )
        is_private = private if existing is None else bool(existing.private)
        tags = {ref.name for ref in api.list_repo_refs(repo_id, repo_type="dataset").tags}
        if tag in tags:
            raise PublishError(
                f"{repo_id}: tag {tag} already exists; a published version is never overwritten, "
                f"build with a new --version (e.g. bump the patch number)"
            )
        files = sorted(manifest["files"]) + ["manifest.json"]
        commit = api.upload_folder(
            folder_path=str(folder),
            repo_id=repo_id,
            repo_type="dataset",
            allow_patterns=files,
            delete_patterns=["data/**"],
            commit_message=f"Release {tag}",
            commit_description=f"entity-unlearn release {tag}, seed {manifest['seed']}",
        )
        api.create_tag(repo_id, tag=tag, revision=commit.oid, repo_type="dataset", tag_message=f"entity-unlearn release {tag}")
    except HfHubHTTPError as exc:
        status = exc.response.status_code if exc.response is not None else "no answer"
        raise PublishError(f"{repo_id} at {api.endpoint}: the Hub refused ({status}): {exc}; check HF_TOKEN (write access) and HF_ENDPOINT") from exc
    url = strip_userinfo(f"{api.endpoint}/datasets/{repo_id}/tree/{tag}")
    return Published(repo_id=repo_id, tag=tag, commit=commit.oid, url=url, private=is_private)
