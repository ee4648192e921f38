"""A small stand-in for the Hugging Face Hub HTTP API, for tests (no Hub can be reached here).

It implements the calls huggingface_hub 2.4 and datasets 5.2 make to create a repo, commit regular
and LFS files, branch, tag, list and download, so `create_commit`/`upload_folder`, `push_to_hub` and
`load_dataset("Org/Name", config)` run unmodified against it. Git is modelled, not stored: a commit is
a {path: blob} snapshot whose id is the sha1 of its parent, message, time and tree. Every uploaded
file's bytes land in `<root>/blobs/<sha256>` (see `FakeHub.uploaded_files`), so tests can inspect
exactly what left the client, and every file body it serves is recorded in `FakeHub.served`, so tests can
assert what came down (a release's promotion downloads no weights). Writes need `Authorization: Bearer
<token>`; a wrong token is a 401. The state (repos, commits, refs, blobs) lives in hub_state.py.

Uploads go through the LFS batch API (basic transfer: PUT, then verify) and regular files inline in the
commit; an `lfsFile` line naming an object the repo already holds is a server-side copy (what
`CommitOperationCopy` sends: huggingface_hub reads the source's paths-info, then commits its oid; regular files
it copies by downloading them). The server has no Xet storage (no CAS server for hf_xet's chunk, xorb and shard uploads), and
huggingface_hub 2.x uploads through Xet whenever hf_xet is installed, without asking the server, so clients set
HF_HUB_DISABLE_XET=1; the Xet token routes answer 501 saying so (tests/hub/test_upload_path.py pins both paths).

Clients read HF_ENDPOINT and HF_HUB_DISABLE_XET when huggingface_hub is imported, so they run in a
subprocess (`run_client`) with `hub.env(hf_home)`:

    with serve_hub(tmp_path) as hub:
        run_client("from huggingface_hub import HfApi; ...", hub.env(tmp_path / "home"))
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs

import uvicorn
import yaml
from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, Response

from hub_state import (  # noqa: F401  (TOKEN, HubError, FakeHub: re-exported for the tests)
    GITATTRIBUTES,
    KINDS,
    LFS_MIN_SIZE,
    LFS_SUFFIXES,
    PREFIX,
    TOKEN,
    FakeHub,
    HubError,
    Repo,
    _entry,
    _front_matter,
)


def create_app(hub: FakeHub) -> FastAPI:
    """The FastAPI app: one route per Hub endpoint the clients call."""
    app = FastAPI()
    api = "/api/{kind}/{ns}/{name}"  # kind: models, datasets, spaces

    @app.middleware("http")
    async def log_requests(request: Request, call_next):
        hub.requests.append(f"{request.method} {request.url.path}")
        return await call_next(request)

    def get_repo(request: Request, kind: str, ns: str, name: str, write: bool = False) -> Repo:
        if kind not in KINDS:
            raise HubError(404, f"Unknown repo kind {kind}")
        return hub.repo(request, KINDS[kind], f"{ns}/{name}", write)

    def base(request: Request) -> str:
        return str(request.base_url).rstrip("/")

    @app.get("/api/whoami-v2")
    def whoami(request: Request):
        hub.auth(request, write=True)
        return {"type": "user", "name": "tester", "orgs": [], "auth": {"accessToken": {"role": "write"}}}

    @app.post("/api/repos/create")
    async def create_repo(request: Request):
        hub.auth(request, write=True)
        body = await request.json()
        rtype, repo_id = body.get("type") or "model", f"{body.get('organization') or 'tester'}/{body['name']}"
        url = f"{base(request)}/{PREFIX[rtype]}{repo_id}"
        with hub.lock:
            if (rtype, repo_id) in hub.repos:
                return JSONResponse({"error": "You already created this repo", "url": url}, 409)
            if rtype == "space" and not body.get("sdk"):
                raise HubError(400, "Invalid request: 'sdk' is required to create a Space")
            hub.repos[(rtype, repo_id)] = repo = Repo(rtype, repo_id, body.get("visibility") == "private",
                                                      sdk=body.get("sdk"))
            hub.new_commit(repo, "main", {".gitattributes": hub.put_blob(GITATTRIBUTES, False)}, "initial commit")
        return {"url": url, "name": repo_id, "id": repo_id}

    @app.post("/api/validate-yaml")
    async def validate_yaml(request: Request):
        try:
            _front_matter((await request.json()).get("content", ""))
        except yaml.YAMLError as err:
            return JSONResponse({"errors": [{"message": f"Invalid YAML: {err}"}]}, 400)
        return {"warnings": []}

    @app.get(api)
    @app.get(api + "/revision/{rev:path}")
    def repo_info(request: Request, kind: str, ns: str, name: str, rev: str = "main"):
        repo = get_repo(request, kind, ns, name)
        commit, first = hub.resolve(repo, rev), min(repo.commits.values(), key=lambda c: c.date)
        readme = commit.files.get("README.md")
        siblings = [{"rfilename": p, "size": b.size, "blobId": b.git_oid,
                     "lfs": b.lfs_info("sha256") if b.lfs else None} for p, b in sorted(commit.files.items())]
        return {"_id": hashlib.sha1(repo.repo_id.encode()).hexdigest()[:24], "id": repo.repo_id, "author": ns,
                "sha": commit.oid, "lastModified": commit.date, "createdAt": first.date, "private": repo.private,
                "gated": False, "disabled": False, "downloads": 0, "likes": 0, "tags": [],
                "cardData": _front_matter(hub.blob_path(readme).read_text()) if readme else None, "siblings": siblings,
                **({"sdk": repo.sdk} if repo.sdk else {})}

    @app.get(api + "/tree/{rev}")
    @app.get(api + "/tree/{rev}/{path:path}")
    def tree(request: Request, kind: str, ns: str, name: str, rev: str, path: str = "",
             recursive: bool = False, expand: bool = False):
        commit, path = hub.resolve(get_repo(request, kind, ns, name), rev), path.strip("/")
        if path and _entry(commit, path, False) is None:
            raise HubError(404, f"{path} does not exist on {rev}", "EntryNotFound")
        prefix, children = f"{path}/" if path else "", set()
        for p in commit.files:
            if p.startswith(prefix):
                parts = p[len(prefix):].split("/")
                children.update(prefix + "/".join(parts[: i + 1]) for i in range(len(parts) if recursive else 1))
        return [_entry(commit, p, expand) for p in sorted(children)]

    @app.post(api + "/paths-info/{rev}")
    async def paths_info(request: Request, kind: str, ns: str, name: str, rev: str):
        commit = hub.resolve(get_repo(request, kind, ns, name), rev)
        form = parse_qs((await request.body()).decode())  # sent form-encoded: paths=a&paths=b&expand=True
        expand = form.get("expand", ["false"])[0].lower() == "true"
        found = (_entry(commit, p.strip("/"), expand) for p in form.get("paths", []))
        return [e for e in found if e is not None]

    @app.get(api + "/refs")
    def refs(request: Request, kind: str, ns: str, name: str):
        repo = get_repo(request, kind, ns, name)
        def fmt(refs: dict, kind: str):
            return [{"name": n, "ref": f"refs/{kind}/{n}", "targetCommit": o} for n, o in sorted(refs.items())]
        return {"branches": fmt(repo.branches, "heads"), "tags": fmt(repo.tags, "tags"), "converts": [],
                "pullRequests": []}

    @app.get(api + "/commits/{rev}")
    def commits(request: Request, kind: str, ns: str, name: str, rev: str):
        repo = get_repo(request, kind, ns, name)
        out, commit = [], hub.resolve(repo, rev)
        while commit is not None:
            out.append({"id": commit.oid, "title": commit.title, "message": commit.message,
                        "authors": [{"user": "tester"}], "date": commit.date})
            commit = repo.commits.get(commit.parent) if commit.parent else None
        return out

    @app.post(api + "/branch/{branch}")
    async def create_branch(request: Request, kind: str, ns: str, name: str, branch: str):
        repo = get_repo(request, kind, ns, name, write=True)
        start = (await request.json() if await request.body() else {}).get("startingPoint") or "main"
        with hub.lock:
            if branch in repo.branches:
                raise HubError(409, f"Branch {branch} already exists")
            repo.branches[branch] = hub.resolve(repo, start).oid
        return {}

    @app.post(api + "/tag/{rev}")
    async def create_tag(request: Request, kind: str, ns: str, name: str, rev: str):
        repo = get_repo(request, kind, ns, name, write=True)
        tag = (await request.json())["tag"]
        with hub.lock:
            if tag in repo.tags:
                raise HubError(409, f"Tag {tag} already exists")
            repo.tags[tag] = hub.resolve(repo, rev).oid
        return {}

    @app.delete(api + "/{ref_kind}/{ref}")
    def delete_ref(request: Request, kind: str, ns: str, name: str, ref_kind: str, ref: str):
        repo = get_repo(request, kind, ns, name, write=True)
        refs = {"branch": repo.branches, "tag": repo.tags}.get(ref_kind)
        if refs is None or refs.pop(ref, None) is None:
            raise HubError(404, f"{ref_kind} {ref} not found", "RevisionNotFound")
        return {}

    @app.get(api + "/xet-write-token/{rev:path}")
    @app.get(api + "/xet-read-token/{rev:path}")
    def xet_token(request: Request, kind: str, ns: str, name: str, rev: str):
        get_repo(request, kind, ns, name)
        raise HubError(501, "this test Hub has no Xet storage: set HF_HUB_DISABLE_XET=1 to upload through LFS")

    @app.post(api + "/preupload/{rev}")
    async def preupload(request: Request, kind: str, ns: str, name: str, rev: str):
        commit = hub.resolve(get_repo(request, kind, ns, name, write=True), rev)
        files = []
        for f in (await request.json())["files"]:
            binary = b"\0" in base64.b64decode(f["sample"])
            lfs = f["path"].endswith(LFS_SUFFIXES) or f["size"] >= LFS_MIN_SIZE or binary
            old = commit.files.get(f["path"])  # the client skips files whose oid matches its own hash
            oid = None if old is None else old.sha256 if old.lfs else old.git_oid
            files.append({"path": f["path"], "uploadMode": "lfs" if lfs else "regular", "shouldIgnore": False,
                          "oid": oid})
        return {"files": files, "commitOid": commit.oid}

    @app.post(api + "/commit/{rev}")
    async def commit(request: Request, kind: str, ns: str, name: str, rev: str):
        repo = get_repo(request, kind, ns, name, write=True)
        if request.query_params.get("create_pr"):
            raise HubError(400, "Pull requests are not supported by the test hub")
        lines = [json.loads(line) for line in (await request.body()).splitlines() if line.strip()]
        with hub.lock:
            if rev not in repo.branches:
                raise HubError(404, f"Invalid rev id: {rev} (not a branch)", "RevisionNotFound")
            head = hub.resolve(repo, rev)
            files, header = dict(head.files), {}
            for line in lines:  # validate everything before moving the branch: a commit is atomic
                key, value = line["key"], line["value"]
                if key == "header":
                    header = value
                    if value.get("parentCommit") and not head.oid.startswith(value["parentCommit"]):
                        raise HubError(412, "A commit has happened since parentCommit")
                elif key == "file":
                    files[value["path"]] = hub.put_blob(base64.b64decode(value["content"]), lfs=False)
                elif key == "lfsFile":
                    if value["oid"] not in repo.lfs:
                        raise HubError(422, f"LFS object {value['oid']} of {value['path']} was never uploaded")
                    files[value["path"]] = hub.lfs_blob(value["oid"])
                elif key == "deletedFile":
                    if files.pop(value["path"], None) is None:
                        raise HubError(404, f"A file with this name doesn't exist: {value['path']}", "EntryNotFound")
                elif key == "deletedFolder":
                    files = {p: b for p, b in files.items() if not p.startswith(value["path"].rstrip("/") + "/")}
                else:
                    raise HubError(400, f"Unknown commit operation {key!r}")
            new = hub.new_commit(repo, rev, files, header.get("summary", ""), header.get("description", ""))
        url = f"{base(request)}/{PREFIX[repo.rtype]}{repo.repo_id}/commit/{new.oid}"
        return {"success": True, "commitOid": new.oid, "commitUrl": url, "pullRequestUrl": None}

    @app.api_route("/__lfs/{rtype}/{ns}/{name}/{oid}", methods=["PUT", "POST"])
    async def lfs_object(request: Request, rtype: str, ns: str, name: str, oid: str):
        """PUT: the upload (unauthenticated, like a presigned S3 URL); POST: the verify call."""
        repo = hub.repos.get((rtype, f"{ns}/{name}"))
        if repo is None:
            raise HubError(404, "Repository not found", "RepoNotFound")
        if request.method == "POST":
            hub.repo(request, rtype, repo.repo_id, write=True)
            if oid not in repo.lfs:
                raise HubError(404, f"LFS object {oid} not found")
            return {}
        if hub.fail_lfs_uploads:
            raise HubError(403, "LFS storage refused the upload (simulated failure)")
        data = await request.body()
        if hashlib.sha256(data).hexdigest() != oid:
            raise HubError(400, f"Uploaded content does not match sha256 {oid}")
        hub.put_blob(data, lfs=True)
        repo.lfs.add(oid)
        return Response(headers={"ETag": f'"{oid}"'})

    def lfs_batch(rtype: str):
        async def handler(request: Request, ns: str, name: str):
            repo = hub.repo(request, rtype, f"{ns}/{name}", write=True)
            objects = []
            for obj in (await request.json())["objects"]:
                out = {"oid": obj["oid"], "size": obj["size"], "authenticated": True}
                if obj["oid"] not in repo.lfs:  # LFS storage is per repo: upload what this repo lacks
                    href = f"{base(request)}/__lfs/{rtype}/{repo.repo_id}/{obj['oid']}"
                    out["actions"] = {"upload": {"href": href}, "verify": {"href": href}}
                objects.append(out)
            return JSONResponse({"transfer": "basic", "objects": objects}, media_type="application/vnd.git-lfs+json")
        return handler

    def resolve_file(rtype: str):
        def handler(request: Request, ns: str, name: str, rev: str, path: str):
            commit = hub.resolve(hub.repo(request, rtype, f"{ns}/{name}"), rev)
            blob = commit.files.get(path)
            if blob is None:
                raise HubError(404, f"Entry not found: {path}", "EntryNotFound")
            headers = {"X-Repo-Commit": commit.oid, "ETag": f'"{blob.git_oid}"'}
            if blob.lfs:  # the Hub redirects LFS files to a CDN; it names them by these two headers
                headers.update({"X-Linked-Etag": f'"{blob.sha256}"', "X-Linked-Size": str(blob.size)})
            if request.method == "GET":  # HEAD requests carry no body
                hub.served.append((f"{ns}/{name}", path, blob.size, blob.lfs))
            return FileResponse(hub.blob_path(blob), headers=headers, media_type="application/octet-stream")
        return handler

    for rtype, prefix in PREFIX.items():  # git-side URLs: /<prefix><org>/<name>...
        app.add_api_route(f"/{prefix}{{ns}}/{{name}}.git/info/lfs/objects/batch", lfs_batch(rtype), methods=["POST"])
        app.add_api_route(f"/{prefix}{{ns}}/{{name}}/resolve/{{rev}}/{{path:path}}", resolve_file(rtype),
                          methods=["GET", "HEAD"])
    return app


@dataclass
class HubServer:
    """A running test Hub: `url` for HF_ENDPOINT, `hub` for its state, `env()` for client processes."""

    url: str
    hub: FakeHub

    def __str__(self) -> str:
        return self.url

    def env(self, hf_home: Path | str, token: str | None = None, disable_xet: bool = True) -> dict[str, str]:
        """Client environment; token None: the server's valid token, "": anonymous. `disable_xet` False keeps a
        user's default (hf_xet uploads whenever installed): right for a client that only downloads (the server
        never offers Xet for a download), refused for an upload (the server has no Xet storage)."""
        return client_env(self.url, self.hub.token if token is None else token, hf_home, disable_xet)


@contextlib.contextmanager
def serve_hub(root: Path | str, token: str = TOKEN):
    """Serve a fresh test Hub (state under `root`) on 127.0.0.1 in a background thread; yield a HubServer."""
    hub = FakeHub(Path(root) / "hub-storage", token)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))  # a free port chosen by the OS, kept bound so nobody else takes it
    server = uvicorn.Server(uvicorn.Config(create_app(hub), log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15  # seconds to wait for uvicorn to start
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("test Hub server did not start")
        time.sleep(0.02)
    try:
        yield HubServer(f"http://127.0.0.1:{sock.getsockname()[1]}", hub)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def client_env(url: str, token: str | None, hf_home: Path | str, disable_xet: bool = True) -> dict[str, str]:
    """Environment for a client process that talks to the test Hub (and to no other), with `token`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING_FACE"))}
    env.update({"HF_ENDPOINT": url, "HF_HOME": str(hf_home), "HF_HUB_OFFLINE": "0",
                "HF_DATASETS_OFFLINE": "0", "HF_HUB_DISABLE_TELEMETRY": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1",
                "HF_DATASETS_DISABLE_PROGRESS_BARS": "1", "NO_PROXY": "127.0.0.1,localhost"})
    if disable_xet:  # the server has no Xet storage: uploads take the LFS path (see the module docstring)
        env["HF_HUB_DISABLE_XET"] = "1"
    if token:  # None or "": an anonymous client
        env["HF_TOKEN"] = token
    return env


def run_client(script: str, env: dict[str, str], *args: str, timeout: float = 120, check: bool = True):
    """Run Python `script` (argv: `args`) in a fresh interpreter; with `check`, a failure shows its stderr."""
    cmd = [sys.executable, "-c", script, *args]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"client script failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return proc
