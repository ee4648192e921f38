"""Reading structured answers out of model text: the JSON object a judge, ranker or classifier was asked
for, found in a fenced block or in the surrounding prose a model may add.

A model's answer is untrusted input, and a cached one is read again on every rerun: whatever it holds,
reading it either returns plain JSON values or raises `InvalidAnswer` (which the stages retry, then
quarantine, with the reason). Bounds are checked before parsing, so no answer can make `json` recurse
too deep, `int()` refuse a 5,000-digit number, or a float become infinite.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from typing import Any

MAX_ANSWER_CHARS = 200_000  # longest answer read as JSON (seven principles x four rationales fit in ~30 k)
MAX_DEPTH = 32  # deepest nesting of [ and { (the judge's nested format needs 3)
MAX_NUMBER_CHARS = 32  # longest number literal (a rating has 1 digit; int() refuses more than 4,300)

_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.S)
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.S)  # a JSON string literal, escapes included
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


class InvalidAnswer(ValueError):
    """A model's text is not the structured answer it was asked for; the message says why."""


def _depth(text: str) -> int:
    """How deep [ and { nest in `text`, outside string literals (an upper bound for malformed text)."""
    brackets = _NOT_BRACKET.sub("", _STRING.sub('""', text))
    return max(itertools.accumulate(_STEP[c] for c in brackets), default=0)


def _number(kind: type):
    def parse(literal: str):
        if len(literal) > MAX_NUMBER_CHARS:
            raise InvalidAnswer(f"a number of {len(literal)} characters (at most {MAX_NUMBER_CHARS} are read)")
        value = kind(literal)
        if isinstance(value, float) and not math.isfinite(value):
            raise InvalidAnswer(f"the number {literal} is out of range")
        return value
    return parse


def _no_constant(name: str):
    raise InvalidAnswer(f"{name} is not a JSON value")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict:
    obj = dict(pairs)
    if len(obj) < len(pairs):
        seen: set[str] = set()
        dup = next(k for k, _ in pairs if k in seen or seen.add(k))
        raise InvalidAnswer(f"the key {dup[:40]!r} appears twice")
    return obj


def load_json(text: str) -> Any:
    """`text` as strict JSON within the bounds above, or `InvalidAnswer` saying why: no NaN or Infinity,
    no out-of-range or overlong number, no duplicate key, no string that is not valid Unicode."""
    if len(text) > MAX_ANSWER_CHARS:
        raise InvalidAnswer(f"the answer has {len(text):,} characters (at most {MAX_ANSWER_CHARS:,} are read as JSON)")
    depth = _depth(text)
    if depth > MAX_DEPTH:
        raise InvalidAnswer(f"JSON nested {depth} levels deep (at most {MAX_DEPTH} are read)")
    try:
        obj = json.loads(text, parse_int=_number(int), parse_float=_number(float), parse_constant=_no_constant,
                         object_pairs_hook=_unique_keys)
        json.dumps(obj, ensure_ascii=False).encode("utf-8")  # a lone surrogate (\ud800) could never be saved
    except InvalidAnswer:
        raise
    except json.JSONDecodeError as err:
        raise InvalidAnswer(f"not JSON: {err.msg} (character {err.pos})") from None
    except UnicodeError:
        raise InvalidAnswer("a JSON string is not valid Unicode (a lone surrogate escape)") from None
    except (ValueError, RecursionError, MemoryError) as err:  # what the bounds above should already stop
        raise InvalidAnswer(f"unreadable JSON ({type(err).__name__})") from None
    return obj


def extract_json(text: str) -> dict:
    """The first JSON object in `text` (inside a ``` fence first), or InvalidAnswer saying why not."""
    if len(text) > MAX_ANSWER_CHARS:
        raise InvalidAnswer(f"the answer has {len(text):,} characters (at most {MAX_ANSWER_CHARS:,} are read as JSON)")
    reason = "no JSON object found in the answer"
    for cand in [m.group(1) for m in _FENCE.finditer(text)] + [text]:
        start, end = cand.find("{"), cand.rfind("}")
        if start != -1 and end > start:
            try:
                obj = load_json(cand[start:end + 1])
            except InvalidAnswer as err:
                reason = f"no JSON object read from the answer: {err}"
                continue
            if isinstance(obj, dict):
                return obj
    raise InvalidAnswer(reason)
