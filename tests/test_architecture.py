"""ARCHITECTURE.md stays true: every path it names exists, and its tree of rooms lists every top-level module
and package of hub_tools (a new room, or a moved one, fails here until the page says so)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGE = (ROOT / "ARCHITECTURE.md").read_text(encoding="utf-8")
TREE = PAGE.split("```")[1]  # the first code block: the rooms


def _named_paths() -> set[str]:
    """Every word in backticks that looks like a path (has a slash or a file suffix; no placeholders)."""
    words = {w for span in re.findall(r"`([^`\n]+)`", PAGE) for w in span.split()}
    return {w for w in words if ("/" in w or re.search(r"\.(py|md|yaml|toml)$", w)) and not re.search(r"[<>*(]", w)}


def _rooms() -> set[str]:
    """The names the tree lists under hub_tools/ ("speeches/", "demo.py", ...)."""
    body = TREE.split("hub_tools/\n", 1)[1].split("\ncards/", 1)[0]
    return {w for line in body.splitlines() if line.startswith("  ") and not line.startswith("   ")
            for w in line.split()[:3] if w.endswith((".py", "/"))}


def test_every_path_it_names_exists():
    paths = _named_paths()
    assert len(paths) > 20 and "hub_tools/kinds.py" in paths  # the reader sees the page's paths
    assert sorted(p for p in paths if not (ROOT / p).exists()) == []


def test_its_tree_lists_every_room_of_the_package():
    package = ROOT / "hub_tools"
    actual = {p.name for p in package.glob("*.py") if p.name != "__init__.py"}
    actual |= {f"{p.name}/" for p in package.iterdir() if (p / "__init__.py").is_file()}
    assert sorted(_rooms()) == sorted(actual)
    for top in ("cards/", "recipes/", "spaces/", "tests/"):
        assert top in TREE and (ROOT / top).is_dir()
