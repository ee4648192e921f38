"""The judge's batch mode against a fake OpenAI Batch API: one job for every uncached first attempt,
answers in the same cache at half price, retries online, and a resumed wait never submits twice."""

from __future__ import annotations

import json
import logging

import pytest
from test_judge import write_inputs

from hub_tools.dataset.pipeline import validate_recipe
from hub_tools.errors import Interrupted, StageError
from hub_tools.judge.stage import run_judge
from hub_tools.paper.principles import PRINCIPLE_NAMES
from hub_tools.serving.batch import BatchJob, BatchRequest
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


# --- a long wait rides out a flaky server: polls are retried like online calls ---------------------------

def flaky_recipe(work, api, **endpoint):
    recipe = make_recipe(work, api, batch_poll_seconds=0.05)
    recipe.judge.endpoint = recipe.judge.endpoint.model_copy(update={"max_retries": 3, "max_retry_wait": 1.0} | endpoint)
    return recipe


def test_5xx_and_429_while_polling_are_retried_honouring_retry_after(tmp_path, caplog):
    write_inputs(tmp_path, n_speeches=2)
    caplog.set_level(logging.INFO, logger="psycopref")
    with serve_batches(responder=answer, polls_to_finish=3) as api:
        api.faults.extend([(503, None), (429, "0.4"), (500, None)])  # three checks fail, the fourth gets through
        ds = judge(flaky_recipe(tmp_path, api))
        [bid] = api.batches
        polls = [t for (_, path), t in zip(api.log, api.times) if path == f"/v1/batches/{bid}"]
        assert api.created == 1 and api.online == 0 and all(ds["complete"])
        assert len(polls) == 3 + 3  # three failed checks and the three the batch needs
        assert polls[2] - polls[1] >= 0.38  # the 429's Retry-After, not the backoff
    waits = [r.getMessage() for r in caplog.records if r.getMessage().startswith("batch endpoint")]
    assert [w.split(": ", 1)[1].split(";")[0] for w in waits] == ["HTTP 503", "HTTP 429 asking to retry after 0.4 s",
                                                                   "HTTP 500"]
    assert "retry 3 of 3" in waits[-1]


def test_a_lasting_outage_while_polling_stops_resumably_and_a_rerun_waits_for_the_same_batch(tmp_path, capsys):
    write_inputs(tmp_path, n_speeches=2)
    with serve_batches(responder=answer, polls_to_finish=3) as api:
        recipe = flaky_recipe(tmp_path, api, max_retries=2, max_retry_wait=0.05)
        original = api.create

        def create_then_break(body):  # the server goes down right after accepting the batch
            out = original(body)
            api.faults.extend([(502, None)] * 3)
            return out

        api.create = create_then_break
        with pytest.raises(StageError) as err:
            judge(recipe)
        message = str(err.value)
        assert message.startswith(f"batch endpoint {api.url}/v1/batches/batch_1 failed after 3 attempts: HTTP 502; ")
        assert "batch batch_1 goes on" in message and "rerun the same command to resume waiting" in message
        assert KEY not in message
        api.create = original
        ds = judge(recipe)  # the server is back: the same batch, no second one
        assert api.created == 1 and api.online == 0 and all(ds["complete"])


def test_waiting_shows_progress_and_logs_only_changes(tmp_path, capsys, caplog):
    write_inputs(tmp_path, n_speeches=3)
    caplog.set_level(logging.INFO, logger="psycopref")
    with serve_batches(responder=answer, polls_to_finish=6) as api:
        judge(flaky_recipe(tmp_path, api))
        assert api.polls("batch_1") == 6
    status = [r.getMessage() for r in caplog.records if r.getMessage().startswith("batch batch_1: ")]
    assert status == ["batch batch_1: in_progress (0 of 3 done, 0 failed)",
                      "batch batch_1: completed (3 of 3 done, 0 failed)"]  # six polls, two changes
    bar = capsys.readouterr().err
    assert "batch batch_1" in bar and "in_progress" in bar and "3/3" in bar


def test_an_unreadable_result_line_is_asked_online_instead_of_stopping_the_stage(tmp_path):
    write_inputs(tmp_path, n_speeches=3)
    broken: list[str] = []

    def line_of(item):  # the first line gets a 5,001-digit token count, the second is cut off
        line = json.dumps(item)
        if len(broken) < 2:
            broken.append(item["custom_id"])
            return line.replace('"prompt_tokens": 100', '"prompt_tokens": ' + "1" * 5001) if len(broken) == 1 \
                else line[: len(line) // 2]
        return line

    with serve_batches(responder=answer, line_of=line_of) as api:
        ds = judge(make_recipe(tmp_path, api))
        assert api.created == 1 and api.online == 2 and all(ds["complete"])


def test_ctrl_c_while_waiting_says_the_batch_goes_on_and_where_its_id_is(tmp_path):
    with serve_batches(polls_to_finish=50) as api:
        job = BatchJob(api.base_url, tmp_path / "judge_batch.json", poll_seconds=0.01)
        bid = job.submit([BatchRequest("k-1", {"model": "m", "messages": [{"role": "user", "content": "hi"}]})])

        def ctrl_c(seconds):
            raise KeyboardInterrupt

        with pytest.raises(Interrupted) as err:
            job.wait(bid, sleep=ctrl_c)
        job.close()
    assert str(err.value) == (f"batch {bid} is still in_progress at {api.base_url} (it goes on without us); its id is "
                              f"saved in {tmp_path / 'judge_batch.json'}")
    assert json.loads((tmp_path / "judge_batch.json").read_text())["batch_id"] == bid
