"""The paper's topic taxonomy (Table 4): 8 coarse topics holding 42 fine topics, as package data."""

from __future__ import annotations

import functools
from importlib import resources

import yaml


@functools.cache
def _load() -> list[dict]:
    return yaml.safe_load(resources.files("hub_tools.paper").joinpath("data/taxonomy.yaml").read_text())


def coarse_topics() -> list[str]:
    """The 8 coarse topics, in the paper's order."""
    return [block["coarse"] for block in _load()]


def fine_topics() -> list[str]:
    """The 42 fine topics, in the paper's order."""
    return [fine for block in _load() for fine in block["fine"]]


def fine_to_coarse() -> dict[str, str]:
    return {fine: block["coarse"] for block in _load() for fine in block["fine"]}


def paper_counts() -> dict[str, int]:
    """Speeches per fine topic in the paper's release (for comparison figures)."""
    return {fine: n for block in _load() for fine, n in block["fine"].items()}


def normalize_fine(label: str) -> str | None:
    """Map a free-form label ('family conflict', 'LGBTQ', 'grief_and_loss') to a fine topic, or None."""
    key = _key(label)
    return _index().get(key)


def _key(label: str) -> str:
    return "".join(ch for ch in str(label).lower() if ch.isalnum())


@functools.cache
def _index() -> dict[str, str]:
    return {_key(fine): fine for fine in fine_topics()}
