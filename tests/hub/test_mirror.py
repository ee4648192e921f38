"""The local Hub mirror never loses a repo: a push killed at any step leaves the old or the new complete
version at the repo's path, a reader never finds the path missing, and the next push cleans up.

A push is killed with SIGKILL in a subprocess just before its k-th file-system call (every mkdir, copy,
link, rename, unlink of the push), for every k until the push finishes unharmed.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hub_tools.hub import mirror
from hub_tools.hub.push import _digest, push_folder

BIG = b"\x00\x01weights" * 140_000  # 1.2 MB: above mirror.LINK_MIN_BYTES, so hard-linked when unchanged

KILL_SCRIPT = """
import os, shutil, signal, sys
from hub_tools.hub.push import push_folder
kill_at, calls = int(sys.argv[1]), [0]

def counted(fn):
    def wrapper(*args, **kwargs):
        calls[0] += 1
        if calls[0] == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        return fn(*args, **kwargs)
    return wrapper

for mod, name in [(os, "mkdir"), (os, "rename"), (os, "replace"), (os, "symlink"), (os, "link"), (os, "unlink"),
                  (os, "rmdir"), (shutil, "copy2"), (shutil, "copyfile")]:
    setattr(mod, name, counted(getattr(mod, name)))
push_folder(sys.argv[2], "Org/Name", hub_dir=sys.argv[3])
print(calls[0])
"""

READER_SCRIPT = """
import json, os, sys, time
dest, stop, readmes, bigs = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), set(json.loads(sys.argv[4]))
seen, missing, wrong = {}, 0, 0
while not os.path.exists(stop):
    try:
        os.stat(dest)
        with open(os.path.join(dest, "README.md")) as fh:
            text = fh.read()
        with open(os.path.join(dest, "data", "big.bin"), "rb") as fh:
            size = len(fh.read())
    except FileNotFoundError:
        missing += 1
        continue
    seen[text] = seen.get(text, 0) + 1
    wrong += text not in readmes or size not in bigs
print(json.dumps({"seen": list(seen.values()), "missing": missing, "wrong": wrong}))
"""


def _version(root: Path, n: int, extra: bool) -> Path:
    """A repo folder: a card naming version `n`, a big file (the same in every version), one more file in v1."""
    (root / "data").mkdir(parents=True)
    (root / "README.md").write_text(f"---\nlicense: mit\n---\n# version {n}\n")
    (root / "data" / "big.bin").write_bytes(BIG)
    (root / "data" / "part.txt").write_text(f"rows of version {n}\n" * 50)
    if extra:
        (root / "notes.txt").write_text("only in version 1\n")
    return root


@pytest.fixture
def repo(tmp_path):
    v1, v2 = _version(tmp_path / "v1", 1, True), _version(tmp_path / "v2", 2, False)
    hub_dir = tmp_path / "hub"
    push_folder(v1, "Org/Name", hub_dir=hub_dir)
    return v1, v2, hub_dir, hub_dir / "datasets" / "Org" / "Name"


def _leftovers(hub_dir: Path, dest: Path) -> list[str]:
    store = mirror.versions_dir(hub_dir, dest)
    found = [*(store.iterdir() if store.is_dir() else []), *dest.parent.iterdir()]
    return sorted(p.name for p in found if not p.name.startswith("v-") and p != dest)


def test_a_push_killed_at_any_step_leaves_a_complete_repo_and_the_next_push_cleans_up(repo, caplog):
    v1, v2, hub_dir, dest = repo
    old, new = _digest(v1), _digest(v2)
    killed_with_leftovers = 0
    for k in range(1, 200):
        run = subprocess.run([sys.executable, "-c", KILL_SCRIPT, str(k), str(v2), str(hub_dir)],
                             capture_output=True, text=True, timeout=60)
        if run.returncode == 0:  # the push made fewer calls than k: every step has been killed once
            break
        assert run.returncode == -signal.SIGKILL, run.stderr
        assert dest.is_dir() and _digest(dest) in (old, new), f"killed before call {k}: the repo is incomplete"
        leftovers = _leftovers(hub_dir, dest)
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="psycopref"):
            assert push_folder(v2, "Org/Name", hub_dir=hub_dir).commit_id == new
        assert _digest(dest) == new and not _leftovers(hub_dir, dest), k
        if leftovers:
            killed_with_leftovers += 1
            assert "left by a killed push" in caplog.text, (k, leftovers)
        push_folder(v1, "Org/Name", hub_dir=hub_dir)  # back to version 1 for the next kill point
    assert 8 <= k < 200 and killed_with_leftovers >= 3, (k, killed_with_leftovers)
    print(f"killed at {k - 1} steps, {killed_with_leftovers} left something to clean")
    assert int(run.stdout) == k - 1  # the push ran to its end without being killed


def test_a_reader_never_finds_the_repo_missing_while_it_is_replaced(repo, tmp_path):
    v1, v2, hub_dir, dest = repo
    stop = tmp_path / "stop"
    readmes = [(v / "README.md").read_text() for v in (v1, v2)]
    reader = subprocess.Popen([sys.executable, "-c", READER_SCRIPT, str(dest), str(stop), json.dumps(readmes),
                               json.dumps([len(BIG)])], stdout=subprocess.PIPE, text=True)
    try:
        for i in range(40):
            push_folder(v2 if i % 2 == 0 else v1, "Org/Name", hub_dir=hub_dir)
            time.sleep(0.01)
    finally:
        stop.touch()
        out = json.loads(reader.communicate(timeout=60)[0])
    assert out["missing"] == 0 and out["wrong"] == 0, out
    assert len(out["seen"]) == 2, "the reader saw both versions"


def test_big_unchanged_files_are_linked_and_the_previous_version_kept_until_the_next_push(repo):
    v1, v2, hub_dir, dest = repo
    first = dest.resolve()
    push_folder(v2, "Org/Name", hub_dir=hub_dir)
    second = dest.resolve()
    assert first.is_dir() and second != first and dest.is_symlink()
    assert (second / "data" / "big.bin").stat().st_ino == (first / "data" / "big.bin").stat().st_ino
    assert (second / "README.md").stat().st_ino != (first / "README.md").stat().st_ino  # small files: copied
    push_folder(v1, "Org/Name", hub_dir=hub_dir)
    assert not first.exists() and second.is_dir()  # the one before the previous is gone
    assert sorted(p.name for p in dest.parent.iterdir()) == ["Name"]


def test_a_mirror_of_the_old_layout_is_moved_in_and_its_leftovers_removed(tmp_path, caplog):
    v1, v2 = _version(tmp_path / "v1", 1, True), _version(tmp_path / "v2", 2, False)
    hub_dir = tmp_path / "hub"
    dest = hub_dir / "models" / "Org" / "Name"
    _version(dest, 1, True)  # a plain folder, as pushes wrote it before
    stale = dest.with_name(".Name.tmp-abc123")  # the old layout's staging folder of a killed push
    _version(stale / "Name", 2, False)
    with caplog.at_level(logging.INFO, logger="psycopref"):
        assert not push_folder(v1, "Org/Name", "model", hub_dir=hub_dir).changed
    assert dest.is_symlink() and _digest(dest) == _digest(v1) and not stale.exists()
    assert "left by a killed push" in caplog.text and "(3 files)" in caplog.text
    os.rename(dest, dest.with_name(".Name.old"))  # the old layout's swap, killed between its two renames
    assert push_folder(v2, "Org/Name", "model", hub_dir=hub_dir).changed and _digest(dest) == _digest(v2)
    from datasets import load_dataset

    (v2 / "data" / "rows.csv").write_text("a,b\n1,2\n3,4\n")
    push_folder(v2, "Org/Name", "model", hub_dir=hub_dir)
    assert load_dataset(str(dest), data_files="data/rows.csv", split="train").num_rows == 2  # readers follow the link
