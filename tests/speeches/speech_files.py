"""Helpers shared by the loader tests: write a small CSV in a source's layout, load a source from a path."""

from __future__ import annotations

import csv
from pathlib import Path

from hub_tools.speeches.config import SourceSpec
from hub_tools.speeches.sources import load_source


def write_csv(path: Path, header: list[str], rows: list[list]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def load(name: str, path: Path, **kw) -> list:
    return list(load_source(SourceSpec(name=name, path=str(path), **kw)))
