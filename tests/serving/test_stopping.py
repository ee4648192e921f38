"""How a stage stops, counted at a recording server: at the first error no new request goes out (not the next
task, not a judge's next attempt), the calls in flight finish and are cached and counted exactly; Ctrl-C and
SIGTERM on the real CLI do the same within a bounded grace period, say in one line how many calls finished,
exit 130 / 143, and a rerun asks only what was not answered."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from datasets import Dataset

from hub_tools.cli import main
from hub_tools.io import save_atomic
from hub_tools.serving.parallel import GRACE_ENV, Stopped, run_parallel, stopping

from fakes import reading_judge
from fault_server import Answer, Status, serve_faults

pytestmark = pytest.mark.timeout(180)


def write_speeches(work: Path, n: int) -> None:
    save_atomic(Dataset.from_list([{"id": f"sp-{i:02d}", "text": f"Speech {i}: my sister stopped calling me.",
                                    "source": "test", "topic_fine": "family", "topic_coarse": "family"}
                                   for i in range(n)]), work / "speeches")


def write_recipe(tmp_path: Path, base_url: str, n: int, concurrency: int = 2, judge: dict | None = None, **over) -> str:
    ep = {"backend": "openai", "base_url": base_url, "timeout": 30, "max_retries": 1, "max_retry_wait": 0.1} | over
    data = {"work_dir": str(tmp_path / "work"), "stages": ["generate"], "generate": {
        "members_per_speech": 1, "concurrency": concurrency, "pool": [{**ep, "model": "m", "name": "only"}]}}
    if judge is not None:
        data["stages"] = ["judge"]
        del data["generate"]
        data["judge"] = {"endpoint": {**ep, "model": "judge"}, "mode": "all_principles"} | judge
    write_speeches(tmp_path / "work", n)
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return str(path)


def lines(stderr: str, prefix: str = "psycopref: ") -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith(prefix)]


def cached(tmp_path: Path) -> int:
    import sqlite3

    with sqlite3.connect(tmp_path / "work" / "cache.sqlite") as db:
        return db.execute("SELECT COUNT(*) FROM calls").fetchone()[0]


# --- the first error -------------------------------------------------------------------------------------

def test_after_the_first_error_no_request_starts_and_the_count_is_exact(tmp_path, capsys):
    with serve_faults() as server:
        server.script(Answer(delay=0.2), match="Speech 0:")  # worker 1: done at 0.2 s, then takes speech 2
        server.script(Answer(delay=2.0), match="Speech 1:")  # worker 2: in flight until 2 s
        server.script(Status(401), match="Speech 2:")  # fails at once (not retried), at 0.2 s
        recipe = write_recipe(tmp_path, server.base_url, n=8)
        assert main(["dataset", "generate", recipe]) == 2
        [line] = lines(capsys.readouterr().err)
        asked = [re.search(r"Speech \d+", r.prompt).group(0) for r in server.calls()]
    # speech 1, in flight when speech 2 failed, finished and counts; nothing after speech 2 was sent
    assert sorted(asked) == ["Speech 0", "Speech 1", "Speech 2"]
    assert "generate stopped: " in line and "HTTP 401 (2 of 8 calls finished and cached;" in line
    assert cached(tmp_path) == 2


def test_a_judge_in_flight_sends_no_further_attempt_once_the_stage_has_failed(tmp_path, capsys):
    def answer(body):  # speech 0's judge answer is unreadable: it would be asked again (attempts 2 and 3)
        return "no idea" if "Speech 0:" in body["messages"][-1]["content"] else reading_judge(body)

    with serve_faults(responder=answer) as server:
        server.script(Answer(delay=2.0), match="Speech 0:")
        server.script(Status(401), match="Speech 1:")
        recipe = write_recipe(tmp_path, server.base_url, n=4, judge={"max_attempts": 3, "concurrency": 2})
        responses = [{"speech_id": f"sp-{i:02d}", "response_id": f"sp-{i:02d}:{m}", "member": f"m{m}",
                      "model": "m", "response": f"quality {m + 1} reply", "prompt_tokens": 1, "completion_tokens": 1}
                     for i in range(4) for m in range(4)]
        save_atomic(Dataset.from_list(responses), tmp_path / "work" / "responses")
        assert main(["dataset", "judge", recipe]) == 2
        [line] = lines(capsys.readouterr().err)
        assert len(server.calls()) == 2  # speech 0's first attempt and speech 1's failure; no retry, no speech 2
    assert "HTTP 401 (0 of 4 calls finished and cached;" in line
    assert cached(tmp_path) == 1  # speech 0's unreadable answer is kept: a rerun starts at its second attempt


def test_a_retry_waiting_for_retry_after_gives_up_when_the_stage_fails(tmp_path, capsys):
    with serve_faults() as server:
        server.script(Status(503, retry_after="30"), match="Speech 0:")  # would be asked again in 30 s
        server.script(Status(401), match="Speech 1:")
        recipe = write_recipe(tmp_path, server.base_url, n=4, max_retry_wait=30)
        start = time.monotonic()
        assert main(["dataset", "generate", recipe]) == 2
        assert time.monotonic() - start < 10 and len(server.calls()) == 2
        [line] = lines(capsys.readouterr().err)
    assert "HTTP 401 (0 of 4 calls finished" in line


def test_run_parallel_counts_what_finishes_while_stopping_and_keeps_a_bugs_traceback():
    import threading

    release = threading.Event()

    def fn(i):
        if i == 1:
            raise OSError("disk full")
        if i == 0:
            release.wait(0.5)  # still running when task 1 fails
        return i

    with pytest.raises(Exception, match=r"disk full \(1 of 6 calls finished"):
        run_parallel(fn, 6, 2, "demo", "call")

    def bug(i):
        raise KeyError("a bug")

    with pytest.raises(KeyError) as err:
        run_parallel(bug, 3, 2, "demo", "call")
    assert err.traceback[-1].name == "bug"  # the worker's traceback, as it was
    assert not stopping()  # the flag belongs to the workers, never to the caller


def test_a_stopped_call_is_not_a_failure():
    seen = []

    def fn(i):
        seen.append(i)
        if i == 0:
            raise Stopped("not sent")
        return i

    assert run_parallel(fn, 3, 1, "demo", "call") == [None, 1, 2] and seen == [0, 1, 2]


# --- Ctrl-C and SIGTERM on the real CLI ----------------------------------------------------------------------

def start_cli(recipe: str, **env) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "hub_tools.cli", "dataset", "generate", recipe], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=os.environ | env)


def wait_for(predicate, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


@pytest.mark.parametrize("signum, code, name", [(signal.SIGINT, 130, "Ctrl-C"), (signal.SIGTERM, 143, "SIGTERM")])
def test_a_signal_waits_for_the_calls_in_flight_caches_them_and_says_how_many(tmp_path, signum, code, name):
    with serve_faults(fallback=Answer(delay=1.5)) as server:
        recipe = write_recipe(tmp_path, server.base_url, n=6, concurrency=2)
        proc = start_cli(recipe)
        wait_for(lambda: len(server.calls()) == 2)  # both workers are waiting for their answers
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == code, err[-2000:]
        assert len(server.calls()) == 2  # no new request after the signal
        assert lines(err) == [f"psycopref: interrupted by {name}: generate: 2 of 6 calls finished and cached; "
                              "rerun the same command to resume"]
        assert "Traceback" not in err and cached(tmp_path) == 2
        first = {r.prompt for r in server.calls()}

        server.fallback = Answer()
        assert main(["dataset", "generate", recipe]) == 0
        again = [r.prompt for r in server.calls()[2:]]
        assert len(again) == 4 and first.isdisjoint(again)  # the two answered in the grace period are not asked again


def test_the_grace_period_is_bounded_and_a_second_ctrl_c_stops_waiting(tmp_path):
    with serve_faults(fallback=Answer(delay=60)) as server:
        recipe = write_recipe(tmp_path, server.base_url, n=6, concurrency=2)
        proc = start_cli(recipe, **{GRACE_ENV: "0.5"})
        wait_for(lambda: len(server.calls()) == 2)
        start = time.monotonic()
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
        assert time.monotonic() - start < 15 and proc.returncode == 130
        assert lines(err) == ["psycopref: interrupted by Ctrl-C: generate: 0 of 6 calls finished and cached; 2 in "
                              "flight after the 0.5 s grace were abandoned; rerun the same command to resume"]

        proc = start_cli(recipe)  # the default grace (30 s), cut short by a second Ctrl-C
        wait_for(lambda: len(server.calls()) == 4)
        start = time.monotonic()
        proc.send_signal(signal.SIGINT)
        time.sleep(1.0)
        assert proc.poll() is None  # still waiting for its calls in flight
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
        assert time.monotonic() - start < 15 and proc.returncode == 130
        assert "2 in flight after the 30 s grace were abandoned" in lines(err)[0]
        assert len(server.calls()) == 4
