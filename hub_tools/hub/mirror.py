"""The local Hub mirror: `<hub_dir>/<type>s/<org>/<name>` swapped to a new version atomically.

A repo path in the mirror is a symbolic link to a complete version folder kept under
`<hub_dir>/.versions/<type>s/<org>/<name>/`. A push builds the new version in a hidden staging folder
there, renames it to its version name, and points the repo path at it by renaming a new link over the old
one: rename(2) replaces a link in one step on POSIX, so at every instant the path holds the old or the new
complete repo, whatever kills the push and whenever. Readers follow the link without knowing it
(`datasets.load_dataset(path)`, open(), our own readers).

The previous version stays until the next push starts, so a reader that resolved the path just before a
swap can finish reading it; big files that did not change are hard-linked from it rather than copied, so
keeping it costs little space. The next push removes it, and whatever a killed push left behind (a staging
folder of up to every file of the repo, a version renamed but never linked), and logs what it removed.

A mirror written before this layout (a plain folder) is moved into it at its first push: that push alone
needs two renames, and a push killed between them is put right by the next one.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
import uuid
from pathlib import Path

from ..io import recover

logger = logging.getLogger("psycopref")

VERSIONS = ".versions"  # <hub_dir>/.versions/<type>s/<org>/<name>/v-<time>-<digest>: the complete versions
LINK_MIN_BYTES = 1 << 20  # unchanged files from this size are hard-linked from the previous version


def versions_dir(hub_dir: Path, dest: Path) -> Path:
    """Where the versions of mirror repo `dest` (a path under `hub_dir`) are kept."""
    return hub_dir / VERSIONS / dest.relative_to(hub_dir)


def _link(dest: Path, target: Path, versions: Path) -> None:
    """Point `dest` at `target` in one step: a new link made beside the versions, renamed over `dest`."""
    tmp = versions / f".link-{uuid.uuid4().hex}"
    os.symlink(os.path.relpath(target, dest.parent), tmp)  # relative: the mirror can be moved or copied
    os.replace(tmp, dest)


def _complete(versions: Path) -> list[Path]:
    """The complete versions, oldest first (their names start with the time they were made)."""
    return sorted(versions.glob("v-*")) if versions.is_dir() else []


def _adopt(dest: Path, versions: Path) -> Path | None:
    """The version folder `dest` links to (None for a repo not mirrored yet), after bringing `dest` into the
    link layout: a plain folder of the old layout is moved in, a missing or broken link relinked to the
    newest complete version."""
    recover(dest)  # the old layout's swap, killed between its two renames
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.is_symlink() and dest.is_dir():
        return dest.resolve()
    if dest.is_dir():
        versions.mkdir(parents=True, exist_ok=True)
        moved = versions / f"v-{time.time_ns():020d}-plain"
        logger.info("%s: moving the plain folder into the mirror's versioned layout (%s)", dest, VERSIONS)
        os.rename(dest, moved)
        _link(dest, moved, versions)
        return moved
    done = _complete(versions)
    if done:  # a push killed after its version was complete, before the first link
        _link(dest, done[-1], versions)
        return done[-1]
    return None


def _clean(dest: Path, versions: Path, keep: Path | None) -> None:
    """Remove every version but `keep` and whatever killed pushes left; log the latter."""
    gone = [p for p in versions.iterdir() if p.resolve() != keep] if versions.is_dir() else []
    gone += list(dest.parent.glob(f".{dest.name}.tmp-*"))  # the old layout's staging folders
    killed = [p for p in gone if not p.name.startswith("v-") or keep is None or p.name > keep.name]
    files = sum(1 for p in killed if p.is_dir() for f in p.rglob("*") if f.is_file())
    for p in gone:
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)
    if killed:
        logger.info("%s: removed %d folder(s) and link(s) (%d files) left by a killed push", dest, len(killed), files)


def prepare(dest: Path, hub_dir: Path) -> Path | None:
    """Start a push to mirror repo `dest`: its current version folder (None when new), with every other
    version and what killed pushes left removed."""
    versions = versions_dir(hub_dir, dest)
    current = _adopt(dest, versions)
    _clean(dest, versions, current)
    return current


def swap_in(dest: Path, hub_dir: Path, files: dict[str, Path], digest: str,
            unchanged: dict[str, Path] | None = None) -> Path:
    """Make `files` (repo path -> file) the new version of `dest` and point `dest` at it; `unchanged` maps
    repo paths to identical files of the current version (big ones are hard-linked). Returns the version."""
    versions = versions_dir(hub_dir, dest)
    versions.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".tmp-", dir=versions))
    try:
        for rel, path in files.items():
            target = staging / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            same = (unchanged or {}).get(rel)
            if same is None or same.stat().st_size < LINK_MIN_BYTES or not _hard_link(same, target):
                shutil.copy2(path, target)
        version = versions / f"v-{time.time_ns():020d}-{digest[:12]}"
        os.rename(staging, version)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    _link(dest, version, versions)
    return version


def _hard_link(src: Path, dst: Path) -> bool:
    try:
        os.link(src, dst)
        return True
    except OSError:  # a file system without hard links
        return False
