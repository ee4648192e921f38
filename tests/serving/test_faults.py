"""Faults at an OpenAI-compatible endpoint: the real `openai` backend (InferenceClient) against the fault
server, alone, inside the generate and judge stages, and through the CLI. Each fault either passes
(after retries) or ends in one clear line naming the endpoint; the API key is never written anywhere;
a rerun after a stop never repeats an answered call."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import time
import traceback
from email.utils import formatdate
from pathlib import Path

import pytest
import yaml
from datasets import Dataset, load_from_disk

from hub_tools.cli import main
from hub_tools.config import Endpoint
from hub_tools.dataset.pipeline import run_stages, validate_recipe
from hub_tools.io import save_atomic
from hub_tools.serving import BackendError, make_backend
from hub_tools.serving.openai_compat import parse_retry_after

from fakes import reading_judge
from fault_server import (
    Answer,
    Drop,
    Hang,
    Malformed,
    Status,
    Truncated,
    big_answer,
    prompt_of,
    refused_url,
    serve_faults,
)

pytestmark = pytest.mark.timeout(120)

KEY_ENV, KEY = "PSYCOPREF_FAULT_KEY", "sk-fault-test-DoNotLeak-7f3a9c"
FAST = {"timeout": 1.0, "max_retries": 1, "max_retry_wait": 0.05}  # a hang costs 1 s, a retry 50 ms


def respond(body: dict) -> str:
    """The judge (it asks for JSON) rates what it is shown; a pool member answers 'quality q reply of
    <model> to <end of its prompt>', q fixed per model: the form the fake judge reads."""
    if body.get("response_format"):
        return reading_judge(body)
    model = body.get("model", "")
    return f"quality {sum(map(ord, model)) % 5 + 1} reply of {model} to {prompt_of(body)[-40:]}"


@pytest.fixture
def server():
    with serve_faults(responder=respond) as srv:
        yield srv


def endpoint(base_url: str, **over) -> Endpoint:
    return Endpoint(model="m-1", base_url=base_url, **(FAST | over))


def ask(ep: Endpoint, text: str = "hello"):
    return make_backend(ep).chat([{"role": "user", "content": text}], {})


def label(base_url: str, model: str = "m-1") -> str:
    return f"{base_url} (model {model})"


def gaps(server) -> list[float]:
    times = [r.at for r in server.calls()]
    return [b - a for a, b in zip(times, times[1:])]


# --- Retry-After ---------------------------------------------------------------------------------------

def test_parse_retry_after_reads_seconds_and_http_dates():
    now = 1_700_000_000.0
    assert parse_retry_after("7", now) == 7.0
    assert parse_retry_after(" 0 ", now) == 0.0
    assert parse_retry_after("1.5", now) == 1.5
    assert parse_retry_after(formatdate(now + 42, usegmt=True), now) == pytest.approx(42)
    assert parse_retry_after(formatdate(now - 42, usegmt=True), now) == 0.0  # a past date: retry now
    for bad in (None, "", "soon", "-3", "nan", "inf"):
        assert parse_retry_after(bad, now) is None


@pytest.mark.parametrize("code, header, least, most", [
    (429, "1", 0.95, 3.0),
    (503, "http-date", 0.9, 4.0),  # the date has whole seconds: 1 to 2 s ahead
])
def test_retry_after_is_waited_for_and_logged(server, caplog, code, header, least, most):
    if header == "http-date":
        header = formatdate(time.time() + 2, usegmt=True)
    server.script(Status(code, retry_after=header))
    caplog.set_level(logging.INFO, logger="psycopref")
    out = ask(endpoint(server.base_url, max_retry_wait=5))
    assert "reply of m-1 to hello" in out.text
    assert [r.behaviour for r in server.calls()] == [f"status {code}", "answer"]
    assert least <= gaps(server)[0] < most  # the server's time, not the 0.5 s backoff
    lines = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO and r.name == "psycopref"]
    assert len(lines) == 1 and lines[0].startswith(f"{label(server.base_url)}: HTTP {code} asking to retry after ")
    assert "retry 1 of 1 in " in lines[0]


def test_retry_after_is_capped_by_max_retry_wait(server, caplog):
    server.script(Status(429, retry_after="3600"))
    caplog.set_level(logging.INFO, logger="psycopref")
    start = time.monotonic()
    ask(endpoint(server.base_url, max_retry_wait=0.2))
    assert time.monotonic() - start < 5
    assert "asking to retry after 3600 s (more than max_retry_wait=0.2); retry 1 of 1 in 0.2 s" in caplog.text


def test_without_retry_after_the_backoff_is_exponential(server):
    # a 503 without the header, and a 500 whose Retry-After does not count (only 429 and 503 say it)
    server.script(Status(503), Status(500, retry_after="30"))
    ask(endpoint(server.base_url, max_retries=2, max_retry_wait=5))
    first, second = gaps(server)
    assert 0.45 <= first < 0.95 <= second < 3  # 0.5 then 1 s, not the 30 s (capped to 5) the 500 asked for


def test_retries_stay_bounded(server):
    server.fallback = Status(429, retry_after="0")
    with pytest.raises(BackendError, match=r"failed after 3 attempts: HTTP 429$"):
        ask(endpoint(server.base_url, max_retries=2))
    assert len(server.calls()) == 3


# --- the fault matrix at the backend -------------------------------------------------------------------

FAULTS = {  # name: (behaviour, what the error says, whether it is retried)
    "hang": (Hang(), "no answer within the 1 s timeout", True),
    "drop": (Drop(), "the connection dropped before a complete answer", True),
    "truncated-body": (Truncated(), "the connection dropped before a complete answer", True),
    "500": (Status(500), "HTTP 500", True),
    "503": (Status(503), "HTTP 503", True),
    "429": (Status(429), "HTTP 429", True),
    "408": (Status(408), "HTTP 408", True),  # Request Timeout: the server gave up waiting; asking again is safe
    "malformed-json": (Malformed(), "the answer is not a JSON chat completion", False),
    "html-page": (Malformed(b"<html><body>It works!</body></html>", "text/html"), "not a JSON chat completion", False),
    "json-without-choices": (Malformed(b'{"error": "model overloaded"}'), "has no choices[0].message text", False),
    "400": (Status(400), "HTTP 400", False),  # a client error answers the same every time: not retried
    "401": (Status(401), "HTTP 401", False),
    "403": (Status(403), "HTTP 403", False),
    "404": (Status(404), "HTTP 404", False),
    "409": (Status(409), "HTTP 409", False),
    "413": (Status(413), "HTTP 413", False),
    "422": (Status(422), "HTTP 422", False),
}


@pytest.mark.parametrize("fault", FAULTS)
def test_a_lasting_fault_ends_in_one_clear_error(server, monkeypatch, fault):
    behaviour, says, retried = FAULTS[fault]
    monkeypatch.setenv(KEY_ENV, KEY)
    server.fallback = behaviour
    with pytest.raises(BackendError) as err:
        ask(endpoint(server.base_url, api_key_env=KEY_ENV))
    message = str(err.value)
    assert message.startswith(f"{label(server.base_url)} failed") and says in message
    assert ("after 2 attempts" in message) == retried and "\n" not in message and KEY not in message
    assert len(server.calls()) == (2 if retried else 1)
    shown = "".join(traceback.format_exception(err.value))  # what a log file or `-v` would print
    assert "During handling" not in shown and "direct cause" not in shown and KEY not in shown


@pytest.mark.parametrize("fault", [name for name, (_, _, retried) in FAULTS.items() if retried])
def test_a_passing_fault_is_retried_and_the_call_completes(server, fault):
    behaviour = FAULTS[fault][0]
    server.script(behaviour)
    out = ask(endpoint(server.base_url), "how do I cope?")
    assert out.text.endswith(" reply of m-1 to how do I cope?") and out.finish_reason == "stop" and out.completion_tokens > 0
    assert [r.behaviour for r in server.calls()] == [behaviour.name, "answer"]


def test_a_refused_connection_is_retried_then_named(caplog):
    caplog.set_level(logging.INFO, logger="psycopref")
    with refused_url() as url, pytest.raises(BackendError) as err:
        ask(endpoint(url))
    assert str(err.value) == f"{label(url)} failed after 2 attempts: could not connect (refused or unreachable)"
    assert f"{label(url)}: could not connect (refused or unreachable); retry 1 of 1 in 0.05 s" in caplog.text


def test_a_1mb_answer_comes_back_whole(server):
    big = big_answer()
    server.script(big)
    assert ask(endpoint(server.base_url)).text == big.content


def test_only_the_named_key_is_sent(server, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_plantedUserToken123")  # a logged-in Hub user
    monkeypatch.setenv(KEY_ENV, KEY)
    ask(endpoint(server.base_url))
    ask(endpoint(server.base_url, api_key_env=KEY_ENV))
    without, named = server.calls()
    assert "authorization" not in without.headers  # the Hub token never goes to a third-party server
    assert named.headers["authorization"] == f"Bearer {KEY}"


def test_the_fault_server_streams_server_sent_events(server):
    from huggingface_hub import InferenceClient

    server.script(Answer(content="one two three four", token_delay=0.05))
    client = InferenceClient(base_url=server.base_url, timeout=2)
    start = time.monotonic()
    chunks = list(client.chat_completion([{"role": "user", "content": "hi"}], model="m", stream=True))
    assert time.monotonic() - start >= 0.15  # three pauses between four tokens
    assert [c.choices[0].delta.content for c in chunks[:4]] == ["one", " two", " three", " four"]
    assert chunks[-1].choices[0].finish_reason == "stop" and chunks[-1].usage.completion_tokens == 4
    assert server.calls()[0].body["stream"] is True


# --- the stages ----------------------------------------------------------------------------------------

def write_speeches(work: Path, n: int) -> None:
    save_atomic(Dataset.from_list([
        {"id": f"sp-{i:02d}", "text": f"Speech {i}: I have not slept well since my father fell ill.",
         "source": "test", "topic_fine": "sleep", "topic_coarse": "health"} for i in range(n)]), work / "speeches")


def recipe_data(work: Path, base_url: str, members: int = 2, judge_url: str | None = None, **over) -> dict:
    """generate with `members` pool members on `base_url`; a judge (all principles) on `judge_url`."""
    ep = {"backend": "openai", **FAST, "max_retries": 2} | over
    data = {"work_dir": str(work), "seed": 3, "stages": ["generate"],
            "generate": {"members_per_speech": members, "concurrency": 2, "pool": [
                {**ep, "base_url": base_url, "model": f"m-{i}", "name": f"member-{i}"} for i in range(members)]}}
    if judge_url:
        data["stages"].append("judge")
        data["judge"] = {"endpoint": {**ep, "base_url": judge_url, "model": "judge"}, "mode": "all_principles",
                         "max_attempts": 2, "concurrency": 2}
    return data


def write_recipe(tmp_path: Path, data: dict) -> str:
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return str(path)


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("psycopref: error:")]


def assert_answered_once(server, n: int) -> None:
    answered = server.answered()
    assert len(answered) == n and set(answered.values()) == {1}, answered


def test_generate_rides_out_passing_faults_and_keeps_a_1mb_answer(tmp_path, server, caplog):
    work = tmp_path / "work"
    write_speeches(work, 4)
    big = big_answer()
    server.script(Status(429, retry_after="0.2"), match="Speech 0:")
    server.script(Drop(), match="Speech 1:")
    server.script(Hang(), match="Speech 2:")
    server.script(big, match=lambda r: r.model == "m-1" and "Speech 3:" in r.prompt)
    caplog.set_level(logging.INFO, logger="psycopref")
    recipe = validate_recipe(recipe_data(work, server.base_url, max_retry_wait=1))
    out = run_stages(recipe, ["generate"])["generate"]
    assert len(out) == 8 and len(server.calls()) == 8 + 3
    assert_answered_once(server, 8)
    stored = load_from_disk(str(work / "responses"))
    assert stored.filter(lambda r: r["response_id"] == "sp-03:member-1")["response"] == [big.content.strip()]
    wait = re.escape(server.base_url) + r" \(model m-[01]\): HTTP 429 asking to retry after 0.2 s; retry 1 of 2 in 0.2 s"
    assert re.search(wait, caplog.text) and re.search(wait, (work / "logs" / "psycopref.log").read_text())


@pytest.mark.parametrize("fault, says", [(Status(503), "failed after 3 attempts: HTTP 503"),
                                         (Malformed(), "failed: the answer is not a JSON chat completion")])
def test_generate_stops_with_one_line_then_resumes_without_repeats(tmp_path, server, capsys, fault, says):
    work = tmp_path / "work"
    write_speeches(work, 4)
    recipe = write_recipe(tmp_path, recipe_data(work, server.base_url))
    server.script(*[fault] * 6, match="Speech 2:")  # every attempt of both calls for speech 2
    assert main(["dataset", "generate", recipe]) == 2
    err = capsys.readouterr().err
    [line] = error_lines(err)
    assert f"generate stopped: {server.base_url} (model m-" in line and says in line and "rerun" in line
    assert "Traceback" not in err
    assert not (work / "responses").exists()
    stopped_at = len(server.answered())
    assert 4 <= stopped_at < 8  # speeches 0 and 1 were answered and cached before the stop

    server.clear()
    assert main(["dataset", "generate", recipe]) == 0
    assert_answered_once(server, 8)  # each prompt answered exactly once across both runs
    assert len(load_from_disk(str(work / "responses"))) == 8


def test_judge_rides_out_faults_and_quarantines_a_1mb_answer(tmp_path, server):
    work = tmp_path / "work"
    write_speeches(work, 2)
    recipe = validate_recipe(recipe_data(work, server.base_url, members=4, judge_url=server.base_url))
    run_stages(recipe, ["generate"])
    big = big_answer()
    server.script(big, big, match="Speech 0:")  # both attempts of the judge: not rating JSON
    server.script(Status(503, retry_after="0.1"), Drop(), match="Speech 1:")
    ratings = run_stages(recipe, ["judge"])["judge"]
    complete = {r["speech_id"]: r["complete"] for r in ratings}
    assert complete == {"sp-00": False, "sp-01": True}
    [held] = [json.loads(line) for line in (work / "quarantine.jsonl").read_text().splitlines()]
    assert held["speech_id"] == "sp-00" and held["attempts"] == 2 and held["raw"] == big.content
    assert [r.behaviour for r in server.calls("Speech 1:")[4:]] == ["status 503", "drop", "answer"]


def test_an_unreachable_judge_stops_with_one_line(tmp_path, server, capsys):
    work = tmp_path / "work"
    write_speeches(work, 1)
    with refused_url() as judge_url:
        recipe = write_recipe(tmp_path, recipe_data(work, server.base_url, members=4, judge_url=judge_url))
        assert main(["dataset", "run", recipe]) == 2
    [line] = error_lines(capsys.readouterr().err)
    assert line.startswith(f"psycopref: error: judge (all_principles) stopped: {label(judge_url, 'judge')} "
                           "failed after 3 attempts: could not connect (refused or unreachable)")
    assert len(load_from_disk(str(work / "responses"))) == 4  # generate finished before the judge


def test_the_key_is_nowhere_and_a_rerun_resumes(tmp_path, server, monkeypatch, capsys, caplog):
    monkeypatch.setenv(KEY_ENV, KEY)
    work = tmp_path / "work"
    write_speeches(work, 2)
    data = recipe_data(work, server.base_url, members=4, judge_url=server.base_url, api_key_env=KEY_ENV)
    recipe = write_recipe(tmp_path, data)
    server.script(Status(429, retry_after="0.1"), match="Speech 0:")
    server.script(Status(401), match=lambda r: "Speech 1:" in r.prompt and bool(r.body.get("response_format")))
    # the CLI as a user runs it: stops at the judge with exit code 2 and one line
    proc = subprocess.run([sys.executable, "-m", "hub_tools.cli", "dataset", "run", recipe], capture_output=True, text=True,
                          env=os.environ.copy(), timeout=120)
    assert proc.returncode == 2, proc.stderr[-3000:]
    [line] = error_lines(proc.stderr)
    assert f"{label(server.base_url, 'judge')} failed: HTTP 401" in line and "Traceback" not in proc.stderr

    server.clear()
    caplog.set_level(logging.INFO, logger="psycopref")
    assert main(["dataset", "run", recipe]) == 0
    assert_answered_once(server, 8 + 2)  # 8 responses and 2 judge calls, none asked twice
    assert {r.headers.get("authorization") for r in server.calls()} == {f"Bearer {KEY}"}  # the key was in play
    captured = capsys.readouterr()
    outputs = {"stdout": proc.stdout, "stderr": proc.stderr, "out": captured.out, "err": captured.err,
               "log": caplog.text}
    assert [name for name, text in outputs.items() if KEY in text] == []
    files = [p for p in work.rglob("*") if p.is_file()]
    assert {"cache.sqlite", "psycopref.log", "judge_ledger.json", "recipe.resolved.yaml"} <= {p.name for p in files}
    assert [p for p in files if KEY.encode() in p.read_bytes()] == []
