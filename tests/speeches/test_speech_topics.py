"""Topic labels: counsel-chat names map to the paper's fine topics; the LLM path validates, retries
once, never guesses, and goes through the response cache."""

from __future__ import annotations

import json

import pytest

from hub_tools.config import Endpoint
from hub_tools.paper.taxonomy import fine_topics
from hub_tools.serving import Backend, Completion, register_backend
from hub_tools.serving.runtime import Runtime
from hub_tools.speeches.topics import (
    classify_topics,
    label_topics,
    map_source_topic,
    parse_topic,
    topic_schema,
    unknown_topic_labels,
)

# counsel-chat's `topic` values (nbertagnolli/counsel-chat) and a few the taxonomy adds.
COUNSEL_TOPICS = [
    "depression", "anxiety", "parenting", "self-esteem", "relationship-dissolution", "workplace-relationships",
    "spirituality", "trauma", "domestic-violence", "anger-management", "sleep-improvement", "intimacy",
    "grief-and-loss", "substance-abuse", "family-conflict", "marriage", "eating-disorders", "relationships",
    "lgbtq", "behavioral-change", "addiction", "legal-regulatory", "professional-ethics", "stress",
    "human-sexuality", "social-relationships", "children-adolescents", "military-issues", "self-harm",
    "diagnosis", "counseling-fundamentals", "career", "aging", "caregiving", "friendship-conflict", "bullying",
    "school-life", "culture", "new-environment", "self-care", "communication",
]


class FakeBackend(Backend):
    """In-memory Backend: answers from a queue (or a function of the prompt) and records every call."""

    name = "fake"
    supports_json_schema = True

    def __init__(self, answers):
        self.answers = answers
        self.calls: list[tuple[list[dict], dict, dict | None]] = []

    def chat(self, messages, params, json_schema=None):
        self.calls.append((messages, params, json_schema))
        answer = self.answers(messages) if callable(self.answers) else self.answers.pop(0)
        return Completion(answer, prompt_tokens=10, completion_tokens=3, finish_reason="stop")

    def close(self):
        pass


@pytest.fixture
def rt(tmp_path):
    with Runtime(tmp_path) as runtime:
        yield runtime


def endpoint(backend: FakeBackend, params: dict | None = None) -> Endpoint:
    """An endpoint answered by `backend` (registered under a name of its own for this test)."""
    name = f"fake-topics-{id(backend)}"
    register_backend(name)(lambda endpoint, managed_url=None: backend)
    return Endpoint(backend=name, model="topic-model", params=params or {})


def topic(label: str) -> str:
    return json.dumps({"topic": label})


@pytest.mark.parametrize("raw", COUNSEL_TOPICS)
def test_counsel_chat_topics_map_to_fine_topics(raw):
    fine = map_source_topic(raw)
    assert fine in fine_topics()
    assert fine.lower() == raw.lower()  # the names are the paper's, only the case differs


def test_multi_label_cells_map_and_unknown_labels_are_counted():
    # counselchat-data.csv writes `topics` as comma-separated Title Case labels
    cells = ["Substance Abuse,Addiction", "Career Counseling,Anxiety", "Career Counseling", "Relationship Dissolution ",
             None, "", "Career Counseling, Career Counseling"]
    assert [map_source_topic(c) for c in cells] == ["Substance-abuse", "Anxiety", None, "Relationship-dissolution",
                                                    None, None, None]
    assert unknown_topic_labels(cells) == {"Career Counseling": 3}  # once per cell, never silently dropped


def test_specific_mappings_aliases_and_unknowns():
    assert map_source_topic("family-conflict") == "Family-conflict"
    assert map_source_topic("lgbtq") == "LGBTQ"
    assert map_source_topic("grief") == "Grief-and-loss"
    assert map_source_topic("eating-disorder") == "Eating-disorders"
    assert map_source_topic("Depression, Anxiety") == "Depression"
    assert map_source_topic("unknown-thing, stress") == "Stress"
    assert map_source_topic("Overgeneralization") is None
    assert map_source_topic("") is None and map_source_topic(None) is None


def test_parse_topic_is_strict():
    assert parse_topic(topic("Anxiety")) == "Anxiety"
    assert parse_topic('```json\n{"topic": "family conflict"}\n```') == "Family-conflict"
    assert parse_topic(topic("Loneliness")) is None
    assert parse_topic("Anxiety") is None
    assert parse_topic(json.dumps({"label": "Anxiety"})) is None
    assert parse_topic(json.dumps({"topic": 3})) is None


def test_llm_labels_with_schema_and_params(rt):
    backend = FakeBackend([topic("Sleep-improvement"), topic("Career")])
    labels = classify_topics(["I can't sleep.", "My job is stuck."], rt, endpoint(backend, {"temperature": 0}))
    assert labels == ["Sleep-improvement", "Career"]
    messages, params, schema = backend.calls[0]
    assert "I can't sleep." in messages[-1]["content"] and "Family-conflict" in messages[-1]["content"]
    assert params == {"temperature": 0}
    assert schema == topic_schema() and schema["properties"]["topic"]["enum"] == fine_topics()
    assert len(schema["properties"]["topic"]["enum"]) == 42


def test_invalid_label_is_retried_once_then_accepted(rt):
    backend = FakeBackend([topic("Loneliness"), topic("Social-relationships")])
    assert classify_topics(["Nobody calls me."], rt, endpoint(backend)) == ["Social-relationships"]
    assert len(backend.calls) == 2
    retry = backend.calls[1][0]
    assert retry[-2] == {"role": "assistant", "content": topic("Loneliness")}  # the bad answer is shown back


def test_invalid_twice_is_unlabelled_never_guessed(rt):
    backend = FakeBackend(["not json", topic("Loneliness")])
    fine, methods = label_topics([None], ["Nobody calls me."], rt, endpoint(backend))
    assert fine == [None] and methods == ["unlabelled"]
    assert len(backend.calls) == 2


def test_cache_prevents_paying_twice(tmp_path):
    first = FakeBackend([topic("Loneliness"), topic("Aging")])
    ep = endpoint(first)
    with Runtime(tmp_path) as rt:
        assert classify_topics(["I am getting old."], rt, ep) == ["Aging"]
    second = FakeBackend([])  # any call would pop from an empty list and fail
    register_backend(ep.backend)(lambda endpoint, managed_url=None: second)  # same endpoint, new process
    with Runtime(tmp_path) as rt:
        assert classify_topics(["I am getting old."], rt, ep) == ["Aging"]
        assert second.calls == []
        assert rt.cache.ledger("topics")["calls"] == 2


def test_source_topics_win_and_only_the_rest_are_classified(rt):
    backend = FakeBackend(lambda messages: topic("Trauma"))
    fine, methods = label_topics(["depression", None, "not-a-topic"], ["s1", "s2", "s3"], rt, endpoint(backend))
    assert fine == ["Depression", "Trauma", "Trauma"]
    assert methods == ["source", "llm", "llm"]
    assert len(backend.calls) == 2


def test_without_backend_unmapped_topics_are_unlabelled():
    fine, methods = label_topics(["anxiety", None], ["a", "b"])
    assert fine == ["Anxiety", None] and methods == ["source", "unlabelled"]


def test_classification_runs_through_the_parallel_runner(rt):
    """Several speeches are classified at once (`concurrency` calls in flight), each keeps its own label and
    the invalid ones get their retry in a second round."""
    import threading
    import time

    lock, state = threading.Lock(), {"now": 0, "most": 0}

    def answer(messages):
        with lock:
            state["now"] += 1
            state["most"] = max(state["most"], state["now"])
        time.sleep(0.05)
        with lock:
            state["now"] -= 1
        speech = messages[0]["content"]
        if "sleep" in speech:
            return topic("Sleep-improvement")
        return topic("Aging") if messages[-1]["role"] == "user" and len(messages) > 1 else topic("Loneliness")

    backend = FakeBackend(answer)
    texts = ["I can't sleep.", "I am getting old.", "Nights without sleep.", "My knees hurt."]
    assert classify_topics(texts, rt, endpoint(backend), concurrency=3) == ["Sleep-improvement", "Aging",
                                                                           "Sleep-improvement", "Aging"]
    assert state["most"] > 1 and len(backend.calls) == 6  # four first answers, two retries


def test_an_in_process_vllm_classifier_gets_the_speeches_as_one_batch(fake_vllm, tmp_path):
    vllm = fake_vllm
    ep = Endpoint(backend="vllm", model="/models/classifier", params={"temperature": 0})
    with Runtime(tmp_path, [ep]) as own:
        labels = classify_topics([f"speech number {i}" for i in range(12)], own, ep)
    assert labels == [fine_topics()[0]] * 12  # the stand-in answers the schema's first enum value
    assert len(vllm.LLM.calls) == 1 and len(vllm.LLM.calls[0]["conversations"]) == 12
    assert vllm.LLM.calls[0]["sampling_params"][0].structured_outputs.json == topic_schema()
