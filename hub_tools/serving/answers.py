"""Reading structured answers out of model text: the JSON object a judge, ranker or classifier was asked
for, found in a fenced block or in the surrounding prose a model may add."""

from __future__ import annotations

import json
import re

_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.S)


class InvalidAnswer(ValueError):
    """A model's text is not the structured answer it was asked for; the message says why."""


def extract_json(text: str) -> dict:
    """The first JSON object in `text` (inside a ``` fence first), or InvalidAnswer."""
    candidates = [m.group(1) for m in _FENCE.finditer(text)] + [text]
    for cand in candidates:
        start, end = cand.find("{"), cand.rfind("}")
        if start != -1 and end > start:
            try:
                obj = json.loads(cand[start:end + 1])
            except json.JSONDecodeError:
                continue
            if isinstance(obj, dict):
                return obj
    raise InvalidAnswer("no JSON object found in the answer")
