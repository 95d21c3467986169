"""A small Hub-compatible HTTP server for tests, on 127.0.0.1.

It implements just enough of the Hugging Face Hub API for ``huggingface_hub``'s
``create_repo``, ``list_repo_refs``, ``preupload`` (every file answered
``regular``), ``create_commit`` (NDJSON with base64 file contents, deletions),
``create_tag``, tree listing and paths-info, and for ``datasets.load_dataset``
by repo id: dataset info by revision and ``resolve/<rev>/<path>`` (HEAD, GET,
byte ranges). Repos live in memory. Unknown requests get 404 and are recorded
in ``HubServer.unknown`` so a test can show what is missing.
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


def git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass
class Repo:
    commits: dict[str, dict[str, bytes]] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)

    def resolve(self, rev: str) -> str | None:
        return self.branches.get(rev) or self.tags.get(rev) or (rev if rev in self.commits else None)


class HubServer:
    """``with HubServer(token="...") as hub:`` serves on ``hub.url`` until the block ends."""

    def __init__(self, token: str | None = None) -> None:
        self.token = token
        self.repos: dict[str, Repo] = {}
        self.unknown: list[str] = []
        self.requests: list[str] = []
        self.lock = threading.Lock()
        server = self

        class Handler(_Handler):
            hub = server

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> HubServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def new_repo(self, repo_id: str) -> Repo:
        repo = Repo()
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
        return self.hub.token is None or self.headers.get("Authorization") == f"Bearer {self.hub.token}"

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
                    if method != "GET" and method != "HEAD" and not self._authorised():
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
    def _entry(path: str, files: dict[str, bytes]) -> dict:
        if path in files:
            return {"type": "file", "path": path, "size": len(files[path]), "oid": git_blob_sha1(files[path])}
        return {"type": "directory", "path": path, "oid": hashlib.sha1(path.encode()).hexdigest()}

    # -- endpoints ---------------------------------------------------------------------
    def create_repo(self, body: bytes, query, **_) -> None:
        data = json.loads(body)
        repo_id = f"{data['organization']}/{data['name']}" if data.get("organization") else data["name"]
        if data.get("type") != "dataset":
            return self._error(400, "the test hub only holds datasets")
        if repo_id in self.hub.repos:  # the Hub names the existing repo's url in its 409 answer
            return self._json(
                409,
                {"error": "You already created this dataset repo", "url": f"{self.hub.url}/datasets/{repo_id}"},
                {"X-Error-Message": "You already created this dataset repo"},
            )
        self.hub.new_repo(repo_id)
        self._json(200, {"url": f"{self.hub.url}/datasets/{repo_id}", "name": repo_id})

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
                "private": False,
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
                    "branches": [ref("heads", n, s) for n, s in r.branches.items()],
                    "converts": [],
                    "tags": [ref("tags", n, s) for n, s in r.tags.items()],
                    "pullRequests": [],
                },
            )

    def preupload(self, repo: str, rev: str, body: bytes, query) -> None:
        r = self._repo(repo)
        found = r and self._files(r, rev)
        if found:
            files = found[1]
            self._json(
                200,
                {
                    "files": [
                        {
                            "path": f["path"],
                            "uploadMode": "regular",
                            "shouldIgnore": False,
                            "oid": git_blob_sha1(files[f["path"]]) if f["path"] in files else None,
                        }
                        for f in json.loads(body)["files"]
                    ]
                },
            )

    def commit(self, repo: str, rev: str, body: bytes, query) -> None:
        r = self._repo(repo)
        found = r and self._files(r, rev)
        if not found:
            return
        if rev not in r.branches:
            return self._error(400, f"cannot commit to {rev}: not a branch")
        parent, files = found
        files = dict(files)
        summary = ""
        for line in body.decode().splitlines():
            item = json.loads(line)
            key, value = item["key"], item["value"]
            if key == "header":
                summary = value["summary"]
            elif key == "file":
                files[value["path"]] = base64.b64decode(value["content"]) if value.get("encoding") == "base64" else value["content"].encode()
            elif key == "deletedFile":
                files.pop(value["path"], None)
            elif key == "deletedFolder":
                files = {p: c for p, c in files.items() if not p.startswith(value["path"].rstrip("/") + "/")}
            else:
                return self._error(400, f"the test hub does not take {key!r} operations")
        sha = hashlib.sha1(json.dumps([parent, summary, sorted((p, git_blob_sha1(c)) for p, c in files.items())]).encode()).hexdigest()
        r.commits[sha] = files
        r.branches[rev] = sha
        self._json(200, {"commitUrl": f"{self.hub.url}/datasets/{repo}/commit/{sha}", "commitOid": sha, "success": True})

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
                entries.setdefault(folder, self._entry(folder, files))
            if recursive or len(rest) == 1:
                entries[p] = self._entry(p, files)
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
                out.append(self._entry(p, files))
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
        headers = {"X-Repo-Commit": sha, "ETag": f'"{git_blob_sha1(data)}"', "Accept-Ranges": "bytes"}
        rng = re.fullmatch(r"bytes=(\d*)-(\d*)", self.headers.get("Range") or "")
        if rng and self.command == "GET":
            start = int(rng[1]) if rng[1] else max(0, len(data) - int(rng[2]))
            end = min(int(rng[2]), len(data) - 1) if rng[1] and rng[2] else len(data) - 1
            headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
            return self._send(206, data[start : end + 1], headers, "application/octet-stream")
        self._send(200, data, headers, "application/octet-stream")


ROUTES = [
    ("POST", r"/api/repos/create", _Handler.create_repo),
    ("POST", r"/api/validate-yaml", _Handler.validate_yaml),
    ("GET", rf"/api/datasets/{REPO}", _Handler.info),
    ("GET", rf"/api/datasets/{REPO}/revision/(?P<rev>[^/]+)", _Handler.info),
    ("GET", rf"/api/datasets/{REPO}/refs", _Handler.refs),
    ("POST", rf"/api/datasets/{REPO}/preupload/(?P<rev>[^/]+)", _Handler.preupload),
    ("POST", rf"/api/datasets/{REPO}/commit/(?P<rev>[^/]+)", _Handler.commit),
    ("POST", rf"/api/datasets/{REPO}/tag/(?P<rev>[^/]+)", _Handler.tag),
    ("GET", rf"/api/datasets/{REPO}/tree/(?P<rev>[^/]+)(?:/(?P<path>.*))?", _Handler.tree),
    ("POST", rf"/api/datasets/{REPO}/paths-info/(?P<rev>[^/]+)", _Handler.paths_info),
    ("GET", rf"/datasets/{REPO}/resolve/(?P<rev>[^/]+)/(?P<path>.+)", _Handler.resolve),
]
