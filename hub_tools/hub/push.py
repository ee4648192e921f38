"""Publish a repo folder (dataset, model or space) to the Hub, or to a local mirror of the Hub.

Remote mode makes ONE `create_commit` holding every addition and deletion, so the remote mirrors the
folder and an interrupted push leaves the branch at its previous commit (`upload_folder` is not used:
with hf_xet installed it may split a large folder into several commits). huggingface_hub drops files
whose content the remote already has, and a push with nothing left makes no commit, so pushing an
unchanged folder is a no-op (`changed=False`). Local mode (`hub_dir`, the offline default) copies the
folder to `<hub_dir>/datasets/<org>/<name>/` (the Hub's namespaces), swapping it in atomically (mirror.py:
that path is a link to the current complete version, replaced in one step), and
`datasets.load_dataset(<that path>, config)` reads it as it would read the Hub repo.

The token comes from the argument or huggingface_hub's standard places (HF_TOKEN, `hf auth login`) and
never appears in logs or errors: every failure is re-raised as a `PushError` whose text is redacted.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import PsycoprefError
from . import mirror

logger = logging.getLogger("psycopref")

REPO_TYPES = ("dataset", "model", "space")  # the Hub's repo types, in the order the CLI lists them
IGNORED = (".git/*", "*/.git/*", ".cache/huggingface/*", "*/.cache/huggingface/*")  # never published
KEEP_REMOTE = (".gitattributes",)  # created by the Hub with the repo; a push never deletes it
_TOKEN_LIKE = re.compile(r"hf_[A-Za-z0-9]{20,}")  # shape of a Hugging Face access token
_BEARER = re.compile(r"(?i)(bearer\s+)\S+")  # an Authorization header value echoed in an error


class PushError(PsycoprefError, RuntimeError):
    """A push that failed; the message never contains the access token."""


@dataclass(frozen=True)
class ServerCopies:
    """Files a push takes from another revision of the same repo by server-side copy (`CommitOperationCopy`):
    LFS files (weights, parquet) promoted from a candidate branch without passing through this machine.
    `files`: repo path -> sha256 of the LFS object at `revision` (a commit id, so a moved branch changes nothing)."""

    revision: str
    files: dict[str, str]


@dataclass(frozen=True)
class PushResult:
    """Where the folder went, the commit now at the pushed revision, and whether this push changed it.

    In local mode `commit_id` is the sha1 of the folder's content (a stand-in for a commit id).
    """

    url: str
    commit_id: str
    changed: bool


def resolve_token(token: str | None = None) -> str | None:
    """The token huggingface_hub will use: `token`, else HF_TOKEN, else the one saved by `hf auth login`."""
    if token:
        return token
    from huggingface_hub import get_token  # lazy: HF_ENDPOINT is read when huggingface_hub is imported

    return get_token()


def redact(text: str, token: str | None) -> str:
    """`text` with `token`, anything shaped like an HF token and any bearer credential replaced by ***."""
    if token:
        text = text.replace(token, "***")
    return _BEARER.sub(r"\1***", _TOKEN_LIKE.sub("***", text))


def push_folder(
    folder: str | Path,
    repo_id: str,
    repo_type: str = "dataset",
    *,
    private: bool = False,
    revision: str | None = None,
    tag: str | None = None,
    commit_message: str | None = None,
    token: str | None = None,
    hub_dir: str | Path | None = None,
    overwrite_tag: bool = False,
    space_sdk: str | None = None,
    copies: ServerCopies | None = None,
) -> PushResult:
    """Publish `folder` as `repo_id` on the Hub (hub_dir None) or into the local mirror `hub_dir`.

    `revision` is the branch to commit to (created from main when missing; default main); `tag` tags
    the resulting commit (already on that commit: fine; elsewhere: error unless `overwrite_tag`).
    `private` applies only when the repo is created, as on the Hub, and so does `space_sdk` (the Space's SDK,
    e.g. "gradio"; the Hub requires one to create a Space). `copies` (Hub only): files of the repo at another
    revision that join the same commit by server-side copy, so a release promotes weights without downloading them.
    """
    folder = Path(folder)
    if not folder.is_dir() or not published_files(folder):  # an empty push would delete the whole repo
        raise PushError(f"{folder} is not a folder with files: nothing to push")
    if repo_type not in REPO_TYPES:
        raise PushError(f"repo_type {repo_type!r} is not one of {', '.join(REPO_TYPES)}")
    if repo_id.count("/") != 1 or not all(repo_id.split("/")):
        raise PushError(f"repo_id {repo_id!r} must be '<org>/<name>'")
    if hub_dir is not None:
        if revision or tag or copies:
            raise PushError("revision and tag need the Hub: a local mirror (hub_dir) keeps one version"
                            + (" and has no server-side copies" if copies else ""))
        return _push_local(folder, repo_id, repo_type, Path(hub_dir))
    secret = resolve_token(token)
    try:
        return _push_remote(folder, repo_id, repo_type, private, revision, tag, commit_message, token,
                            overwrite_tag, space_sdk, copies)
    except PushError as err:
        raise PushError(redact(str(err), secret)) from None
    except Exception as err:  # any client, HTTP or I/O failure: re-raised scrubbed, the chain inlined
        raise PushError(redact(f"push of {folder} to {repo_id} failed: {_describe(err)}", secret)) from None


def _describe(err: BaseException) -> str:
    """`err` and the errors that caused it, on one line as the CLI promises (the chain itself is dropped: it
    is not scrubbed); HTTP errors' multi-line bodies are folded into that line."""
    parts, seen = [], set()
    while err is not None and id(err) not in seen and len(parts) < 4:  # a few causes are enough to debug
        seen.add(id(err))
        parts.append(" ".join(f"{type(err).__name__}: {err}".split()))
        err = err.__cause__ or err.__context__
    return "; caused by ".join(parts)


def published_files(folder: Path) -> dict[str, Path]:
    """Repo path → file for every file of `folder` that gets published, sorted."""
    from fnmatch import fnmatch

    files = {p.relative_to(folder).as_posix(): p for p in sorted(folder.rglob("*")) if p.is_file()}
    return {rel: p for rel, p in files.items() if not any(fnmatch(rel, pat) for pat in IGNORED)}


def _push_remote(folder: Path, repo_id: str, repo_type: str, private: bool, revision: str | None,
                 tag: str | None, commit_message: str | None, token: str | None, overwrite_tag: bool,
                 space_sdk: str | None = None, copies: ServerCopies | None = None) -> PushResult:
    from huggingface_hub import CommitOperationAdd, CommitOperationCopy, CommitOperationDelete, HfApi

    api = HfApi(token=token)  # token None: huggingface_hub finds it (HF_TOKEN, `hf auth login`)
    sdk = {"space_sdk": space_sdk} if repo_type == "space" else {}
    url = str(api.create_repo(repo_id, repo_type=repo_type, private=private, exist_ok=True, **sdk))
    branch = revision or "main"  # the Hub's default branch
    if revision:
        api.create_branch(repo_id, branch=revision, repo_type=repo_type, exist_ok=True)
    before = api.repo_info(repo_id, repo_type=repo_type, revision=branch).sha
    local = published_files(folder)
    copied = {} if copies is None else {p: sha for p, sha in copies.files.items() if p not in local}
    tags = {t.name: t.target_commit for t in api.list_repo_refs(repo_id, repo_type=repo_type).tags}
    if tag in tags and not overwrite_tag and (tags[tag] != before or not _same_as_remote(api, repo_id, repo_type,
                                                                                         before, local, copied)):
        raise PushError(f"tag {tag!r} of {repo_id} is on {tags[tag][:12]}, not on the commit this push would "
                        f"make on {branch}; pass overwrite_tag=True to move it")  # refused before committing
    remote = api.list_repo_files(repo_id, repo_type=repo_type, revision=before)
    operations = [CommitOperationDelete(path) for path in remote
                  if path not in local and path not in copied and path not in KEEP_REMOTE]
    operations += [CommitOperationAdd(path_in_repo=rel, path_or_fileobj=str(path)) for rel, path in local.items()]
    operations += [CommitOperationCopy(src_path_in_repo=rel, path_in_repo=rel, src_revision=copies.revision)
                   for rel in copied]  # huggingface_hub drops a copy whose target already has that object
    info = api.create_commit(
        repo_id, operations, repo_type=repo_type, revision=branch, parent_commit=before,
        commit_message=commit_message or f"Upload {folder.name} with psycopref",
    )
    changed = info.oid != before
    logger.info("%s %s@%s: %s", "pushed" if changed else "unchanged", repo_id, branch, info.oid)
    if tag and tags.get(tag) != info.oid:
        if tag in tags:
            if not overwrite_tag:
                raise PushError(f"committed {info.oid[:12]} to {repo_id}@{branch}, but tag {tag!r} is on "
                                f"{tags[tag][:12]}; pass overwrite_tag=True to move it")
            api.delete_tag(repo_id, tag=tag, repo_type=repo_type)
        api.create_tag(repo_id, tag=tag, revision=info.oid, repo_type=repo_type)
        logger.info("tagged %s@%s as %s", repo_id, info.oid, tag)
    return PushResult(url=url, commit_id=info.oid, changed=changed)


def _same_as_remote(api, repo_id: str, repo_type: str, revision: str, local: dict[str, Path],
                    copied: dict[str, str] | None = None) -> bool:
    """Whether `local` plus the server-side `copied` files (path -> sha256) equal the remote tree at `revision`
    (so a push would make no commit)."""
    from huggingface_hub import RepoFile
    from huggingface_hub.utils.sha import git_hash

    tree = api.list_repo_tree(repo_id, repo_type=repo_type, revision=revision, recursive=True)
    remote = {f.path: f for f in tree if isinstance(f, RepoFile) and (f.path in local or f.path not in KEEP_REMOTE)}
    copied = copied or {}
    if set(remote) != set(local) | set(copied):
        return False
    if any(remote[rel].lfs is None or remote[rel].lfs.sha256 != sha for rel, sha in copied.items()):
        return False
    for rel, path in local.items():
        f = remote[rel]
        if (f.lfs.sha256 if f.lfs else f.blob_id) != (_sha256(path) if f.lfs else git_hash(path.read_bytes())):
            return False
    return True


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _hashes(folder: Path) -> dict[str, str]:
    """Repo path -> sha256 of every published file of `folder`."""
    return {rel: _sha256(path) for rel, path in published_files(folder).items()}


def _combined(hashes: dict[str, str]) -> str:
    """sha1 over the files' paths and contents: equal digests mean identical repos."""
    outer = hashlib.sha1()
    for rel, sha in sorted(hashes.items()):
        outer.update(f"{rel}\0{sha}\n".encode())
    return outer.hexdigest()


def _digest(folder: Path) -> str:
    return _combined(_hashes(folder))


def _push_local(folder: Path, repo_id: str, repo_type: str, hub_dir: Path) -> PushResult:
    """Copy `folder` to `<hub_dir>/<repo_type>s/<org>/<name>`, swapped in atomically (mirror.py)."""
    dest = hub_dir / f"{repo_type}s" / repo_id
    try:
        current = mirror.prepare(dest, hub_dir)  # also clears what killed pushes left
        new = _hashes(folder)
        digest = _combined(new)
        old = _hashes(current) if current else {}
        if current and _combined(old) == digest:
            return PushResult(url=str(dest), commit_id=digest, changed=False)
        unchanged = {rel: current / rel for rel, sha in new.items() if current and old.get(rel) == sha}
        mirror.swap_in(dest, hub_dir, published_files(folder), digest, unchanged)
    except OSError as err:
        raise PushError(f"copying {folder} to {dest} failed ({err}); {dest} keeps its previous version") from err
    logger.info("mirrored %s to %s (%s)", folder, dest, digest)
    return PushResult(url=str(dest), commit_id=digest, changed=True)


def report(result: PushResult) -> str:
    """One line saying what a push did."""
    return f"{'pushed' if result.changed else 'unchanged'}: {result.url} ({result.commit_id})"
