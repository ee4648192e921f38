"""20 visitors at once (concurrent gradio_client sessions) against the Space with policies behind the fault
server: every comparison completes, with zero errors, through a queue bounded to 4 at a time; the app's
own share of the time to first text stays small; past `limits.queue_size` waiting visitors, the next are
refused at once. The same load against the real llama.cpp server is
`benchmarks/bench_space_load.py` (benchmarks/RESULTS.md)."""

from __future__ import annotations

import threading
import time

import pytest
from gradio_client import Client
from gradio_client.utils import QueueError
from gradio_client.utils import Status as JobStatus

from hub_tools.arena.visitors import drive, percentile
from hub_tools.serving.policy_client import PolicyClient

from fault_server import prompt_of, serve_faults
from space_helpers import STYLES, launched, responder, space_config

pytestmark = pytest.mark.timeout(180)


def test_twenty_concurrent_sessions_complete_without_errors(tmp_path, monkeypatch):
    running, most = 0, 0
    lock = threading.Lock()
    stream = PolicyClient.stream

    def counted(self, speech, *args, **kwargs):  # how many answers the backend is asked for at once
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        try:
            yield from stream(self, speech, *args, **kwargs)
        finally:
            with lock:
                running -= 1

    monkeypatch.setattr(PolicyClient, "stream", counted)
    speeches = [f"Visitor {i}: I moved here for work and I still have no friend I could call on a Friday." for i in range(20)]
    with serve_faults(responder=responder, token_delay=0.02) as backend:
        with launched(space_config(backend.url, tmp_path)) as (_, url):
            sessions = drive(url, speeches, timeout=120)
    assert [s.error for s in sessions] == [None] * 20
    assert all(s.answers == list(STYLES.values()) for s in sessions)
    assert len(backend.calls()) == 60 and {r.prompt.count("Visitor") for r in backend.calls()} == {1}
    assert 3 < most <= 4 * 3  # comparisons ran side by side, but the queue let at most 4 (x 3 policies) at once
    ttft = [s.first_text - s.submitted for s in sessions]
    assert percentile(ttft, 50) < 20 and max(ttft) < 60  # generous: CI machines are shared


def test_beyond_the_queue_visitors_are_told_the_space_is_busy(tmp_path):
    """limits.concurrency 1 and limits.queue_size 2: while one comparison runs, the next two visitors wait in
    the queue and every further one is refused at once with gradio's queue-full error, asking no policy."""
    gate = threading.Event()  # holds the first comparison's answers until every visitor has joined or been refused

    def respond(body: dict) -> str:
        if "First visitor" in prompt_of(body):
            gate.wait(60)
        return "I hear how heavy this feels."

    def settled(job) -> bool:  # refused (done with its error) or waiting in the queue
        return job.done() or job.status().code not in (JobStatus.STARTING, JobStatus.JOINING_QUEUE)

    speech = "I moved here for work two years ago and I still don't have a single friend I could call."
    with serve_faults(responder=respond) as backend:
        cfg = space_config(backend.url, tmp_path, n=2, limits={"concurrency": 1, "queue_size": 2})
        with launched(cfg) as (_, url):
            visitors = [Client(url, verbose=False) for _ in range(6)]
            first = visitors[0].submit(f"First visitor: {speech}", api_name="/compare")
            deadline = time.monotonic() + 60
            while len(backend.calls("First visitor")) < 2 and time.monotonic() < deadline:  # both policies answering it
                time.sleep(0.02)
            jobs = []
            for i, visitor in enumerate(visitors[1:]):  # one after another: the queue's order is the visitors'
                jobs.append(visitor.submit(f"Visitor {i}: {speech}", api_name="/compare"))
                while not settled(jobs[-1]) and time.monotonic() < deadline:
                    time.sleep(0.02)
            gate.set()
            outcomes = []
            for job in jobs:
                try:
                    outcomes.append(job.result(timeout=60)[1])
                except QueueError as err:
                    outcomes.append(str(err))
            assert first.result(timeout=60)[1] == "I hear how heavy this feels."
    assert outcomes == ["I hear how heavy this feels."] * 2 + ["Queue is full! Please try again."] * 3
    assert len(backend.calls()) == 3 * 2  # the refused visitors asked no policy
