"""The pairwise judge: a policy's answer against the reference's under the seven principles, in both orders.

Each speech is asked twice: the policy's answer as Response A (the reference's as B), then as Response B.
The judge answers JSON {"better": "A" | "B" | "tie"} (schema-constrained where the backend supports it),
optionally after a short reason. Invalid answers are retried with the next seed, like the judge stage,
and after `max_attempts` the order counts as missing: reported, never guessed. Every call goes through
the Runtime's cache, so a rerun asks nothing twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from ...judge.schema import InvalidAnswer
from ...paper.prompts import pairwise_messages, pairwise_template, template_hash
from ...serving.answers import extract_json
from ...serving.calls import Call, batches, run_calls
from ...serving.runtime import Runtime, run_parallel
from .config import PairwiseJudgeConfig
from .stats import VERDICTS, order_score, speech_score

STAGE = "eval-judge"  # the judge's calls in the cache and its ledger
POSITIONS = ("A", "B")  # where the policy's answer is shown: first order, second order


class Verdict(BaseModel):
    """A pairwise verdict: which response is better, and an optional short reason."""

    model_config = ConfigDict(extra="ignore")
    better: Literal[VERDICTS]
    reason: str | None = None

    @field_validator("better", mode="before")
    @classmethod
    def _spelling(cls, value):
        """'a', ' B ', 'TIE' read as A, B, tie; anything else stays invalid."""
        if isinstance(value, str):
            return {"a": "A", "b": "B", "tie": "tie"}.get(value.strip().lower(), value)
        return value


def verdict_schema(reason_max_chars: int | None = None) -> dict:
    """JSON schema of the verdict (reason first when asked, so it can inform the verdict)."""
    props: dict = {}
    if reason_max_chars:
        props["reason"] = {"type": "string", "maxLength": reason_max_chars}
    props["better"] = {"type": "string", "enum": list(VERDICTS)}
    return {"type": "object", "properties": props, "required": list(props), "additionalProperties": False}


def parse_verdict(text: str) -> Verdict:
    """The judge's answer validated, or `InvalidAnswer` saying why."""
    try:
        return Verdict.model_validate(extract_json(text))
    except ValidationError as err:
        raise InvalidAnswer(f"better: {err.errors()[0]['msg']}") from None


def prompt_hash(cfg: PairwiseJudgeConfig) -> str:
    """The content hash of the pairwise template this judge config sends."""
    return template_hash(pairwise_template(bool(cfg.reason_max_chars)))


@dataclass(frozen=True)
class Pair:
    """One speech's two answers to compare."""

    speech_id: str
    speech: str
    policy: str
    reference: str


def judge_pairs(cfg: PairwiseJudgeConfig, rt: Runtime, pairs: list[Pair], *, seed: int = 42,
                desc: str = "eval judge") -> list[dict]:
    """Both orders of every pair; one record per pair: the raw verdict per order (`verdict_A`: the policy
    shown as A; `verdict_B`: as B; None = missing), the policy's score per order and for the speech, the
    reasons, and the errors of invalid answers (with the last raw text when an order stays missing)."""
    schema = verdict_schema(cfg.reason_max_chars) if cfg.constrained else None
    reason = bool(cfg.reason_max_chars)

    def params_for(attempt: int) -> dict:
        params = dict(cfg.endpoint.params)
        if attempt:  # a retry must be able to differ from the first answer
            params["seed"] = int(params.get("seed", seed)) + attempt
        return params

    def messages_of(i: int) -> list[dict]:
        pair, position = pairs[i // 2], POSITIONS[i % 2]
        a, b = (pair.policy, pair.reference) if position == "A" else (pair.reference, pair.policy)
        return pairwise_messages(pair.speech, a, b, reason)

    def price(c) -> float:
        return cfg.prices.cost(c.prompt_tokens, c.completion_tokens)

    if batches(rt, cfg.endpoint):  # an in-process engine: every first attempt in one batch, into the cache
        run_calls(rt, [Call(cfg.endpoint, messages_of(i), params_for(0), schema, {"attempt": 0}) for i in range(2 * len(pairs))],
                  stage=STAGE, concurrency=cfg.concurrency, desc=f"{desc} (batched)", unit="call", price=price)

    def ask(i: int) -> dict:
        messages = messages_of(i)
        errors, text = [], ""
        for attempt in range(cfg.max_attempts):
            completion, _ = rt.call(cfg.endpoint, messages, stage=STAGE, params=params_for(attempt), json_schema=schema,
                                    extra_key={"attempt": attempt}, price=price)
            text = completion.text
            try:
                return {"verdict": parse_verdict(text), "errors": errors}
            except InvalidAnswer as err:
                errors.append(str(err))
        return {"verdict": None, "errors": errors, "raw": text}

    answers = run_parallel(ask, 2 * len(pairs), cfg.concurrency, desc, "call")
    records = []
    for k, pair in enumerate(pairs):
        row: dict = {"speech_id": pair.speech_id}
        for position, got in zip(POSITIONS, answers[2 * k: 2 * k + 2]):
            verdict = got["verdict"]
            row[f"verdict_{position}"] = verdict.better if verdict else None
            row[f"score_{position}"] = order_score(row[f"verdict_{position}"], position)
            row[f"reason_{position}"] = verdict.reason if verdict else None
            row[f"errors_{position}"] = got["errors"]
            if verdict is None:
                row[f"raw_{position}"] = got["raw"]
        row["score"] = speech_score(row["score_A"], row["score_B"])
        records.append(row)
    return records
