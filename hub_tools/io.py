"""Small file helpers: atomic dataset saves so a crash never leaves a half-written stage output."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from datasets import Dataset, DatasetDict, load_from_disk


def save_atomic(ds: Dataset | DatasetDict, path: str | Path) -> Path:
    """`save_to_disk` into a temp sibling, then swap it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    ds.save_to_disk(str(tmp / "data"))
    old = path.with_name(f".{path.name}.old")
    if old.exists():
        shutil.rmtree(old)
    if path.exists():
        path.rename(old)
    (tmp / "data").rename(path)
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.rmtree(old, ignore_errors=True)
    return path


def load_stage(work_dir: str | Path, name: str, produced_by: str) -> Dataset:
    """Load an earlier stage's output, or say which command produces it."""
    path = Path(work_dir) / name
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: run `psycopref {produced_by}` first")
    return load_from_disk(str(path))
