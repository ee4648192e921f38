"""20 visitors at once (concurrent gradio_client sessions) against the Space with policies behind the fault
server: every comparison completes, with zero errors, through a queue bounded to 4 at a time; the app's
own share of the time to first text stays small. The same load against the real llama.cpp server is
`benchmarks/bench_space_load.py` (benchmarks/RESULTS.md)."""

from __future__ import annotations

import threading

import pytest

from hub_tools.arena.visitors import drive, percentile
from hub_tools.serving.policy_client import PolicyClient

from fault_server import serve_faults
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
