"""A local stand-in for the Hugging Face Hub's HTTP API, for tests of the real huggingface-hub client.

Speaks the few endpoints ``ftwiz pull`` uses, as huggingface.co answers them:
- ``GET /api/models/{repo}[/revision/{rev}]``: model info with ``sha``, ``siblings`` (size, blobId, lfs)
- ``HEAD|GET /{repo}/resolve/{rev}/{file}``: small files answered directly with ``ETag`` (git blob sha1);
  LFS files (*.safetensors) by a 302 to the CDN's ``/cdn/{sha256}`` with ``X-Linked-Etag``/``X-Linked-Size``,
  both with ``X-Repo-Commit``; the CDN honours ``Range`` (206 + Content-Range)
- a gated repo: 401 without a token, 403 with one lacking access (``X-Error-Code: GatedRepo``)
- a missing repo: 404 ``X-Error-Code: RepoNotFound``; a missing revision: 404 ``RevisionNotFound``

``cut_once[file] = n`` makes the next download of ``file`` stop after n bytes (connection closed with the
full Content-Length promised): what a dropped connection looks like to the client. Binds 127.0.0.1 only.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlparse

GRANTED_TOKEN = "hf_granted"
REPO = "TinyOrg/tiny-chat"


def model_files(model_dir: Path) -> dict[str, bytes]:
    """A model folder's files as a hub repo holds them, plus what a real repo also has and ftwiz must skip."""
    files = {p.name: p.read_bytes() for p in model_dir.iterdir() if p.is_file()}
    files["README.md"] = b"---\nlicense: apache-2.0\n---\n# tiny\n"
    files["pytorch_model.bin"] = b"pickled weights must never be downloaded" * 50
    files["original/consolidated.00.pth"] = b"meta's original checkpoint" * 50
    return files



def git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass
class FakeRepo:
    commit: str
    files: dict[str, bytes]
    gated: bool = False
    licence: str = "apache-2.0"
    old_commits: dict[str, dict[str, bytes]] = field(default_factory=dict)

    def at(self, revision: str) -> tuple[str, dict[str, bytes]] | None:
        if revision in ("main", self.commit):
            return self.commit, self.files
        if revision in self.old_commits:
            return revision, self.old_commits[revision]
        return None


def is_lfs(name: str) -> bool:
    return name.endswith((".safetensors", ".bin", ".gguf"))


class FakeHub:
    def __init__(self) -> None:
        self.repos: dict[str, FakeRepo] = {}
        self.cut_once: dict[str, int] = {}
        self.requests: list[tuple[str, str, str | None]] = []  # (method, path, Range header)
        self.delay_s = 0.0     # per 64 KiB chunk of LFS bodies: lets a test cancel mid-file
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        # LFS files come from a CDN on another origin, as on huggingface.co: huggingface-hub follows
        # redirects on the hub's own origin and reads the metadata off a redirect leaving it.
        self.cdn = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.threads = [threading.Thread(target=s.serve_forever, args=(0.05,), daemon=True) for s in (self.server, self.cdn)]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def publish(self, repo_id: str, files: dict[str, bytes], *, commit: str | None = None, gated: bool = False) -> str:
        """Add or update a repo; an update keeps the previous commit reachable by its hash."""
        commit = commit or hashlib.sha1(repr(sorted((k, git_blob_sha1(v)) for k, v in files.items())).encode()
                                        + repo_id.encode()).hexdigest()
        old = self.repos.get(repo_id)
        repo = FakeRepo(commit, dict(files), gated=gated)
        if old:
            repo.old_commits = {**old.old_commits, old.commit: old.files}
        self.repos[repo_id] = repo
        return commit

    def blob(self, sha256: str) -> bytes | None:
        for repo in self.repos.values():
            for files in (repo.files, *repo.old_commits.values()):
                for data in files.values():
                    if hashlib.sha256(data).hexdigest() == sha256:
                        return data
        return None

    def lfs_gets(self, name_sha: str) -> list[str | None]:
        """Range headers of the CDN GETs for the blob with this sha256 (None: whole file)."""
        return [rng for method, path, rng in self.requests if method == "GET" and path == f"/cdn/{name_sha}"]

    @property
    def cdn_url(self) -> str:
        return f"http://127.0.0.1:{self.cdn.server_address[1]}"

    def __enter__(self) -> FakeHub:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        for server in (self.server, self.cdn):
            server.shutdown()
            server.server_close()

    def _handler(self):
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # quiet test output
                pass

            def do_HEAD(self) -> None:
                self._route(body=False)

            def do_GET(self) -> None:
                self._route(body=True)

            def _error(self, status: int, code: str, message: str) -> None:
                payload = json.dumps({"error": message}).encode()
                self.send_response(status)
                self.send_header("X-Error-Code", code)
                self.send_header("X-Error-Message", message)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if self.command != "HEAD":  # a HEAD answer has headers only
                    self.wfile.write(payload)

            def _json(self, data: dict) -> None:
                payload = json.dumps(data).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def _route(self, body: bool) -> None:
                path = unquote(urlparse(self.path).path)
                hub.requests.append((self.command, path, self.headers.get("Range")))
                if m := re.fullmatch(r"/api/models/([^/]+/[^/]+)(?:/revision/(.+))?", path):
                    return self._info(m.group(1), m.group(2) or "main")
                if m := re.fullmatch(r"/([^/]+/[^/]+)/resolve/([^/]+)/(.+)", path):
                    return self._resolve(m.group(1), m.group(2), m.group(3), body)
                if m := re.fullmatch(r"/cdn/([0-9a-f]{64})", path):
                    return self._cdn(m.group(1), body)
                self._error(404, "EntryNotFound", "no such endpoint")

            def _info(self, repo_id: str, revision: str) -> None:
                repo = hub.repos.get(repo_id)
                if repo is None:
                    return self._error(404, "RepoNotFound", "Repository not found")
                found = repo.at(revision)
                if found is None:
                    return self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
                commit, files = found
                siblings = []
                for name, data in files.items():
                    entry = {"rfilename": name, "size": len(data), "blobId": git_blob_sha1(data)}
                    if is_lfs(name):
                        entry["lfs"] = {"size": len(data), "sha256": hashlib.sha256(data).hexdigest(),
                                        "pointerSize": 134}
                    siblings.append(entry)
                self._json({"id": repo_id, "modelId": repo_id, "sha": commit, "private": False,
                            "gated": "manual" if repo.gated else False, "disabled": False, "downloads": 0,
                            "likes": 0, "tags": [], "cardData": {"license": repo.licence}, "siblings": siblings})

            def _resolve(self, repo_id: str, revision: str, name: str, body: bool) -> None:
                repo = hub.repos.get(repo_id)
                if repo is None:
                    return self._error(404, "RepoNotFound", "Repository not found")
                if repo.gated and self.headers.get("Authorization") != f"Bearer {GRANTED_TOKEN}":
                    status = 403 if self.headers.get("Authorization") else 401
                    return self._error(status, "GatedRepo", "Access to model is restricted. You must have "
                                       "access to it and be authenticated to access it. Please log in.")
                found = repo.at(revision)
                if found is None:
                    return self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
                commit, files = found
                if name not in files:
                    return self._error(404, "EntryNotFound", f"{name} does not exist")
                data = files[name]
                if is_lfs(name):
                    sha = hashlib.sha256(data).hexdigest()
                    self.send_response(302)
                    self.send_header("Location", f"{hub.cdn_url}/cdn/{sha}")
                    self.send_header("X-Repo-Commit", commit)
                    self.send_header("X-Linked-Etag", f'"{sha}"')
                    self.send_header("X-Linked-Size", str(len(data)))
                    self.send_header("ETag", f'"{git_blob_sha1(data)}"')
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return None
                self.send_response(200)
                self.send_header("X-Repo-Commit", commit)
                self.send_header("ETag", f'"{git_blob_sha1(data)}"')
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if body:
                    self.wfile.write(data)
                return None

            def _cdn(self, sha: str, body: bool) -> None:
                data = hub.blob(sha)
                if data is None:
                    return self._error(404, "EntryNotFound", "no such blob")
                start = 0
                rng = self.headers.get("Range")
                if rng and (m := re.fullmatch(r"bytes=(\d+)-(\d*)", rng)):
                    start = int(m.group(1))
                part = data[start:]
                self.send_response(206 if start else 200)
                if start:
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                self.send_header("ETag", f'"{sha}"')
                self.send_header("Accept-Ranges", "bytes")
                self.send_header("Content-Length", str(len(part)))
                self.end_headers()
                if not body:
                    return None
                name = next((n for repo in hub.repos.values() for n, d in repo.files.items() if d is data), "")
                cut = hub.cut_once.pop(name, None)
                if cut is not None:  # promise everything, send some, hang up
                    self.wfile.write(part[:cut])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return None
                try:
                    for offset in range(0, len(part), 1 << 16):
                        self.wfile.write(part[offset:offset + (1 << 16)])
                        if hub.delay_s:
                            time.sleep(hub.delay_s)
                except (BrokenPipeError, ConnectionResetError):  # the client cancelled: expected
                    self.close_connection = True
                return None

        return Handler
