"""A small Hub-compatible HTTP server for tests, on 127.0.0.1.

It implements just enough of the Hugging Face Hub API for ``huggingface_hub``'s
``create_repo`` (public or private), ``repo_info``, ``list_repo_refs``,
``preupload``, ``create_commit`` (NDJSON with base64 file contents, LFS
pointers, deletions), ``create_tag``, tree listing and paths-info, and for
``datasets.load_dataset`` by repo id: dataset info by revision and
``resolve/<rev>/<path>`` (HEAD, GET, byte ranges); for a model repo, ``repo_info`` and
``resolve`` without the ``datasets/`` prefix, what ``snapshot_download`` asks. Repos live in memory.
Unknown requests get 404 and are recorded in ``HubServer.unknown`` so a test
can show what is missing.

Binary files take the Hub's git-LFS path, as parquet does on the real Hub:
``preupload`` answers ``lfs`` for a file matching the Hub's default
``.gitattributes`` LFS patterns, holding a NUL byte in its sample, or of 10 MB
or more; the client then asks the LFS batch endpoint, PUTs the bytes to the
upload URL it gets, calls verify, and commits an ``lfsFile`` pointer (an
object never uploaded is refused). A commit that sends such a file inline is
refused, as the Hub refuses binary files in git. Downloads of an LFS file
redirect to a storage URL (another port: another origin) with ``X-Linked-Etag`` (its SHA-256) and
``X-Linked-Size``, as the Hub's do. The Xet transfer that ``huggingface_hub``
prefers when ``hf_xet`` is installed is not emulated: a client of this server
runs with ``HF_HUB_DISABLE_XET=1`` and so takes the LFS path, which the Hub
still serves to clients without Xet.

Model repos (the leaderboard's submissions) answer the same calls under the
model paths (``/api/models/...``, ``/<repo>/resolve/...``, LFS under
``/<repo>.git/``) and are stored in ``HubServer.repos`` under
``models/<org>/<name>``. Commits honour ``parent_commit`` (412 when the branch
moved, as the Hub answers) and ``create_pr`` (a ``refs/pr/<n>`` branch);
``whoami`` names the token's user (``HubServer.users``).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

REPO = r"(?P<repo>[^/]+/[^/]+)"
# The LFS patterns of the .gitattributes the Hub gives a new dataset repo (the binary formats among them).
LFS_SUFFIXES = (".parquet", ".arrow", ".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".npy", ".npz", ".h5", ".gz", ".zip", ".zst", ".tar")
LFS_MIN_SIZE = 10 * 1024 * 1024


def git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def needs_lfs(path: str, sample: bytes, size: int) -> bool:
    """The Hub's choice between a git blob and git LFS: by .gitattributes pattern, binary content, or size."""
    return path.endswith(LFS_SUFFIXES) or b"\0" in sample or size >= LFS_MIN_SIZE


def lfs_pointer(data: bytes) -> bytes:
    """The git-LFS pointer file git stores for ``data`` (its blob is what the Hub's tree ``oid`` names)."""
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{hashlib.sha256(data).hexdigest()}\nsize {len(data)}\n".encode()


@dataclass
class Repo:
    commits: dict[str, dict[str, bytes]] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)  # refs/pr/<n> branches are pull requests
    tags: dict[str, str] = field(default_factory=dict)
    private: bool = False
    lfs_objects: dict[str, bytes] = field(default_factory=dict)  # sha256 -> bytes, uploaded through the LFS endpoints
    lfs_paths: set[str] = field(default_factory=set)  # paths committed as LFS pointers (in any commit)

    def resolve(self, rev: str) -> str | None:
        return self.branches.get(rev) or self.tags.get(rev) or (rev if rev in self.commits else None)


class HubServer:
    """``with HubServer(token="...") as hub:`` serves on ``hub.url`` until the block ends."""

    def __init__(self, token: str | None = None) -> None:
        self.token = token
        self.users: dict[str, str] = {token: "hub-user"} if token else {}  # token -> user name, for whoami
        self.repos: dict[str, Repo] = {}  # dataset repos by id, model repos as models/<id>
        self.unknown: list[str] = []
        self.requests: list[str] = []
        self.lfs_uploads: list[str] = []  # SHA-256 of every object PUT to the LFS upload URL
        self.lock = threading.Lock()
        server = self

        class Handler(_Handler):
            hub = server

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        # LFS objects are uploaded to and served from another origin, as the Hub's storage and CDN are: clients
        # follow the Hub's redirects only within the Hub, and send no token to storage.
        self.storage = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.storage_url = f"http://127.0.0.1:{self.storage.server_address[1]}"
        self.threads = [threading.Thread(target=server.serve_forever, daemon=True) for server in (self.httpd, self.storage)]

    def __enter__(self) -> HubServer:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        for server in (self.httpd, self.storage):
            server.shutdown()
            server.server_close()

    def put_files(self, repo_id: str, files: dict[str, bytes], tag: str | None = None) -> str:
        """A commit of ``files`` on ``main`` of the model repo ``repo_id`` (created if new), optionally tagged; returns its sha."""
        key = f"models/{repo_id}"
        repo = self.repos.get(key) or self.new_repo(key)
        sha = hashlib.sha1(json.dumps([repo_id, len(repo.commits), sorted(files)]).encode()).hexdigest()
        repo.commits[sha] = dict(files)
        repo.branches["main"] = sha
        if tag:
            repo.tags[tag] = sha
        return sha

    def new_repo(self, repo_id: str, private: bool = False) -> Repo:
        repo = Repo(private=private)
        empty = hashlib.sha1(f"init {repo_id}".encode()).hexdigest()
        repo.commits[empty] = {}
        repo.branches["main"] = empty
        self.repos[repo_id] = repo
        return repo


class _Handler(BaseHTTPRequestHandler):
    hub: HubServer
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # quiet
        pass

    # -- plumbing ----------------------------------------------------------------------
    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":  # a streamed upload
            chunks = []
            while size := int(self.rfile.readline().split(b";")[0], 16):
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):  # trailers
                pass
            return b"".join(chunks)
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None, ctype: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, data, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(data).encode(), headers)

    def _error(self, status: int, message: str) -> None:
        self._json(status, {"error": message}, {"X-Error-Message": message})

    def _authorised(self) -> bool:
        return self.hub.token is None or self.headers.get("Authorization") in {f"Bearer {t}" for t in (self.hub.token, *self.hub.users)}

    def _route(self, method: str) -> None:
        parts = urlsplit(self.path)
        path, query = parts.path, parse_qs(parts.query)
        body = self._body() if method in ("POST", "PUT") else b""
        with self.hub.lock:
            self.hub.requests.append(f"{method} {self.path}")
        for verb, pattern, handler in ROUTES:
            m = re.fullmatch(pattern, path)
            if verb == method or (verb == "GET" and method == "HEAD"):
                if m:
                    # an LFS upload URL is presigned (its signature is checked by the handler), as the Hub's storage URLs are
                    if method not in ("GET", "HEAD") and getattr(handler, "wraps", handler) is not _Handler.lfs_upload and not self._authorised():
                        return self._error(401, "Invalid credentials in Authorization header")
                    groups = {k: unquote(v) for k, v in m.groupdict().items() if v is not None}
                    with self.hub.lock:
                        return handler(self, body=body, query=query, **groups)
        self.hub.unknown.append(f"{method} {self.path}")
        self._error(404, f"not implemented by the test hub: {method} {path}")

    def do_GET(self) -> None:
        self._route("GET")

    def do_HEAD(self) -> None:
        self._route("HEAD")

    def do_POST(self) -> None:
        self._route("POST")

    def do_PUT(self) -> None:
        self._route("PUT")

    # -- helpers -----------------------------------------------------------------------
    def _repo(self, repo: str) -> Repo | None:
        found = self.hub.repos.get(repo)
        if found is None:
            self._send(404, b'{"error":"Repository not found"}', {"X-Error-Code": "RepoNotFound", "X-Error-Message": "Repository not found"})
        return found

    def _files(self, repo: Repo, rev: str) -> tuple[str, dict[str, bytes]] | None:
        sha = repo.resolve(rev)
        if sha is None:
            self._send(404, b'{"error":"Invalid rev id"}', {"X-Error-Code": "RevisionNotFound", "X-Error-Message": f"Invalid rev id: {rev}"})
            return None
        return sha, repo.commits[sha]

    @staticmethod
    def _entry(path: str, files: dict[str, bytes], lfs: set[str]) -> dict:
        if path in files:
            data = files[path]
            if path in lfs:  # git holds the pointer; the Hub reports the object's size and SHA-256 beside it
                pointer = lfs_pointer(data)
                lfs_info = {"oid": hashlib.sha256(data).hexdigest(), "size": len(data), "pointerSize": len(pointer)}
                return {"type": "file", "path": path, "size": len(data), "oid": git_blob_sha1(pointer), "lfs": lfs_info}
            return {"type": "file", "path": path, "size": len(data), "oid": git_blob_sha1(data)}
        return {"type": "directory", "path": path, "oid": hashlib.sha1(path.encode()).hexdigest()}

    # -- endpoints ---------------------------------------------------------------------
    def create_repo(self, body: bytes, query, **_) -> None:
        data = json.loads(body)
        repo_id = f"{data['organization']}/{data['name']}" if data.get("organization") else data["name"]
        kind = data.get("type") or "model"
        if kind not in ("dataset", "model"):
            return self._error(400, "the test hub only holds datasets and models")
        key, url = (repo_id, f"{self.hub.url}/datasets/{repo_id}") if kind == "dataset" else (f"models/{repo_id}", f"{self.hub.url}/{repo_id}")
        if key in self.hub.repos:  # the Hub names the existing repo's url in its 409 answer
            return self._json(
                409,
                {"error": f"You already created this {kind} repo", "url": url},
                {"X-Error-Message": f"You already created this {kind} repo"},
            )
        self.hub.new_repo(key, private=data.get("visibility", "private" if data.get("private") else "public") == "private")
        self._json(200, {"url": url, "name": repo_id})

    def validate_yaml(self, body: bytes, query, **_) -> None:
        """The Hub's README.md metadata check: front matter parses, and every config names its data files."""
        import yaml

        content = json.loads(body)["content"]
        errors = []
        if content.startswith("---\n"):
            try:
                meta = yaml.safe_load(content.split("\n---\n", 1)[0][4:]) or {}
            except yaml.YAMLError as exc:
                meta, errors = {}, [{"message": f"YAML: {exc}"}]
            for c in meta.get("configs", []):
                if "config_name" not in c or "data_files" not in c:
                    errors.append({"message": f"config {c} needs config_name and data_files"})
        self._json(400 if errors else 200, {"errors": errors, "warnings": []})

    def info(self, repo: str, body: bytes, query, rev: str = "main") -> None:
        r = self._repo(repo)
        found = r and self._files(r, rev)
        if not found:
            return
        sha, files = found
        self._json(
            200,
            {
                "id": repo,
                "_id": repo,
                "author": repo.split("/")[0],
                "sha": sha,
                "private": r.private,
                "disabled": False,
                "gated": False,
                "downloads": 0,
                "likes": 0,
                "tags": [],
                "siblings": [{"rfilename": p} for p in sorted(files)],
            },
        )

    def refs(self, repo: str, body: bytes, query) -> None:
        r = self._repo(repo)
        if r:
            ref = lambda kind, n, sha: {"name": n, "ref": f"refs/{kind}/{n}", "targetCommit": sha}  # noqa: E731
            self._json(
                200,
                {
                    "branches": [ref("heads", n, s) for n, s in r.branches.items() if not n.startswith("refs/pr/")],
                    "converts": [],
                    "tags": [ref("tags", n, s) for n, s in r.tags.items()],
                    "pullRequests": [{"name": n, "ref": n, "targetCommit": s} for n, s in r.branches.items() if n.startswith("refs/pr/")],
                },
            )

    def preupload(self, repo: str, rev: str, body: bytes, query) -> None:
        r = self._repo(repo)
        found = r and self._files(r, rev)
        if found:
            files, answer = found[1], []
            for f in json.loads(body)["files"]:
                lfs = needs_lfs(f["path"], base64.b64decode(f["sample"]), f["size"])
                old = files.get(f["path"])  # the client skips a file whose oid it already has
                oid = None if old is None else hashlib.sha256(old).hexdigest() if lfs else git_blob_sha1(old)
                answer.append({"path": f["path"], "uploadMode": "lfs" if lfs else "regular", "shouldIgnore": False, "oid": oid})
            self._json(200, {"files": answer})

    def lfs_batch(self, repo: str, body: bytes, query) -> None:
        """The git-LFS batch API (basic transfer): an upload URL for each object not stored yet, and a verify URL."""
        r = self._repo(repo)
        if not r:
            return
        data = json.loads(body)
        if data.get("operation") != "upload" or "basic" not in data.get("transfers", ["basic"]):
            return self._error(400, "the test hub takes LFS uploads with the basic transfer only")
        objects = []
        for obj in data["objects"]:
            if obj["oid"] in r.lfs_objects:  # already stored: no actions, the client skips the upload
                objects.append({"oid": obj["oid"], "size": obj["size"]})
                continue
            signature = hashlib.sha256(f"{self.hub.token}:{repo}:{obj['oid']}".encode()).hexdigest()
            href = f"{self.hub.storage_url}/lfs-upload/{repo}/{obj['oid']}/{obj['size']}?X-Signature={signature}"
            verify = f"{self.hub.url}/lfs-verify/{repo}"
            objects.append({"oid": obj["oid"], "size": obj["size"], "actions": {"upload": {"href": href}, "verify": {"href": verify}}})
        self._json(200, {"transfer": "basic", "objects": objects})

    def lfs_upload(self, repo: str, oid: str, size: str, body: bytes, query) -> None:
        r = self._repo(repo)
        if not r:
            return
        if query.get("X-Signature") != [hashlib.sha256(f"{self.hub.token}:{repo}:{oid}".encode()).hexdigest()]:
            return self._error(403, "LFS upload URL without a valid signature")
        if hashlib.sha256(body).hexdigest() != oid or len(body) != int(size):
            return self._error(400, f"LFS object {oid}: the uploaded bytes do not match its SHA-256 and size")
        r.lfs_objects[oid] = body
        self.hub.lfs_uploads.append(oid)
        self._json(200, {})

    def lfs_verify(self, repo: str, body: bytes, query) -> None:
        r = self._repo(repo)
        if r:
            obj = json.loads(body)
            stored = r.lfs_objects.get(obj["oid"])
            if stored is None or len(stored) != obj["size"]:
                return self._error(404, f"LFS object {obj['oid']} was not uploaded")
            self._json(200, {})

    def lfs_object(self, oid: str, body: bytes, query) -> None:
        """The storage the Hub's resolve URL redirects LFS files to (byte ranges, as a CDN serves them)."""
        for r in self.hub.repos.values():
            if oid in r.lfs_objects:
                return self._bytes(r.lfs_objects[oid], {"ETag": f'"{oid}"'})
        self._error(404, f"no LFS object {oid}")

    def commit(self, repo: str, rev: str, body: bytes, query) -> None:
        r = self._repo(repo)
        if r and query.get("create_pr", ["0"])[0] in ("1", "true") and not rev.startswith("refs/pr/"):
            rev = self._open_pull_request(r, rev)
        found = r and self._files(r, rev)
        if not found:
            return
        if rev not in r.branches:
            return self._error(400, f"cannot commit to {rev}: not a branch")
        parent, files = found
        files = dict(files)
        summary, lfs_paths = "", set()
        for line in body.decode().splitlines():
            item = json.loads(line)
            key, value = item["key"], item["value"]
            if key == "header":
                summary = value["summary"]
                if value.get("parentCommit") and not parent.startswith(value["parentCommit"]) and not rev.startswith("refs/pr/"):
                    return self._error(412, "A commit has happened since. Please refresh and try again.")
            elif key == "file":
                data = base64.b64decode(value["content"]) if value.get("encoding") == "base64" else value["content"].encode()
                if needs_lfs(value["path"], data[:512], len(data)):
                    return self._error(400, f"{value['path']}: binary files must be uploaded with git LFS (preupload said so)")
                files[value["path"]] = data
            elif key == "lfsFile":
                stored = r.lfs_objects.get(value["oid"])
                if value.get("algo") != "sha256" or stored is None:
                    return self._error(400, f"{value['path']}: LFS pointer to object {value['oid']}, which was never uploaded")
                files[value["path"]] = stored
                lfs_paths.add(value["path"])
            elif key == "deletedFile":
                files.pop(value["path"], None)
            elif key == "deletedFolder":
                files = {p: c for p, c in files.items() if not p.startswith(value["path"].rstrip("/") + "/")}
            else:
                return self._error(400, f"the test hub does not take {key!r} operations")
        sha = hashlib.sha1(json.dumps([parent, summary, sorted((p, git_blob_sha1(c)) for p, c in files.items())]).encode()).hexdigest()
        r.commits[sha] = files
        r.lfs_paths |= lfs_paths
        r.branches[rev] = sha
        answer = {"commitUrl": f"{self._repo_url(repo)}/commit/{sha}", "commitOid": sha, "success": True}
        if rev.startswith("refs/pr/"):
            answer["pullRequestUrl"] = f"{self._repo_url(repo)}/discussions/{rev.rsplit('/', 1)[1]}"
        self._json(200, answer)

    def tag(self, repo: str, rev: str, body: bytes, query) -> None:
        r = self._repo(repo)
        found = r and self._files(r, rev)
        if not found:
            return
        name = json.loads(body)["tag"]
        if name in r.tags:
            return self._error(409, f"Tag {name} already exists")
        r.tags[name] = found[0]
        self._json(200, {})

    def tree(self, repo: str, rev: str, body: bytes, query, path: str = "") -> None:
        r = self._repo(repo)
        found = r and self._files(r, rev)
        if not found:
            return
        files = found[1]
        prefix = path.strip("/") + "/" if path.strip("/") else ""
        recursive = query.get("recursive", ["false"])[0].lower() in ("1", "true")
        entries: dict[str, dict] = {}
        for p in sorted(files):
            if not p.startswith(prefix):
                continue
            rest = p[len(prefix) :].split("/")
            depth = len(rest) if recursive else 1
            for i in range(1, min(depth, len(rest) - 1) + 1):
                folder = prefix + "/".join(rest[:i])
                entries.setdefault(folder, self._entry(folder, files, r.lfs_paths))
            if recursive or len(rest) == 1:
                entries[p] = self._entry(p, files, r.lfs_paths)
        if prefix and not entries:
            return self._send(404, b'{"error":"not found"}', {"X-Error-Code": "EntryNotFound", "X-Error-Message": f"{path} does not exist"})
        self._json(200, list(entries.values()))

    def paths_info(self, repo: str, rev: str, body: bytes, query) -> None:
        r = self._repo(repo)
        found = r and self._files(r, rev)
        if not found:
            return
        files = found[1]
        form = parse_qs(body.decode())
        out = []
        for p in form.get("paths", []):
            p = p.strip("/")
            if p in files or any(f.startswith(p + "/") for f in files):
                out.append(self._entry(p, files, r.lfs_paths))
        self._json(200, out)

    def resolve(self, repo: str, rev: str, path: str, body: bytes, query) -> None:
        r = self._repo(repo)
        found = r and self._files(r, rev)
        if not found:
            return
        sha, files = found
        if path not in files:
            return self._send(
                404, b'{"error":"Entry not found"}', {"X-Error-Code": "EntryNotFound", "X-Error-Message": "Entry not found", "X-Repo-Commit": sha}
            )
        data = files[path]
        if path in r.lfs_paths:  # the Hub redirects to its storage and names the object in X-Linked-* headers
            oid = hashlib.sha256(data).hexdigest()
            headers = {"X-Repo-Commit": sha, "X-Linked-Etag": f'"{oid}"', "X-Linked-Size": str(len(data)), "ETag": f'"{oid}"'}
            return self._send(302, b"", {**headers, "Location": f"{self.hub.storage_url}/lfs-objects/{oid}"})
        self._bytes(data, {"X-Repo-Commit": sha, "ETag": f'"{git_blob_sha1(data)}"'})

    def _bytes(self, data: bytes, headers: dict[str, str]) -> None:
        headers = {**headers, "Accept-Ranges": "bytes"}
        rng = re.fullmatch(r"bytes=(\d*)-(\d*)", self.headers.get("Range") or "")
        if rng and self.command == "GET":
            start = int(rng[1]) if rng[1] else max(0, len(data) - int(rng[2]))
            end = min(int(rng[2]), len(data) - 1) if rng[1] and rng[2] else len(data) - 1
            headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
            return self._send(206, data[start : end + 1], headers, "application/octet-stream")
        self._send(200, data, headers, "application/octet-stream")

    # -- model repos, pull requests, users ----------------------------------------------
    def _repo_url(self, key: str) -> str:
        return f"{self.hub.url}/{key[len('models/') :]}" if key.startswith("models/") else f"{self.hub.url}/datasets/{key}"

    def _open_pull_request(self, r: Repo, rev: str) -> str:
        """A new ``refs/pr/<n>`` branch from ``rev``'s head; the commit then lands on it."""
        n = 1 + sum(1 for b in r.branches if b.startswith("refs/pr/"))
        head = r.resolve(rev)
        if head is not None:
            r.branches[f"refs/pr/{n}"] = head
        return f"refs/pr/{n}" if head is not None else rev

    def model_info(self, repo: str, body: bytes, query, rev: str = "main") -> None:
        r = self._repo(f"models/{repo}")
        found = r and self._files(r, rev)
        if not found:
            return
        sha, files = found
        self._json(
            200,
            {
                "id": repo,
                "_id": repo,
                "modelId": repo,
                "author": repo.split("/")[0],
                "sha": sha,
                "private": False,
                "disabled": False,
                "gated": False,
                "downloads": 0,
                "likes": 0,
                "tags": [],
                "siblings": [{"rfilename": p} for p in sorted(files)],
            },
        )

    def whoami(self, body: bytes, query) -> None:
        token = (self.headers.get("Authorization") or "").removeprefix("Bearer ")
        if token not in self.hub.users:
            return self._error(401, "Invalid credentials in Authorization header")
        self._json(200, {"type": "user", "name": self.hub.users[token], "auth": {"type": "access_token"}})


def _on_model(handler):
    """The dataset handler of the same call, on the model repo stored as ``models/<repo>``."""

    def routed(self: _Handler, repo: str, **kwargs) -> None:
        return handler(self, repo=f"models/{repo}", **kwargs)

    routed.wraps = handler  # type: ignore[attr-defined]
    return routed


ROUTES = [
    ("POST", r"/api/repos/create", _Handler.create_repo),
    ("POST", r"/api/validate-yaml", _Handler.validate_yaml),
    ("GET", rf"/api/datasets/{REPO}", _Handler.info),
    ("GET", rf"/api/datasets/{REPO}/revision/(?P<rev>[^/]+)", _Handler.info),
    ("GET", rf"/api/datasets/{REPO}/refs", _Handler.refs),
    ("POST", rf"/api/datasets/{REPO}/preupload/(?P<rev>[^/]+)", _Handler.preupload),
    ("POST", rf"/datasets/{REPO}\.git/info/lfs/objects/batch", _Handler.lfs_batch),
    ("PUT", rf"/lfs-upload/{REPO}/(?P<oid>[0-9a-f]{{64}})/(?P<size>\d+)", _Handler.lfs_upload),
    ("POST", rf"/lfs-verify/{REPO}", _Handler.lfs_verify),
    ("GET", r"/lfs-objects/(?P<oid>[0-9a-f]{64})", _Handler.lfs_object),
    ("POST", rf"/api/datasets/{REPO}/commit/(?P<rev>[^/]+)", _Handler.commit),
    ("POST", rf"/api/datasets/{REPO}/tag/(?P<rev>[^/]+)", _Handler.tag),
    ("GET", rf"/api/datasets/{REPO}/tree/(?P<rev>[^/]+)(?:/(?P<path>.*))?", _Handler.tree),
    ("POST", rf"/api/datasets/{REPO}/paths-info/(?P<rev>[^/]+)", _Handler.paths_info),
    ("GET", rf"/datasets/{REPO}/resolve/(?P<rev>[^/]+)/(?P<path>.+)", _Handler.resolve),
    ("GET", r"/api/whoami-v2", _Handler.whoami),
    ("GET", rf"/api/models/{REPO}", _Handler.model_info),
    ("GET", rf"/api/models/{REPO}/revision/(?P<rev>[^/]+)", _Handler.model_info),
    ("GET", rf"/api/models/{REPO}/refs", _on_model(_Handler.refs)),
    ("POST", rf"/api/models/{REPO}/preupload/(?P<rev>[^/]+)", _on_model(_Handler.preupload)),
    ("POST", rf"/api/models/{REPO}/commit/(?P<rev>[^/]+)", _on_model(_Handler.commit)),
    ("POST", rf"/{REPO}\.git/info/lfs/objects/batch", _on_model(_Handler.lfs_batch)),
    ("PUT", rf"/lfs-upload/models/{REPO}/(?P<oid>[0-9a-f]{{64}})/(?P<size>\d+)", _on_model(_Handler.lfs_upload)),
    ("POST", rf"/lfs-verify/models/{REPO}", _on_model(_Handler.lfs_verify)),
    ("GET", rf"/api/models/{REPO}/tree/(?P<rev>[^/]+)(?:/(?P<path>.*))?", _on_model(_Handler.tree)),
    ("POST", rf"/api/models/{REPO}/paths-info/(?P<rev>[^/]+)", _on_model(_Handler.paths_info)),
    ("GET", rf"/{REPO}/resolve/(?P<rev>[^/]+)/(?P<path>.+)", _on_model(_Handler.resolve)),
]
