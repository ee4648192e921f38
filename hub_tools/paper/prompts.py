"""The paper's prompts (Appendix A), verbatim, plus the variants we add: all principles in one call, the
win-rate evaluation's pairwise judge and its length constraint.

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

# The win-rate evaluation's length-constrained setting (paper §4.2: responses "of similar length to those
# produced by GPT-4o"; the paper does not print the instruction): appended to the Responding Prompt, with
# the reference model's word count for that speech.
LENGTH_CONSTRAINT = "\n\nAnswer in about {words} words."

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

# Ours, the default for all seven at once: the same ratings and rationales as a compact list per
# principle, about half the output tokens of the keyed format above.
ALL_PRINCIPLES_COMPACT_PROMPT = ALL_PRINCIPLES_PROMPT.split("Provide a JSON object")[0] + (
    "Provide a JSON object as output with one key per principle ({keys}), in that order. Each value is a "
    "list of four [score, rationale] pairs, for responses 1 to 4 in order: an integer score from 1 to 5 "
    "and a short string explaining it."
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


def rating_template(mode: str, compact: bool = False) -> str:
    """The judge's template for a judge mode: `per_principle` (the paper's) or `all_principles` (ours),
    the latter asking for keyed or compact answers."""
    if mode != "all_principles":
        return RATING_PROMPT
    return ALL_PRINCIPLES_COMPACT_PROMPT if compact else ALL_PRINCIPLES_PROMPT


def responding_messages(speech: str, system_prompt: str | None = None, length_words: int | None = None) -> list[dict]:
    """The Responding Prompt for one speech; `length_words` adds the length constraint (LENGTH_CONSTRAINT)."""
    messages = [{"role": "system", "content": system_prompt}] if system_prompt else []
    text = RESPONDING_PROMPT.format(client_speech=speech)
    if length_words is not None:
        text += LENGTH_CONSTRAINT.format(words=max(1, int(length_words)))
    messages.append({"role": "user", "content": text})
    return messages


def _responses(responses: list[str]) -> dict[str, str]:
    if len(responses) != 4:
        raise ValueError(f"the rating prompt takes exactly 4 responses, got {len(responses)}")
    return {f"response{i + 1}": r for i, r in enumerate(responses)}


def rating_messages(speech: str, responses: list[str], principle: Principle) -> list[dict]:
    text = RATING_PROMPT.format(principle=principle.full_text(), client_speech=speech, **_responses(responses))
    return [{"role": "user", "content": text}]


def principles_text() -> str:
    """All seven principles as a judge sees them: one "[short] name: definition" block with its aspects each."""
    return "\n".join(f"[{p.short}] {p.full_text()}" for p in principles())


def all_principles_messages(speech: str, responses: list[str], compact: bool = False) -> list[dict]:
    text = rating_template("all_principles", compact).format(
        principles=principles_text(),
        keys=", ".join(p.short for p in principles()),
        client_speech=speech,
        **_responses(responses),
    )
    return [{"role": "user", "content": text}]


# Paper Appendix A, "LLM-as-Ranker Prompt", verbatim. The paper shows no answer format; we ask for a JSON
# verdict after it (RANKER_ANSWER), schema-constrained where the backend supports it (RANKER_SCHEMA).
RANKER_PROMPT = (
    "Determine which of the two given responses from different psychotherapists to a client's speech is better:\n\n"
    "Client Speech: {client_speech}\n\n"
    "Response 1: {response_1}\n\n"
    "Response 2: {response_2}"
)
RANKER_ANSWER = '\n\nAnswer with a JSON object: {{"better": 1}} if Response 1 is better, {{"better": 2}} if Response 2 is better.'
RANKER_SCHEMA = {"type": "object", "properties": {"better": {"type": "integer", "enum": [1, 2]}},
                 "required": ["better"], "additionalProperties": False}


def ranker_messages(speech: str, response_1: str, response_2: str) -> list[dict]:
    text = (RANKER_PROMPT + RANKER_ANSWER).format(client_speech=speech, response_1=response_1, response_2=response_2)
    return [{"role": "user", "content": text}]


# Ours: the win-rate evaluation (paper §4.2) has the judge compare a policy's answer with the reference
# model's "using the proposed PsychoCounsel Principles" but does not print the prompt. This one shows the
# seven principles' Box B text, the speech and the two answers as A and B, and asks for a small JSON
# verdict (the evaluation asks it in both orders). PAIRWISE_REASONED asks for a short reason first.
PAIRWISE_PROMPT = (
    "You are provided with a client speech and two responses from different psychotherapists. "
    "Compare the two responses on the following principles and decide which one is better overall.\n\n"
    "Principles:\n{principles}\n\n"
    "Client Speech: {client_speech}\n\n"
    "Response A: {response_a}\n\n"
    "Response B: {response_b}\n\n"
)
PAIRWISE_ANSWER = ('Answer with a JSON object: {"better": "A"} if Response A is better, {"better": "B"} if '
                   'Response B is better, {"better": "tie"} if neither is better.')
PAIRWISE_REASONED = ('Answer with a JSON object {"reason": "<one short sentence>", "better": "A", "B" or "tie"}: '
                     '"A" if Response A is better, "B" if Response B is better, "tie" if neither is better.')


def pairwise_template(reason: bool = False) -> str:
    """The pairwise judge's whole template (for its content hash): with or without the short reason."""
    return PAIRWISE_PROMPT + (PAIRWISE_REASONED if reason else PAIRWISE_ANSWER)


def pairwise_messages(speech: str, response_a: str, response_b: str, reason: bool = False) -> list[dict]:
    """The pairwise comparison of two answers to one speech under the seven principles."""
    text = PAIRWISE_PROMPT.format(principles=principles_text(), client_speech=speech, response_a=response_a,
                                  response_b=response_b)
    return [{"role": "user", "content": text + (PAIRWISE_REASONED if reason else PAIRWISE_ANSWER)}]
