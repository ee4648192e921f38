"""Staging and publishing a release's artifacts (`hub_tools.release.plan` plans them): each folder is fetched from
its candidate branch or built when missing, copied into the staging dir (big files hard-linked, so the build
folders never change), given its release cards, and pushed with the version tag (`hub.push.push_folder`).
A folder fetched for a release to the Hub is promoted there: its weights are copied server-side from the
candidate's commit in the commit that adds the release's cards, never downloaded and uploaded again.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from typing import Any

from ..hub.push import ServerCopies
from ..kinds import KINDS
from . import ReleaseError
from .cards import (
    check_dataset_folder,
    dataset_sections,
    model_sections,
    refresh_model_card,
    space_sections,
)

log = logging.getLogger("psycopref")
LINK_MIN_BYTES = 1 << 20  # data files from this size are hard-linked into the staging dir; the rest is copied
LINKED = (".safetensors", ".bin", ".parquet", ".arrow", ".gguf", ".pt")  # never edited by a release (cards, figures are)


def stage_space_folder(a, dest: Path, links=None) -> Path:
    """The Space folder staged at `dest` with the entry's config (a file of the folder, or a path); with the
    release's `links` and no config of its own, the release's Space (`arena.release_space`)."""
    from ..arena.cli import stage_space

    config = a.entry.config
    if config and not Path(config).is_file() and (a.folder / config).is_file():
        config = a.folder / config  # a file of the Space folder
    staged = stage_space(a.folder, Path(config) if config else None, dest)
    if links is not None and not config:
        from ..arena.release_space import stage_release_space

        stage_release_space(staged, a.repo_id, links)
    return staged


def _link_or_copy(src: str, dst: str) -> str:
    """Hard-link a big data file (weights, parquet) into the staging dir; copy anything else (cards and figures
    are rewritten there, and a rewrite in place must not reach the build folder through a link)."""
    if src.endswith(LINKED) and os.path.getsize(src) >= LINK_MIN_BYTES:
        try:
            os.link(src, dst)
            return dst
        except OSError:  # another file system, or links not allowed
            pass
    return shutil.copy2(src, dst)


def _fetch(a, staging: Path, server_side: bool) -> tuple[Path, ServerCopies | None]:
    """The artifact's folder from its repo at revision `fetch` (where a GPU machine pushed it). `server_side`
    (a release to the Hub, into the same repo): only the regular files come down (cards, recipe, results, configs:
    what the release reads and rewrites); the LFS files (weights, parquet) stay on the Hub and are promoted by
    server-side copy from the candidate's commit, in the same commit as the cards. Else everything comes down."""
    from huggingface_hub import HfApi, RepoFile, snapshot_download

    from ..hub.push import redact, resolve_token

    dest = staging / ".fetch" / a.name
    shutil.rmtree(dest, ignore_errors=True)
    try:
        copies, allow = None, None
        if server_side:
            api = HfApi()
            commit = api.repo_info(a.repo_id, repo_type=a.repo_type, revision=a.entry.fetch).sha
            tree = [f for f in api.list_repo_tree(a.repo_id, repo_type=a.repo_type, revision=commit, recursive=True)
                    if isinstance(f, RepoFile)]
            copies = ServerCopies(commit, {f.path: f.lfs.sha256 for f in tree if f.lfs})
            allow = [f.path for f in tree if not f.lfs]
        snapshot_download(a.repo_id, repo_type=a.repo_type, revision=copies.revision if copies else a.entry.fetch,
                          local_dir=dest, allow_patterns=allow)
    except Exception as err:  # any client or HTTP failure, re-raised without the token
        raise ReleaseError(redact(f"artifact {a.name}: fetching {a.repo_id}@{a.entry.fetch} failed ({type(err).__name__}: "
                                  f"{err}); build it with `{a.command}` and push it there with --hub --push.revision "
                                  f"{a.entry.fetch}", resolve_token())) from None
    return dest, copies


def _build(a) -> None:
    log.info("release: building %s: %s", a.name, a.command)
    KINDS.get(a.kind).load("build")(a.recipe)


def stage(a, plan) -> tuple[Path, ServerCopies | None]:
    """`staging_dir/<name>`: the artifact's folder (fetched or built first when missing) with its release cards,
    and the files the push takes from the candidate revision by server-side copy (None: the folder is whole)."""
    from ..io import atomic_dir

    staging = Path(plan.recipe.staging_dir)
    source, copies = a.folder, None
    if a.state == "missing":
        raise ReleaseError(f"artifact {a.name}: {a.folder} is missing and its entry says build: never; build it with "
                           f"`{a.command}`, or name the built folder in `folder`")
    if a.state == "fetch":
        source, copies = _fetch(a, staging, server_side=plan.recipe.hub_dir is None)
    elif a.state == "build":
        _build(a)
    me = next(x for x in [plan.links.dataset, plan.links.space, *plan.links.models] if x and x.name == a.name)
    with atomic_dir(staging / a.name) as tmp:
        if a.repo_type == "space":
            stage_space_folder(a, tmp, plan.links)
            space_sections(tmp / "README.md", plan.links)
        else:
            shutil.copytree(source, tmp, copy_function=_link_or_copy, ignore=shutil.ignore_patterns(".cache", ".git"))
            if a.repo_type == "dataset":
                check_dataset_folder(tmp, a.repo_id)
                dataset_sections(tmp / "README.md", plan.links)
            else:
                patch: dict[str, Any] = {"push": {"repo_id": a.repo_id}}
                if me.dataset:
                    patch["data"] = {"dataset_id": me.dataset}
                if me.reward_model:
                    patch["iter"] = {"reward_model": me.reward_model}
                refresh_model_card(tmp, a.kind, a.repo_id, patch)
                model_sections(tmp / "README.md", me, plan.links)
    if a.state == "fetch":
        shutil.rmtree(source, ignore_errors=True)
    return staging / a.name, copies


def publish(plan) -> list[dict[str, Any]]:
    """Stage and push every selected artifact; one result per artifact (url, commit, changed)."""
    from ..hub.push import push_folder

    results = []
    for a in plan.selected:
        folder, copies = stage(a, plan)
        r = push_folder(folder, a.repo_id, a.repo_type, private=plan.recipe.private, tag=plan.tag, copies=copies,
                        hub_dir=plan.recipe.hub_dir, space_sdk="gradio" if a.repo_type == "space" else None,
                        commit_message=f"Release {plan.tag or plan.version}: {a.name} (psycopref {plan.version})")
        log.info("release: %s %s (%s)", a.repo_id, "pushed" if r.changed else "unchanged", r.commit_id)
        results.append({"name": a.name, "repo_id": a.repo_id, "repo_type": a.repo_type, "url": r.url,
                        "commit_id": r.commit_id, "changed": r.changed, "tag": plan.tag})
    return results
