"""Many visitors at once: concurrent gradio_client sessions against a running Space, timed.

`drive(url, speeches)` opens one `gradio_client.Client` per speech (a session each, as separate visitors
are), starts every comparison at the same moment and records when each was submitted, when its first
answer text arrived and when it finished, or its error. `benchmarks/bench_space_load.py` and
`tests/arena/test_space_load.py` drive the Space with it; times are `time.monotonic()`, so an app
running in the same process can be timed on the same clock.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field


@dataclass
class Session:
    """One visitor's comparison."""

    speech: str
    submitted: float = 0.0
    first_text: float | None = None  # the first update in which any answer column had text
    finished: float | None = None
    result: tuple | None = None  # the final outputs (banner, answer, stats, answer, stats, ...)
    error: str | None = None
    updates: int = 0
    answers: list[str] = field(default_factory=list)


def _visit(url: str, session: Session, start: threading.Barrier, api_name: str, timeout: float,
           warm_up: str | None) -> None:
    from gradio_client import Client

    try:
        client = Client(url, verbose=False)
        if warm_up:  # a visitor's page is loaded and connected before they press the button
            client.predict(api_name=warm_up)
        start.wait(timeout)
        session.submitted = time.monotonic()
        job = client.submit(session.speech, api_name=api_name)
        for update in job:
            session.updates += 1
            if session.first_text is None and any(isinstance(v, str) and v for v in update[1::2]):
                session.first_text = time.monotonic()
        session.result = job.result(timeout=timeout)
        session.finished = time.monotonic()
        session.answers = list(session.result[1::2])
    except Exception as err:  # noqa: BLE001  (counted and reported, never raised: a load test reports errors)
        session.error = f"{type(err).__name__}: {err}"


def drive(url: str, speeches: list[str], api_name: str = "/compare", timeout: float = 600.0,
          warm_up: str | None = "/examples") -> list[Session]:
    """Compare every speech at once, one session each; returns the sessions in the speeches' order. Each
    session first calls `warm_up` (a cheap endpoint; None: none), so the timings leave out gradio_client's
    one-off connection setup (about 0.5 s on its first call)."""
    sessions = [Session(s) for s in speeches]
    start = threading.Barrier(len(sessions))
    threads = [threading.Thread(target=_visit, args=(url, s, start, api_name, timeout, warm_up), daemon=True)
               for s in sessions]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    return sessions


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) of `values`, linearly interpolated (numpy's default)."""
    import numpy as np

    return float(np.percentile(values, q)) if values else float("nan")
