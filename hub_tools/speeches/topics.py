"""Topic labels for speeches: the source's own topic when it maps onto the paper's 42 fine topics,
otherwise an LLM classification through the Runtime (cached, validated, never guessed).

counsel-chat's `topic` values ('family-conflict', 'lgbtq', ...) are the paper's fine-topic names
written in lower case; `paper.taxonomy.normalize_fine` matches them ignoring case and punctuation. A small
alias table covers spellings seen in other versions of such labels. A cell may hold several labels
('Substance Abuse,Addiction' in counsel-chat's counselchat-data.csv): the first that maps is the topic, and
labels that map to none ('Career Counseling') are counted by `unknown_topic_labels` for the stage's report.
"""

from __future__ import annotations

import functools
import logging
import re
from collections import Counter
from collections.abc import Iterable
from typing import Literal

from ..config import Endpoint
from ..paper import prompts
from ..paper.taxonomy import fine_topics, normalize_fine
from ..serving.answers import InvalidAnswer, load_json
from ..serving.calls import Call, run_calls
from ..serving.runtime import Runtime

log = logging.getLogger("psycopref")

TopicMethod = Literal["source", "llm", "unlabelled"]

# Source labels that are not fine-topic names once case and punctuation are ignored.
ALIASES = {
    "lgbt": "LGBTQ",
    "lgbtqia": "LGBTQ",
    "lgbtqplus": "LGBTQ",
    "grief": "Grief-and-loss",
    "bereavement": "Grief-and-loss",
    "sexuality": "Human-sexuality",
    "eatingdisorder": "Eating-disorders",
    "selfharming": "Self-harm",
    "childrenandadolescents": "Children-adolescents",
    "legalandregulatory": "Legal-regulatory",
    "sleep": "Sleep-improvement",
    "anger": "Anger-management",
    "workplace": "Workplace-relationships",
    "relationship": "Relationships",
    "family": "Family-conflict",
    "military": "Military-issues",
    "ethics": "Professional-ethics",
}
_SPLIT = re.compile(r"[,;|/]")  # multi-topic cells: 'depression, anxiety'


def _labels(raw: str | None) -> list[str]:
    """The labels of a source's topic cell, stripped, empty parts dropped."""
    return [part.strip() for part in _SPLIT.split(raw or "") if part.strip()]


@functools.lru_cache(maxsize=4096)
def _fine(label: str) -> str | None:
    return normalize_fine(label) or ALIASES.get("".join(ch for ch in label.lower() if ch.isalnum()))


def map_source_topic(raw: str | None) -> str | None:
    """The fine topic a source label names, or None. A multi-topic cell gives its first mappable part."""
    return next((fine for label in _labels(raw) if (fine := _fine(label))), None)


def unknown_topic_labels(raw_topics: Iterable[str | None]) -> Counter:
    """Source labels that name none of the 42 fine topics, counted per label (one count per cell)."""
    return Counter(label for raw in raw_topics for label in dict.fromkeys(_labels(raw)) if _fine(label) is None)


def topic_schema() -> dict:
    """JSON schema constraining the classifier's answer to one of the 42 fine topics."""
    return {
        "type": "object",
        "properties": {"topic": {"type": "string", "enum": fine_topics()}},
        "required": ["topic"],
    }


def topic_messages(speech: str) -> list[dict]:
    labels = "\n".join(f"- {t}" for t in fine_topics())
    return [{"role": "user", "content": prompts.TOPIC_PROMPT.format(labels=labels, client_speech=speech)}]


_FENCE = re.compile(r"^```(?:json)?\s*|\s*```$", re.IGNORECASE)


def parse_topic(text: str) -> str | None:
    """The fine topic of a classifier answer {"topic": ...}, or None when it is not one of the 42.

    Case and punctuation are ignored ('family conflict' is 'Family-conflict'); nothing else is guessed.
    """
    try:
        data = load_json(_FENCE.sub("", text.strip()))
    except InvalidAnswer:  # not JSON, or JSON no reader should trust (see `serving.answers`)
        return None
    if not isinstance(data, dict) or not isinstance(data.get("topic"), str):
        return None
    return normalize_fine(data["topic"])


def _retry_messages(messages: list[dict], bad: str) -> list[dict]:
    return messages + [
        {"role": "assistant", "content": bad},
        {"role": "user", "content": 'That is not one of the listed topics. Answer again with a JSON object '
                                    '{"topic": "<topic>"} whose topic is copied exactly from the list.'},
    ]


def classify_topics(texts: Iterable[str], rt: Runtime, endpoint: Endpoint, concurrency: int = 1,
                    attempts: int = 2) -> list[str | None]:
    """Fine topic (or None = unlabelled) for each text: one cached LLM call each, validated, and for the
    invalid ones another call with the invalid answer shown (up to `attempts` calls; None if still invalid).
    Each round goes through the parallel runner like generate and judge: `concurrency` calls in flight, or
    one engine batch on a batching backend (in-process vLLM)."""
    texts = list(texts)
    labels: list[str | None] = [None] * len(texts)
    messages = {i: topic_messages(t) for i, t in enumerate(texts)}
    template = prompts.template_hash(prompts.TOPIC_PROMPT)
    for attempt in range(attempts):
        todo = list(messages)
        calls = [Call(endpoint, messages[i], json_schema=topic_schema(), extra_key={"template": template, "attempt": attempt})
                 for i in todo]
        answers = run_calls(rt, calls, stage="topics", concurrency=concurrency, desc="classifying topics", unit="speech")
        for i, (completion, _) in zip(todo, answers):
            labels[i] = parse_topic(completion.text)
            if labels[i] is None:
                messages[i] = _retry_messages(messages[i], completion.text)
            else:
                del messages[i]
        if not messages:
            break
    missing = sum(label is None for label in labels)
    if missing:
        log.warning("topics: %d of %d speeches got no valid label from the classifier", missing, len(texts))
    return labels


def label_topics(raw_topics: list[str | None], texts: list[str], rt: Runtime | None = None,
                 classifier: Endpoint | None = None, concurrency: int = 1) -> tuple[list[str | None], list[TopicMethod]]:
    """Fine topic and method per speech: the source's label if it maps, else the classifier's (when
    `classifier` is given, called through `rt`), else None / 'unlabelled'."""
    fine = [map_source_topic(r) for r in raw_topics]
    methods: list[TopicMethod] = ["source" if f else "unlabelled" for f in fine]
    todo = [i for i, f in enumerate(fine) if f is None]
    if todo and classifier is not None:
        if rt is None:
            raise ValueError("classifying topics needs a Runtime")
        for i, label in zip(todo, classify_topics([texts[i] for i in todo], rt, classifier, concurrency)):
            if label is not None:
                fine[i], methods[i] = label, "llm"
    return fine, methods
