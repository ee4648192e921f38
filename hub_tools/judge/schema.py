"""The judge's answer formats, validated with pydantic.

- `paper`: the Rating Prompt's keys (paper Appendix A), one principle per call:
  {"response_1_rating": 4, "rationale_1": "...", ..., "rationale_4": "..."}.
- `nested`: all seven principles in one call, each a `paper` object: {"empathy": {...}, ...}.
- `compact` (ours, the default for all principles at once): each principle a list of four
  [rating, rationale] pairs in response order: {"empathy": [[4, "..."], [2, "..."], ...], ...}.
  Same information, about half the output tokens of `nested` (no repeated key names).

A rating must be a JSON integer 1–5 (no strings, floats or booleans) and every rationale a string;
anything else is invalid, retried, and finally quarantined — never guessed.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError, conlist, create_model

from ..paper.principles import PRINCIPLE_NAMES
from ..serving.answers import InvalidAnswer, extract_json

Rating = Annotated[StrictInt, Field(ge=1, le=5)]
N_RESPONSES = 4


class _Answer(BaseModel):
    model_config = ConfigDict(extra="ignore")


PrincipleRating = create_model(
    "PrincipleRating", __base__=_Answer,
    **{k: v for i in range(1, N_RESPONSES + 1)
       for k, v in ((f"response_{i}_rating", (Rating, ...)), (f"rationale_{i}", (str, ...)))},
)
AllPrinciplesRating = create_model(
    "AllPrinciplesRating", __base__=_Answer, **{p: (PrincipleRating, ...) for p in PRINCIPLE_NAMES}
)
CompactRating = create_model(
    "CompactRating", __base__=_Answer,
    **{p: (conlist(tuple[Rating, str], min_length=N_RESPONSES, max_length=N_RESPONSES), ...) for p in PRINCIPLE_NAMES},
)
AnswerFormat = Literal["paper", "nested", "compact"]


def answer_format(all_principles: bool, compact: bool = False) -> AnswerFormat:
    """The format a judge mode answers in: `paper` for one principle per call, else `compact` or `nested`."""
    return ("compact" if compact else "nested") if all_principles else "paper"


def json_schema(all_principles: bool, rationale_max_chars: int | None = None, compact: bool = False) -> dict:
    """JSON schema for constrained decoding (self-contained, no $refs), keys in answer order."""
    rationale = {"type": "string"} | ({"maxLength": rationale_max_chars} if rationale_max_chars else {})
    rating = {"type": "integer", "minimum": 1, "maximum": 5}
    if compact and all_principles:
        pair = {"type": "array", "prefixItems": [rating, rationale], "minItems": 2, "maxItems": 2}
        one = {"type": "array", "items": pair, "minItems": N_RESPONSES, "maxItems": N_RESPONSES}
    else:
        one = {"type": "object", "additionalProperties": False, "properties": {}, "required": []}
        for i in range(1, N_RESPONSES + 1):
            one["properties"][f"response_{i}_rating"] = rating
            one["properties"][f"rationale_{i}"] = rationale
            one["required"] += [f"response_{i}_rating", f"rationale_{i}"]
        if not all_principles:
            return one
    return {"type": "object", "additionalProperties": False, "properties": {p: one for p in PRINCIPLE_NAMES},
            "required": list(PRINCIPLE_NAMES)}


def parse_answer(text: str, all_principles: bool, compact: bool = False) -> dict[str, list[tuple[int, str]]]:
    """Validate a judge answer. Returns {principle or '': [(rating, rationale) for responses 1..4]}."""
    obj = extract_json(text)
    fmt = answer_format(all_principles, compact)
    model = {"paper": PrincipleRating, "nested": AllPrinciplesRating, "compact": CompactRating}[fmt]
    try:
        parsed = model.model_validate(obj)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise InvalidAnswer(f"{where}: {first['msg']} ({err.error_count()} problem(s))") from None

    def rows(r) -> list[tuple[int, str]]:
        return [(getattr(r, f"response_{i}_rating"), getattr(r, f"rationale_{i}")) for i in range(1, N_RESPONSES + 1)]

    if fmt == "compact":
        return {p: [tuple(pair) for pair in getattr(parsed, p)] for p in PRINCIPLE_NAMES}
    if fmt == "nested":
        return {p: rows(getattr(parsed, p)) for p in PRINCIPLE_NAMES}
    return {"": rows(parsed)}
