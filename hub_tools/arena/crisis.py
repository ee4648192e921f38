"""Crisis signals in a client speech (suicide, self-harm, abuse, harm to others) and the banner they raise.

A transparent list of regular expressions in a data file (`data/crisis.yaml`, or the config's
`crisis_file`), so practitioners can read and extend exactly what triggers the banner. A hit never
blocks or hides anything: it puts crisis resources and the advice to contact local emergency services
above the answers, before the first token arrives.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

from ..config import RecipeError, parse_yaml

BUNDLED = "data/crisis.yaml"  # inside package hub_tools.arena


@dataclass(frozen=True)
class CrisisRules:
    """Compiled patterns per category, the banner text and the resources listed under it."""

    patterns: dict[str, list[re.Pattern]]
    labels: dict[str, str]
    banner: str
    resources: list[str]

    def signals(self, text: str) -> list[str]:
        """The categories whose patterns occur in `text`, in the file's order."""
        return [cat for cat, pats in self.patterns.items() if any(p.search(text) for p in pats)]

    def banner_markdown(self, signals: list[str]) -> str:
        """The banner for these signals ('' for none): the warning, then one resource per line."""
        if not signals:
            return ""
        named = " and ".join(self.labels.get(s, s.replace("_", " ")) for s in signals)
        lines = "\n".join(f"- {r}" for r in self.resources)
        return f"### ⚠️ If you are in crisis, please reach out now\n\n{self.banner.format(signals=named)}\n\n{lines}"


def parse_rules(data: object, source: str) -> CrisisRules:
    """Rules from the YAML structure of a crisis file; every problem names `source`."""
    if not isinstance(data, dict) or not isinstance(data.get("categories"), dict) or not data["categories"]:
        raise RecipeError(f"{source}: a crisis file needs a non-empty 'categories' mapping")
    patterns: dict[str, list[re.Pattern]] = {}
    for cat, pats in data["categories"].items():
        if not isinstance(pats, list) or not pats:
            raise RecipeError(f"{source}: categories.{cat} must be a non-empty list of regular expressions")
        try:
            patterns[str(cat)] = [re.compile(str(p), re.IGNORECASE) for p in pats]
        except re.error as err:
            raise RecipeError(f"{source}: categories.{cat}: bad regular expression ({err})") from None
    banner, res = data.get("banner"), data.get("resources")
    if not isinstance(banner, str) or "{signals}" not in banner:
        raise RecipeError(f"{source}: 'banner' must be a text containing {{signals}}")
    if not isinstance(res, list) or not res:
        raise RecipeError(f"{source}: 'resources' must list at least one crisis line")
    return CrisisRules(patterns, {str(k): str(v) for k, v in (data.get("labels") or {}).items()}, banner.strip(),
                       [str(r) for r in res])


@lru_cache(maxsize=8)
def load_rules(path: str | None = None) -> CrisisRules:
    """The crisis rules of `path`, or the bundled ones."""
    if path is None:
        text, source = resources.files("hub_tools.arena").joinpath(BUNDLED).read_text(encoding="utf-8"), BUNDLED
    else:
        if not Path(path).is_file():
            raise RecipeError(f"crisis_file not found: {path}")
        text, source = Path(path).read_text(encoding="utf-8"), path
    return parse_rules(parse_yaml(text, source), source)
