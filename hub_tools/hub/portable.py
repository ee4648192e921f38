"""Published recipes hold no path of the machine that built them: every `recipe.yaml` a folder publishes (and
the card that quotes it) names its inputs by Hub id or by a path relative to the directory the command ran in,
so the card's "reproduce with `psycopref ... recipe.yaml`" works on another machine.

`hub_ref` turns a local input folder into the Hub id it stands for (a local mirror's `<hub_dir>/<type>s/<org>/
<name>`, or a folder built by psycopref whose recipe.yaml names its repo); `scrub` rewrites what is left: an
absolute path inside the working directory becomes relative to it, and any other absolute path keeps only its
last component (the file's name), with a warning, since nothing on another machine could find it.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import yaml

from ..kinds import RECIPE_FILE

log = logging.getLogger("psycopref")
MIRROR_TYPES = ("models", "datasets", "spaces")  # <hub_dir>/<type>s/<org>/<name>


def is_machine_path(value: str) -> bool:
    """An absolute (or home-relative) filesystem path: meaningless on another machine."""
    return value.startswith(("/", "~")) or (len(value) > 2 and value[1] == ":" and value[2] in "\\/")


def hub_ref(ref: str | None) -> str | None:
    """A model or dataset input as its Hub id when it is a local mirror folder or a folder built by psycopref
    (its recipe.yaml names `push.repo_id` or `dataset.repo_id`); anything else unchanged."""
    if not ref:
        return ref
    path = Path(ref).expanduser()
    parts = path.parts
    if len(parts) >= 3 and parts[-3] in MIRROR_TYPES:
        return f"{parts[-2]}/{parts[-1]}"
    recipe = path / RECIPE_FILE
    if recipe.is_file():
        data = yaml.safe_load(recipe.read_text(encoding="utf-8")) or {}
        named = (data.get("push") or {}).get("repo_id") or (data.get("dataset") or {}).get("repo_id")
        if named:
            return named
    return ref


def portable_path(value: str, cwd: Path | None = None) -> str:
    """`value` relative to the working directory when inside it; another absolute path as its name only."""
    if not is_machine_path(value):
        return value
    path, cwd = Path(value).expanduser().resolve(), (cwd or Path.cwd()).resolve()
    try:
        return path.relative_to(cwd).as_posix() or "."
    except ValueError:
        log.warning("published recipe: %s is a path of this machine; published as %r", value, path.name)
        return path.name


def scrub(data: Any, cwd: Path | None = None) -> Any:
    """`data` (a dumped recipe) with every machine path made portable (`portable_path`), recursively."""
    if isinstance(data, dict):
        return {k: scrub(v, cwd) for k, v in data.items()}
    if isinstance(data, list):
        return [scrub(v, cwd) for v in data]
    return portable_path(data, cwd) if isinstance(data, str) else data


def machine_paths(text: str, roots: list[str]) -> list[str]:
    """The `roots` (this machine's directories: home, working directory, temp dirs) that occur in `text`."""
    return [r for r in roots if r and r in text]


