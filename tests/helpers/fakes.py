"""Fake model backends for the generate/judge stage tests, registered as `fake-*` in the backend registry.

Behaviour lives in one module-level `SCRIPT` (not in the endpoint) so a test can switch a backend from
failing to healthy without changing the recipe, and therefore without changing the cache keys.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from typing import Any

from hub_tools.paper.principles import PRINCIPLE_NAMES, principles
from hub_tools.serving import Backend, Completion, register_backend


class Script:
    """What the fakes answer, and a record of every real call they received."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        self.calls: list[dict[str, Any]] = []  # every chat() call, failed ones included
        self.fail_from: int | None = None  # calls number >= this (1-based) raise ConnectionError
        self.answer: Callable[[dict], str | Completion] | None = None  # judge behaviour

    def record(self, call: dict) -> int:
        with self.lock:
            self.calls.append(call)
            return len(self.calls)


SCRIPT = Script()


@register_backend("fake-gen")
class FakeGenBackend(Backend):
    """A pool member that echoes who answered which speech: '<model>|<system>|<speech>' (padded)."""

    name = "fake-gen"
    supports_json_schema = False

    def chat(self, messages: list[dict], params: dict, json_schema: dict | None = None) -> Completion:
        n = SCRIPT.record({"model": self.endpoint.model, "messages": messages, "params": params, "schema": json_schema})
        if SCRIPT.fail_from is not None and n >= SCRIPT.fail_from:
            raise ConnectionError(f"fake backend down at call {n}")
        system = next((m["content"] for m in messages if m["role"] == "system"), "")
        speech = messages[-1]["content"].split("Client Speech: ", 1)[1]
        return Completion(f"  {self.endpoint.model}|{system}|{speech}\n", prompt_tokens=len(speech), completion_tokens=7)



@register_backend("fake-judge")
class FakeJudgeBackend(Backend):
    """A judge whose answer is computed by `SCRIPT.answer(call)` from the prompt it was shown."""

    name = "fake-judge"
    supports_json_schema = True

    def chat(self, messages: list[dict], params: dict, json_schema: dict | None = None) -> Completion:
        call = {"model": self.endpoint.model, "messages": messages, "params": params, "schema": json_schema}
        n = SCRIPT.record(call)
        if SCRIPT.fail_from is not None and n >= SCRIPT.fail_from:
            raise ConnectionError(f"fake judge down at call {n}")
        out = SCRIPT.answer(call)
        if not isinstance(out, Completion):
            out = Completion(out, prompt_tokens=len(messages[-1]["content"]) // 10, completion_tokens=len(out) // 4)
        call["usage"] = (out.prompt_tokens, out.completion_tokens)
        return out



# --- helpers for judges that read their prompt -------------------------------------------------------

_SHOWN = re.compile(r"^Response (\d): quality (\d)\b", re.M)


def shown_qualities(prompt: str) -> list[int]:
    """The quality of the response at positions 1..4, read from 'Response i: quality q ...' lines."""
    found = {int(i): int(q) for i, q in _SHOWN.findall(prompt)}
    assert sorted(found) == [1, 2, 3, 4], f"prompt does not show 4 responses: {found}"
    return [found[i] for i in range(1, 5)]


def principle_of(prompt: str) -> str:
    """Which principle a per-principle Rating Prompt asks about (by its full name)."""
    hits = [p.short for p in principles() if f"Principle: {p.name}:" in prompt]
    assert len(hits) == 1, f"expected one principle in the prompt, found {hits}"
    return hits[0]


def expected_rating(quality: int, principle: str) -> int:
    """The rating a reading judge gives: differs per principle so a principle mix-up is caught too."""
    return (quality - 1 + PRINCIPLE_NAMES.index(principle)) % 5 + 1


def rationale(quality: int, principle: str) -> str:
    return f"{principle} rationale for quality {quality}"


def one_principle(qualities: list[int], principle: str) -> dict:
    obj = {}
    for pos, q in enumerate(qualities, start=1):
        obj[f"response_{pos}_rating"] = expected_rating(q, principle)
        obj[f"rationale_{pos}"] = rationale(q, principle)
    return obj


def compact_principle(qualities: list[int], principle: str) -> list[list]:
    """One principle in the compact all-principles format: [rating, rationale] per position."""
    return [[expected_rating(q, principle), rationale(q, principle)] for q in qualities]


def reading_judge(call: dict) -> str:
    """Rates what is really at each position, in any judge mode and answer format."""
    prompt = call["messages"][-1]["content"]
    qualities = shown_qualities(prompt)
    if re.search(r"^Principle: ", prompt, re.M):  # per_principle Rating Prompt
        return json.dumps(one_principle(qualities, principle_of(prompt)))
    if "[score, rationale] pairs" in prompt:  # all principles, compact format
        return json.dumps({p: compact_principle(qualities, p) for p in PRINCIPLE_NAMES})
    return json.dumps({p: one_principle(qualities, p) for p in PRINCIPLE_NAMES})
