"""The test Hub's state (tests/helpers/hub_server.py serves it over HTTP): repos, commits, refs and a
content-addressed blob store, and the JSON views of them the routes share. Git is modelled, not stored: a commit
is a {path: blob} snapshot whose id is the sha1 of its parent, message, time and tree."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import yaml
from fastapi import HTTPException, Request

TOKEN = "hf_testHubTokenDoNotLeak0123456789"  # fake write token the server accepts by default
LFS_SUFFIXES = (".parquet", ".arrow", ".bin", ".safetensors", ".gguf", ".pt", ".zip", ".gz")  # like .gitattributes
LFS_MIN_SIZE = 10 * 1024 * 1024  # the Hub stores files from 10 MB as LFS whatever their name
GITATTRIBUTES = "".join(f"*{s} filter=lfs diff=lfs merge=lfs -text\n" for s in LFS_SUFFIXES).encode()
PREFIX = {"model": "", "dataset": "datasets/", "space": "spaces/"}  # URL prefix of each repo type
KINDS = {"models": "model", "datasets": "dataset", "spaces": "space"}  # /api/<kind>/... → repo type


class HubError(HTTPException):
    """An HTTP error carrying the Hub's X-Error-Code header, which huggingface_hub maps to exceptions."""

    def __init__(self, status: int, message: str, code: str | None = None):
        headers = {"X-Error-Message": message, **({"X-Error-Code": code} if code else {})}
        super().__init__(status, message, headers)


@dataclass
class Blob:
    sha256: str
    size: int
    lfs: bool
    git_oid: str  # git blob id: of the content for regular files, of the LFS pointer for LFS files

    def lfs_info(self, sha_key: str = "oid") -> dict:
        """The LFS block of tree entries (sha_key "oid") and of repo-info siblings (sha_key "sha256")."""
        return {sha_key: self.sha256, "size": self.size, "pointerSize": len(_pointer(self.sha256, self.size))}


@dataclass
class Commit:
    oid: str
    parent: str | None
    title: str
    message: str
    date: str
    files: dict[str, Blob]


@dataclass
class Repo:
    rtype: str
    repo_id: str
    private: bool
    commits: dict[str, Commit] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    lfs: set[str] = field(default_factory=set)  # sha256 of the LFS objects uploaded to this repo
    sdk: str | None = None  # a Space's SDK ("gradio", ...), required when a Space is created, as on the Hub


def _pointer(sha256: str, size: int) -> bytes:
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()


def _git_hash(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _front_matter(text: str) -> dict | None:
    """The YAML block a README starts with (raises yaml.YAMLError when malformed)."""
    return yaml.safe_load(text.split("---", 2)[1]) if text.startswith("---") and text.count("---") >= 2 else None


class FakeHub:
    """The server's state: repos, commits, refs and a content-addressed blob store under `root`."""

    def __init__(self, root: Path, token: str = TOKEN):
        self.root, self.token = Path(root), token
        (self.root / "blobs").mkdir(parents=True, exist_ok=True)
        self.repos: dict[tuple[str, str], Repo] = {}  # (repo type, "org/name") → repo
        self.lock = threading.Lock()
        self.fail_lfs_uploads = False  # set True to make every LFS PUT fail (an interrupted push)
        self.echo_auth = False  # set True to echo the Authorization header in 401s (a leaky server)
        self.requests: list[str] = []  # "METHOD path" of every request, for debugging and assertions
        self.served: list[tuple[str, str, int, bool]] = []  # (repo id, path, bytes, LFS?) of every file body downloaded

    def put_blob(self, data: bytes, lfs: bool) -> Blob:
        sha = hashlib.sha256(data).hexdigest()
        (self.root / "blobs" / sha).write_bytes(data)
        return self.lfs_blob(sha) if lfs else Blob(sha, len(data), False, _git_hash(data))

    def lfs_blob(self, sha256: str) -> Blob:
        size = (self.root / "blobs" / sha256).stat().st_size
        return Blob(sha256, size, True, _git_hash(_pointer(sha256, size)))

    def blob_path(self, blob: Blob) -> Path:
        return self.root / "blobs" / blob.sha256

    def uploaded_files(self) -> list[Path]:
        """Every file body a client uploaded (regular and LFS), one file per distinct content."""
        return sorted((self.root / "blobs").iterdir())

    def auth(self, request: Request, write: bool) -> bool:
        """Writes need the token and a wrong token is always refused (401); True when authenticated."""
        header = request.headers.get("authorization")
        if (header is not None or write) and header != f"Bearer {self.token}":
            echo = f": {header}" if self.echo_auth else ""
            raise HubError(401, f"Invalid credentials in Authorization header{echo}")
        return header is not None

    def repo(self, request: Request, rtype: str, repo_id: str, write: bool = False) -> Repo:
        """The repo, after the auth check; a private repo is invisible without the token."""
        authorized = self.auth(request, write)
        repo = self.repos.get((rtype, repo_id))
        if repo is None or (repo.private and not authorized):
            raise HubError(404, f"Repository {repo_id} not found", "RepoNotFound")
        return repo

    def resolve(self, repo: Repo, rev: str) -> Commit:
        """A revision: branch, tag, or commit id (7+ leading hex digits)."""
        oid = repo.branches.get(rev) or repo.tags.get(rev)
        oid = oid or next((c for c in repo.commits if len(rev) >= 7 and c.startswith(rev)), None)
        if oid is None:
            raise HubError(404, f"Invalid rev id: {rev}", "RevisionNotFound")
        return repo.commits[oid]

    def new_commit(self, repo: Repo, branch: str, files: dict[str, Blob], title: str, message: str = "") -> Commit:
        parent, date = repo.branches.get(branch), datetime.now(UTC).isoformat(timespec="milliseconds")
        date = date.replace("+00:00", "Z")
        tree = sorted((path, blob.sha256) for path, blob in files.items())
        seed = json.dumps([parent, title, message, date, time.time_ns(), tree]).encode()  # unique, content-bound
        commit = Commit(hashlib.sha1(seed).hexdigest(), parent, title, message, date, dict(files))
        repo.commits[commit.oid] = commit
        repo.branches[branch] = commit.oid
        return commit


def _entry(commit: Commit, path: str, expand: bool) -> dict | None:
    """Tree/paths-info JSON for a file or folder of `commit`, None when absent."""
    if path in commit.files:
        blob = commit.files[path]
        out = {"type": "file", "oid": blob.git_oid, "size": blob.size, "path": path}
        if blob.lfs:
            out["lfs"] = blob.lfs_info()
    else:
        inside = sorted(f"{p}:{b.git_oid}" for p, b in commit.files.items() if p.startswith(path + "/"))
        if not inside:
            return None
        out = {"type": "directory", "oid": hashlib.sha1("\n".join(inside).encode()).hexdigest(), "path": path}
    return {**out, "lastCommit": {"id": commit.oid, "title": commit.title, "date": commit.date}} if expand else out
