"""The LLM-as-ranker baseline: the paper's prompt in both orders, order-inconsistent verdicts as ties,
unreadable answers, JSON-schema requests and the call cache."""

from __future__ import annotations

import pytest

from hub_tools.paper.prompts import RANKER_PROMPT, RANKER_SCHEMA
from hub_tools.reward.config import RankerSection
from hub_tools.reward.ranker import pair_score, parse_verdict, rank_pairs

from reward_helpers import RANKER

SPEECHES = ["i feel sad and alone", "i feel lost at work", "my family is tired of me"]
CHOSEN = ["that sounds really hard i hear you", "tell me more about what feels heaviest", "you are not alone"]
REJECTED = ["just stop it", "get over yourself", "whatever fine"]


@pytest.fixture
def ranker():
    RANKER.mode, RANKER.calls = "content", []
    yield RankerSection(endpoint={"backend": "fake-ranker", "model": "judge-x", "params": {"temperature": 0}}, concurrency=2)
    RANKER.mode, RANKER.calls = "content", []


def test_verdicts_and_pair_outcomes():
    assert parse_verdict('{"better": 2}') == 2
    assert parse_verdict('Here you go:\n```json\n{"better": "1"}\n```') == 1
    assert parse_verdict('{"better": 3}') is None and parse_verdict("Response 1") is None
    assert pair_score(1, 2) == 1.0  # chosen first: 1; chosen second: 2 -> chosen both times
    assert pair_score(2, 1) == 0.0
    assert pair_score(1, 1) == 0.5 and pair_score(2, 2) == 0.5  # follows the position: a tie
    assert pair_score(None, 2) == 0.5


def test_content_ranker_is_right_in_both_orders(ranker, tmp_path):
    out = rank_pairs(ranker, tmp_path, SPEECHES, CHOSEN, REJECTED)
    assert out["accuracy"] == 1.0 and out["consistent"] == 1.0 and out["invalid"] == 0 and out["n_pairs"] == 3
    assert len(RANKER.calls) == 6 and all(c["schema"] == RANKER_SCHEMA for c in RANKER.calls)
    prompts = [c["prompt"] for c in RANKER.calls]
    paper = RANKER_PROMPT.split("{client_speech}")[0]
    assert all(p.startswith(paper) for p in prompts)  # the paper's wording, verbatim
    for speech, good, bad in zip(SPEECHES, CHOSEN, REJECTED):  # each pair shown once in each order
        assert f"Client Speech: {speech}\n\nResponse 1: {good}\n\nResponse 2: {bad}" in "".join(prompts)
        assert f"Client Speech: {speech}\n\nResponse 1: {bad}\n\nResponse 2: {good}" in "".join(prompts)
    rank_pairs(ranker, tmp_path, SPEECHES, CHOSEN, REJECTED)
    assert len(RANKER.calls) == 6  # answered from the work dir's cache


def test_position_bias_counts_as_ties(ranker, tmp_path):
    RANKER.mode = "first"
    out = rank_pairs(ranker, tmp_path, SPEECHES, CHOSEN, REJECTED)
    assert out["accuracy"] == 0.5 and out["consistent"] == 0.0 and out["invalid"] == 0


def test_fenced_and_unreadable_answers(ranker, tmp_path):
    RANKER.mode = "fenced"
    assert rank_pairs(ranker, tmp_path / "a", SPEECHES, CHOSEN, REJECTED)["accuracy"] == 1.0
    RANKER.mode = "garbage"
    out = rank_pairs(ranker, tmp_path / "b", SPEECHES, CHOSEN, REJECTED)
    assert out["invalid"] == 6 and out["accuracy"] == 0.5
