"""Crisis signals in a client speech (suicide, self-harm, overdose, eating disorders, abuse, harm to others).

A transparent, editable layer in a data file (`data/crisis.yaml`, or the config's `crisis_file`) that
practitioners can read: case-insensitive regular expressions per category, matched sentence by sentence,
with two context rules that keep hard negatives quiet:

- `not_counted`: phrases blanked out before matching ("died by suicide", "suicide prevention",
  "killing it", "dying to"), so a mention of death in another sense never counts;
- `other_contexts`: a sentence that also speaks of a film, a study, a job, or a recovered past ("years
  ago", "used to") is skipped, unless it has a word of the present (`but_now`: "again", "still"...).

A hit shows crisis resources and the advice to contact local emergency services before any answer
(and holds the answers, see `app.py`). Measured on a labelled set by `benchmarks/bench_crisis.py`.
An optional classifier behind an endpoint adds recall on top (`classifier.py`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path

from ..config import RecipeError, parse_yaml

BUNDLED = "data/crisis.yaml"  # inside package hub_tools.arena
SENTENCES = re.compile(r"(?<=[.!?;])\s+|\n+")  # where one sentence ends and the next begins


@dataclass(frozen=True)
class CrisisRules:
    """Compiled patterns per category, the context rules, the banner text and the resources listed under it."""

    patterns: dict[str, list[re.Pattern]]
    labels: dict[str, str]
    banner: str
    resources: list[str]
    not_counted: list[re.Pattern] = field(default_factory=list)
    other_contexts: list[re.Pattern] = field(default_factory=list)
    but_now: list[re.Pattern] = field(default_factory=list)

    def sentences(self, text: str) -> list[str]:
        """The sentences of `text` that may speak of the speaker's present, phrases not counted blanked out."""
        for pat in self.not_counted:
            text = pat.sub(" ", text)
        kept = []
        for sentence in SENTENCES.split(text):
            other = any(p.search(sentence) for p in self.other_contexts)
            if not other or any(p.search(sentence) for p in self.but_now):
                kept.append(sentence)
        return kept

    def matches(self, text: str) -> dict[str, list[str]]:
        """Per category with a hit, the texts its patterns matched (what a practitioner checks a rule by)."""
        found: dict[str, list[str]] = {}
        for sentence in self.sentences(text):
            for cat, pats in self.patterns.items():
                found.setdefault(cat, []).extend(m.group(0) for p in pats if (m := p.search(sentence)))
        return {cat: hits for cat, hits in found.items() if hits}

    def signals(self, text: str) -> list[str]:
        """The categories whose patterns occur in `text`, in the file's order."""
        hits = self.matches(text)
        return [cat for cat in self.patterns if cat in hits]

    def banner_markdown(self, signals: list[str]) -> str:
        """The banner for these signals ('' for none): the warning, then one resource per line."""
        if not signals:
            return ""
        named = " and ".join(self.labels.get(s, s.replace("_", " ")) for s in signals)
        lines = "\n".join(f"- {r}" for r in self.resources)
        return f"### ⚠️ If you are in crisis, please reach out now\n\n{self.banner.format(signals=named)}\n\n{lines}"


def _compile(pats: object, where: str, source: str, required: bool = True) -> list[re.Pattern]:
    if pats is None and not required:
        return []
    if not isinstance(pats, list) or (required and not pats):
        raise RecipeError(f"{source}: {where} must be a {'non-empty ' if required else ''}list of regular expressions")
    try:
        return [re.compile(str(p), re.IGNORECASE) for p in pats]
    except re.error as err:
        raise RecipeError(f"{source}: {where}: bad regular expression ({err})") from None


def parse_rules(data: object, source: str) -> CrisisRules:
    """Rules from the YAML structure of a crisis file; every problem names `source`."""
    if not isinstance(data, dict) or not isinstance(data.get("categories"), dict) or not data["categories"]:
        raise RecipeError(f"{source}: a crisis file needs a non-empty 'categories' mapping")
    patterns = {str(cat): _compile(pats, f"categories.{cat}", source) for cat, pats in data["categories"].items()}
    banner, res = data.get("banner"), data.get("resources")
    if not isinstance(banner, str) or "{signals}" not in banner:
        raise RecipeError(f"{source}: 'banner' must be a text containing {{signals}}")
    if not isinstance(res, list) or not res:
        raise RecipeError(f"{source}: 'resources' must list at least one crisis line")
    context = {k: _compile(data.get(k), k, source, required=False) for k in ("not_counted", "other_contexts", "but_now")}
    return CrisisRules(patterns, {str(k): str(v) for k, v in (data.get("labels") or {}).items()}, banner.strip(),
                       [str(r) for r in res], **context)


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
