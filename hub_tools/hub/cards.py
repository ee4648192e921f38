"""Repo cards for every artifact: one renderer for dataset, model and Space cards, plus the helpers
cards share (Hub size buckets, report tables, number formatting, editing a marked section).

Cards are huggingface_hub `DatasetCard` / `ModelCard` / `SpaceCard` objects rendered from the Jinja
templates in the package's `cards/` folder (the repo's root `cards/`, shipped in the wheel as
`hub_tools.cards`), with the YAML metadata built from card data (`DatasetCardData`, `ModelCardData`).
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from ..errors import PsycoprefError

# The Hub's size_categories buckets: (upper bound exclusive, label).
_SIZE_BUCKETS = [
    (10**3, "n<1K"), (10**4, "1K<n<10K"), (10**5, "10K<n<100K"), (10**6, "100K<n<1M"),
    (10**7, "1M<n<10M"), (10**8, "10M<n<100M"), (10**9, "100M<n<1B"), (10**10, "1B<n<10B"),
    (10**11, "10B<n<100B"), (10**12, "100B<n<1T"),
]


class CardError(PsycoprefError, ValueError):
    """A card that cannot be rendered or edited; the message names the file."""


def _card_class(repo_type: str):
    from huggingface_hub import DatasetCard, ModelCard, SpaceCard

    classes = {"dataset": DatasetCard, "model": ModelCard, "space": SpaceCard}
    if repo_type not in classes:
        raise CardError(f"repo type {repo_type!r} has no card; expected one of {', '.join(classes)}")
    return classes[repo_type]


def render_card(repo_type: str, card_data, template: str, context: Mapping[str, Any]):
    """A card: YAML metadata from `card_data`, body from the packaged Jinja `template` filled with `context`."""
    path = resources.files("hub_tools.cards").joinpath(template)
    if not path.is_file():
        raise CardError(f"card template {template!r} is not in the package's cards/ folder")
    with resources.as_file(path) as file:
        return _card_class(repo_type).from_template(card_data, template_path=str(file), **context)


def size_category(n: int) -> str:
    """The Hub's `size_categories` label for n rows."""
    for bound, label in _SIZE_BUCKETS:
        if n < bound:
            return label
    return "n>1T"


def fmt(x: float, digits: int = 2) -> str:
    """A number as a card shows it: thousands separators, fixed digits."""
    return f"{x:,.{digits}f}"


def flatten(data: Any, prefix: str = "") -> list[tuple[str, str]]:
    """Scalar leaves of a report as ("a.b", value) rows, in the report's own order (for card tables)."""
    if isinstance(data, Mapping):
        return [row for k, v in data.items() for row in flatten(v, f"{prefix}{k}.")]
    if isinstance(data, (list, tuple)) and not all(isinstance(v, (str, int, float, bool)) for v in data):
        return [row for i, v in enumerate(data) for row in flatten(v, f"{prefix}{i}.")]
    if isinstance(data, float):
        data = fmt(data, 3)
    elif isinstance(data, int) and not isinstance(data, bool):
        data = f"{data:,}"
    elif isinstance(data, (list, tuple)):
        data = ", ".join(str(v) for v in data)
    return [(prefix.rstrip("."), str(data))] if prefix else []


def update_section(card_path: str | Path, name: str, title: str, markdown: str) -> None:
    """Insert or replace the section `## title` between `<!-- name:start -->` / `<!-- name:end -->`
    markers in a card file (idempotent: running it twice gives the same file)."""
    start_marker, end_marker = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    path = Path(card_path)
    if not path.is_file():
        raise CardError(f"{path}: card file not found")
    text = path.read_text(encoding="utf-8")
    section = f"{start_marker}\n## {title}\n\n{markdown.strip()}\n{end_marker}"
    start, end = text.find(start_marker), text.find(end_marker)
    if (start < 0) != (end < 0) or end < start:
        raise CardError(f"{path}: unbalanced {start_marker} / {end_marker} markers")
    text = (text[:start] + section + text[end + len(end_marker):] if start >= 0
            else text.rstrip("\n") + "\n\n" + section + "\n")
    from ..io import write_text

    write_text(path, text)
