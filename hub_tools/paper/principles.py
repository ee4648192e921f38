"""The seven PsychoCounsel principles (paper section 3.2, Box B) as package data."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from importlib import resources

import yaml


@dataclass(frozen=True)
class Principle:
    short: str  # column stem of the public release, e.g. "empathy"
    name: str  # full name, e.g. "Empathy and Emotional Understanding"
    definition: str
    aspects: tuple[str, ...]

    def full_text(self) -> str:
        """The principle as the judge sees it: name, definition and its aspects (Box B)."""
        lines = [f"{self.name}: {self.definition}"]
        lines += [f"- {aspect}" for aspect in self.aspects]
        return "\n".join(lines)


@functools.cache
def principles() -> tuple[Principle, ...]:
    raw = yaml.safe_load(resources.files("hub_tools.paper").joinpath("data/principles.yaml").read_text())
    return tuple(Principle(r["short"], r["name"], r["definition"], tuple(r["aspects"])) for r in raw)


PRINCIPLE_NAMES: tuple[str, ...] = tuple(p.short for p in principles())


def by_short(short: str) -> Principle:
    for p in principles():
        if p.short == short:
            return p
    raise KeyError(f"unknown principle {short!r}; expected one of {', '.join(PRINCIPLE_NAMES)}")
