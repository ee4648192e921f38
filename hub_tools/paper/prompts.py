"""The paper's prompts (Appendix A), verbatim, plus the all-principles variant we add.

Every template has a short content hash recorded with each rating, so a dataset says exactly which
prompt produced it.
"""

from __future__ import annotations

import hashlib

from .principles import Principle, principles

RESPONDING_PROMPT = (
    "You are now a professional psychotherapist conducting a session with a client. "
    "Answer the given client speech.\n\n"
    "Client Speech: {client_speech}"
)

# Paper Appendix A. The paper says "the given principle" without showing where it goes; we state it
# (full Box B definition) right after the instruction.
RATING_PROMPT = (
    "You are provided with a client speech and four responses from different psychotherapists. "
    "Rate the responses based on how they align with the given principle.\n\n"
    "Principle: {principle}\n\n"
    "Client Speech: {client_speech}\n\n"
    "Response 1: {response1}\n\n"
    "Response 2: {response2}\n\n"
    "Response 3: {response3}\n\n"
    "Response 4: {response4}\n\n"
    "Provide a JSON object as output that includes the following keys:\n"
    "- response_1_rating: An integer score from 1 to 5 for response 1\n"
    "- rationale_1: A string explaining the reasoning behind the given score for response 1\n"
    "- response_2_rating: An integer score from 1 to 5 for response 2\n"
    "- rationale_2: A string explaining the reasoning behind the given score for response 2\n"
    "- response_3_rating: An integer score from 1 to 5 for response 3\n"
    "- rationale_3: A string explaining the reasoning behind the given score for response 3\n"
    "- response_4_rating: An integer score from 1 to 5 for response 4\n"
    "- rationale_4: A string explaining the reasoning behind the given score for response 4"
)

# Beyond the paper: one call rates the four responses on all seven principles at once.
ALL_PRINCIPLES_PROMPT = (
    "You are provided with a client speech and four responses from different psychotherapists. "
    "Rate each response on each of the following principles.\n\n"
    "Principles:\n{principles}\n\n"
    "Client Speech: {client_speech}\n\n"
    "Response 1: {response1}\n\n"
    "Response 2: {response2}\n\n"
    "Response 3: {response3}\n\n"
    "Response 4: {response4}\n\n"
    "Provide a JSON object as output with one key per principle ({keys}). Each value is an object "
    "with the keys response_1_rating, rationale_1, ..., response_4_rating, rationale_4: an integer "
    "score from 1 to 5 and a string explaining it, for each of the four responses."
)

# Topic classification for speeches whose source carries no usable topic.
TOPIC_PROMPT = (
    "Classify the client speech into exactly one of these counselling topics:\n{labels}\n\n"
    "Client Speech: {client_speech}\n\n"
    'Answer with a JSON object {{"topic": "<one of the topics above>"}}.'
)


def template_hash(template: str) -> str:
    """Short, stable id of a prompt template (first 12 hex chars of its SHA-256)."""
    return hashlib.sha256(template.encode("utf-8")).hexdigest()[:12]


def rating_template(mode: str) -> str:
    """The judge's template for a judge mode: `per_principle` (the paper's) or `all_principles` (ours)."""
    return ALL_PRINCIPLES_PROMPT if mode == "all_principles" else RATING_PROMPT


def responding_messages(speech: str, system_prompt: str | None = None) -> list[dict]:
    messages = [{"role": "system", "content": system_prompt}] if system_prompt else []
    messages.append({"role": "user", "content": RESPONDING_PROMPT.format(client_speech=speech)})
    return messages


def _responses(responses: list[str]) -> dict[str, str]:
    if len(responses) != 4:
        raise ValueError(f"the rating prompt takes exactly 4 responses, got {len(responses)}")
    return {f"response{i + 1}": r for i, r in enumerate(responses)}


def rating_messages(speech: str, responses: list[str], principle: Principle) -> list[dict]:
    text = RATING_PROMPT.format(principle=principle.full_text(), client_speech=speech, **_responses(responses))
    return [{"role": "user", "content": text}]


def all_principles_messages(speech: str, responses: list[str]) -> list[dict]:
    ps = principles()
    text = ALL_PRINCIPLES_PROMPT.format(
        principles="\n".join(f"[{p.short}] {p.full_text()}" for p in ps),
        keys=", ".join(p.short for p in ps),
        client_speech=speech,
        **_responses(responses),
    )
    return [{"role": "user", "content": text}]
