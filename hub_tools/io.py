"""Small file helpers: atomic dataset saves so a crash never leaves a half-written stage output."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from datasets import Dataset, DatasetDict, load_from_disk

MARKER = "psycopref_stage.json"  # what produced a stage output (e.g. its config hash)


def save_atomic(ds: Dataset | DatasetDict, path: str | Path, marker: dict | None = None) -> Path:
    """`save_to_disk` into a temp sibling, then swap it into place. `marker` is saved as MARKER inside."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    # An empty dataset saved with the default sharding writes no shard and cannot be loaded back.
    if isinstance(ds, DatasetDict):
        shards = {k: 1 for k in ds} if any(len(v) == 0 for v in ds.values()) else None
    else:
        shards = 1 if len(ds) == 0 else None
    ds.save_to_disk(str(tmp / "data"), num_shards=shards)
    if marker is not None:
        (tmp / "data" / MARKER).write_text(json.dumps(marker, indent=2), encoding="utf-8")
    old = path.with_name(f".{path.name}.old")
    if old.exists():
        shutil.rmtree(old)
    if path.exists():
        path.rename(old)
    (tmp / "data").rename(path)
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.rmtree(old, ignore_errors=True)
    return path


def write_json(path: str | Path, data: dict) -> Path:
    """Write a JSON report via a temp file + rename, so a crash never leaves half a file."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False), encoding="utf-8")
    tmp.replace(path)
    return path


def load_stage(work_dir: str | Path, name: str, produced_by: str) -> Dataset:
    """Load an earlier stage's output, or say which command produces it."""
    path = Path(work_dir) / name
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: run `psycopref {produced_by}` first")
    return load_from_disk(str(path))
