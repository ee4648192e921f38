"""The judge's batch mode against a fake OpenAI Batch API: one job for every uncached first attempt,
answers in the same cache at half price, retries online, and a resumed wait never submits twice."""

from __future__ import annotations

import json

import pytest
from test_judge import write_inputs

from hub_tools.dataset.pipeline import validate_recipe
from hub_tools.errors import StageError
from hub_tools.judge.stage import run_judge
from hub_tools.paper.principles import PRINCIPLE_NAMES
from hub_tools.serving.runtime import Runtime

from batch_server import serve_batches
from fakes import expected_rating, reading_judge

PRICES = {"prompt_per_1m": 2.5, "completion_per_1m": 10.0}
KEY = "sk-batch-secret-do-not-leak-42"


def answer(body: dict) -> str:
    return reading_judge({"messages": body["messages"]})


def make_recipe(work, api, **judge):
    cfg = {"endpoint": {"backend": "openai", "model": "gpt-4o", "base_url": api.base_url, "api_key_env": "BATCH_KEY",
                        "params": {"temperature": 0.0, "seed": 5}},
           "mode": "all_principles", "batch": True, "batch_poll_seconds": 0.01, "prices": PRICES} | judge
    return validate_recipe({"work_dir": str(work), "seed": 11, "judge": cfg})


def judge(recipe):
    with Runtime(recipe.work_dir, [recipe.judge.endpoint]) as rt:
        return run_judge(recipe.judge, recipe.work_dir, rt, seed=recipe.seed)


@pytest.fixture(autouse=True)
def _key(monkeypatch):
    monkeypatch.setenv("BATCH_KEY", KEY)


def test_first_attempts_go_in_one_batch_at_half_price(tmp_path):
    quality = write_inputs(tmp_path, n_speeches=3)
    with serve_batches(responder=answer) as api:
        ds = judge(make_recipe(tmp_path, api))
        [bid] = api.batches
        lines = api.requests_in(bid)
        assert api.created == 1 and len(lines) == 3 and api.online == 0  # every answer came from the batch
        body = lines[0]["body"]
        assert body["model"] == "gpt-4o" and body["seed"] == 5 and body["response_format"] == {"type": "json_object"}
        assert body["messages"][-1]["content"].startswith("You are provided with a client speech")
        assert all(line["url"] == "/v1/chat/completions" for line in lines)
        judge(make_recipe(tmp_path, api))  # a rerun: everything is cached, nothing is sent
        assert api.created == 1 and api.online == 0
    assert all(ds["complete"])
    for row in ds:
        assert all(row[f"{p}_rating"] == expected_rating(quality[row["response_id"]], p) for p in PRINCIPLE_NAMES)
    ledger = json.loads((tmp_path / "judge_ledger.json").read_text())
    online_price = (ledger["prompt_tokens"] * 2.5 + ledger["completion_tokens"] * 10.0) / 1e6
    assert ledger["calls"] == 3 and ledger["cost_usd"] == pytest.approx(online_price / 2, rel=1e-4)
    state = json.loads((tmp_path / "judge_batch.json").read_text())
    assert state["batch_id"] == bid and state["collected"] is True



def test_invalid_and_failed_batch_answers_are_asked_online(tmp_path):
    write_inputs(tmp_path, n_speeches=3)
    seen: set[str] = set()

    def first_invalid(body):
        prompt = body["messages"][-1]["content"]
        if "Client 0 " in prompt and prompt not in seen:  # the batch's answer for sp-0 is not JSON
            seen.add(prompt)
            return "I prefer response 2."
        return answer(body)

    with serve_batches(responder=first_invalid, fails=lambda body: "Client 2 " in body["messages"][-1]["content"]) as api:
        ds = judge(make_recipe(tmp_path, api))
        assert api.created == 1 and len(api.requests_in("batch_1")) == 3
        assert api.online == 2  # sp-0's retry (attempt 1) and sp-2's first attempt, which the batch could not answer
    assert all(ds["complete"])


def test_a_killed_wait_resumes_the_same_batch(tmp_path):
    write_inputs(tmp_path, n_speeches=2)
    with serve_batches(responder=answer, polls_to_finish=50) as api:
        with pytest.raises(StageError, match=r"still in_progress .*rerun the same command to resume waiting"):
            judge(make_recipe(tmp_path, api, batch_max_wait_seconds=0.05))
        [bid] = api.batches
        assert json.loads((tmp_path / "judge_batch.json").read_text())["batch_id"] == bid
        api.polls_to_finish = api.polls(bid) + 1
        ds = judge(make_recipe(tmp_path, api, batch_max_wait_seconds=5))
        assert api.created == 1 and api.online == 0  # the same batch, waited for again
        assert all(ds["complete"])
    everything = b"".join(p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())
    assert KEY.encode() not in everything  # the key is sent, never stored


def test_batch_needs_an_openai_compatible_endpoint(tmp_path):
    write_inputs(tmp_path, n_speeches=1)
    recipe = validate_recipe({"work_dir": str(tmp_path), "judge": {
        "endpoint": {"backend": "fake-judge", "model": "j"}, "batch": True}})
    with pytest.raises(ValueError, match="judge.batch needs an OpenAI-compatible endpoint"):
        judge(recipe)
