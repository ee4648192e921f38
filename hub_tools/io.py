"""Files a run writes: one atomic way to replace a folder or a file, stage outputs, and the run log.

A crash never leaves a half-written output: folders are built in a temporary sibling and swapped in
with two renames (`atomic_dir`), files are written to a temporary name and renamed (`write_text`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from .errors import MissingInput

MARKER = "psycopref_stage.json"  # what produced a stage output (e.g. its config hash)
LOG_FILE = "logs/psycopref.log"  # every run's log, inside its work dir
# The work dir's layout: the folder each dataset stage writes and the later ones read (`load_stage`).
SPEECHES, RESPONSES, RATINGS, PAIRS = "speeches", "responses", "ratings", "pairs"  # stages 1-4
SPEECHES_SPLIT, RATINGS_SPLIT = "speeches_split", "ratings_split"  # the speeches and ratings by split (stage 4)


def _old(path: Path) -> Path:
    return path.with_name(f".{path.name}.old")


def recover(path: str | Path) -> Path:
    """Undo a swap a crash interrupted: `path` missing but its previous version parked: put it back."""
    path = Path(path)
    if not path.exists() and _old(path).exists():
        os.replace(_old(path), path)
    return path


@contextlib.contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield a staging path (not yet created) for the new version of folder `path`; the block creates
    and fills it. When the block succeeds the staged folder replaces `path` (two renames on one
    filesystem); when it raises, the staging is removed and `path` keeps its previous content."""
    path = recover(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in path.parent.glob(f".{path.name}.tmp-*"):  # left by a killed run
        shutil.rmtree(stale, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
    staged = tmp / path.name
    try:
        yield staged
        if not staged.is_dir():
            raise FileNotFoundError(f"nothing was written to {staged} for {path}")
        old = _old(path)
        if old.exists():
            shutil.rmtree(old)
        if path.exists():
            os.replace(path, old)
        os.replace(staged, path)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_text(path: str | Path, text: str) -> Path:
    """Write a text file via a temporary name + rename, so a crash never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)  # a full disk or unencodable text leaves the old file and no stray temp
        raise
    return path


def write_json(path: str | Path, data: dict) -> Path:
    """A JSON report, written atomically."""
    return write_text(path, json.dumps(data, indent=2, ensure_ascii=False))


def read_json(path: str | Path) -> dict | None:
    """A JSON file written by `write_json` (a result file, a manifest), or None when there is none."""
    path = Path(path)
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def write_jsonl(path: str | Path, records: list[dict]) -> Path:
    """One JSON object per line, written atomically."""
    return write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))


def save_atomic(ds, path: str | Path, marker: dict | None = None) -> Path:
    """`save_to_disk` a Dataset or DatasetDict atomically. `marker` is saved as MARKER inside."""
    from datasets import DatasetDict

    # An empty dataset saved with the default sharding writes no shard and cannot be loaded back.
    if isinstance(ds, DatasetDict):
        shards = {k: 1 for k in ds} if any(len(v) == 0 for v in ds.values()) else None
    else:
        shards = 1 if len(ds) == 0 else None
    with atomic_dir(path) as tmp:
        ds.save_to_disk(str(tmp), num_shards=shards)
        if marker is not None:
            (tmp / MARKER).write_text(json.dumps(marker, indent=2), encoding="utf-8")
    return Path(path)


def need(work_dir: str | Path, name: str, produced_by: str) -> Path:
    """An earlier stage's output path, or an error naming the command that writes it."""
    path = Path(work_dir) / name
    if not path.exists():
        raise MissingInput(f"{path} does not exist: run `psycopref {produced_by}` first")
    return path


def load_repo_dataset(path: str | Path, config: str | None = None, split: str | None = None,
                      revision: str | None = None):
    """`datasets.load_dataset` of a dataset repo: a Hub id (at `revision`; null: main), or a local folder such
    as the Hub mirror.

    datasets caches a local folder's parquet by the folder's name and the config, not by the files'
    content, so a folder rebuilt in place (or another build with the same name) would be served stale
    from the cache; a local folder is therefore always read afresh (cheap: it is already on disk)."""
    from datasets import load_dataset

    local = Path(path).expanduser()
    if local.is_dir():
        # no_checks: the split sizes datasets recorded for the previous build are not this build's
        return load_dataset(str(local), config, split=split, download_mode="force_redownload",
                            verification_mode="no_checks")
    return load_dataset(str(path), config, split=split, revision=revision)


def read_dataset(path: str, config: str | None, what: str, error: type[Exception], revision: str | None = None):
    """A `save_to_disk` folder (Dataset or DatasetDict), else `config` of a dataset repo folder or Hub id (at
    `revision`).

    Any failure to read it (a missing or empty folder, a broken parquet file or card, no such config, the
    Hub out of reach) is `error` with one line starting with `what`; the cause stays chained for -v."""
    from datasets import load_from_disk

    local = Path(path).expanduser()
    try:
        if (local / "dataset_dict.json").is_file() or (local / "state.json").is_file():
            return load_from_disk(str(local))
        return load_repo_dataset(local if local.exists() else path, config, revision=revision)
    except Exception as err:  # datasets, pyarrow, fsspec, yaml, HTTP: the reader's own errors, all input problems
        raise error(f"{what} (config {config!r}) cannot be read: {' '.join(str(err).split())}") from err


def load_stage(work_dir: str | Path, name: str, produced_by: str):
    """Load an earlier stage's saved Dataset(Dict), or say which command produces it."""
    from datasets import load_from_disk

    return load_from_disk(str(need(work_dir, name, produced_by)))


@contextlib.contextmanager
def run_log(work_dir: str | Path) -> Iterator[Path]:
    """Copy the toolkit's log records to `<work_dir>/logs/psycopref.log` for the duration of a run.

    An exception leaving the block carries the log's path (`err.psycopref_log`) so the CLI can name it.
    """
    path = Path(work_dir) / LOG_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger("psycopref")
    logger.addHandler(handler)
    try:
        yield path
    except BaseException as err:
        # the traceback goes to the file only, whatever the terminal's log level
        handler.handle(logger.makeRecord(logger.name, logging.ERROR, __file__, 0, "run stopped: %r", (err,),
                                         sys.exc_info()))
        if not hasattr(err, "psycopref_log"):
            err.psycopref_log = str(path)
        raise
    finally:
        logger.removeHandler(handler)
        handler.close()
