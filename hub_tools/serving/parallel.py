"""A stage's model calls on a few threads at once, and how they stop: at the first error, on Ctrl-C or SIGTERM.

`run_parallel(fn, n, concurrency, ...)` calls fn(0..n-1) on `concurrency` worker threads behind a progress
bar. Whatever stops it, it stops the same way:

- no new call starts: each worker checks the stop flag before its next task, `Runtime.call` before a real
  (paid) request, and a backend's retry loop before another attempt (a retry's wait ends early);
- the calls already in flight are waited for, so their answers are cached: after an error until they end
  (each is bounded by its endpoint's timeout and retries), after Ctrl-C or SIGTERM at most
  `$PSYCOPREF_STOP_GRACE` seconds (a second Ctrl-C stops waiting at once);
- the message counts exactly the calls that finished, those that finished while stopping included.

Workers are daemon threads, so calls still in flight after the grace period cannot keep the process alive
(their answers are lost and will be asked, and paid, again).
"""

from __future__ import annotations

import os
import queue
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

from ..errors import Interrupted, PsycoprefError, StageError

GRACE_ENV = "PSYCOPREF_STOP_GRACE"
GRACE_SECONDS = 30.0  # default wait for calls in flight after Ctrl-C / SIGTERM before exiting anyway

_local = threading.local()  # .stop: the stop flag of the run_parallel this worker thread belongs to


class Stopped(PsycoprefError):
    """A call not sent because its stage is stopping; not a failure of its own."""


def stopping() -> bool:
    """Whether the stage this thread works for is stopping (False outside `run_parallel`)."""
    stop = getattr(_local, "stop", None)
    return stop is not None and stop.is_set()


def pause(seconds: float) -> None:
    """Sleep `seconds`, or less once this thread's stage starts stopping (for retry waits)."""
    stop = getattr(_local, "stop", None)
    if stop is None:
        time.sleep(seconds)
    else:
        stop.wait(seconds)


def grace_seconds() -> float:
    """How long calls in flight are waited for after Ctrl-C or SIGTERM (`$PSYCOPREF_STOP_GRACE`, default 30)."""
    try:
        return max(0.0, float(os.environ.get(GRACE_ENV, GRACE_SECONDS)))
    except ValueError:
        return GRACE_SECONDS


class _Pool:
    """`concurrency` daemon threads calling fn(i) for i in 0..n-1 until done or stopped."""

    def __init__(self, fn: Callable[[int], Any], n: int, concurrency: int):
        self.fn, self.n = fn, n
        self.results: list[Any] = [None] * n
        self.stop = threading.Event()
        self.errors: list[BaseException] = []  # failures in the order they happened (Stopped left out)
        self.finished = self.in_flight = self._next = 0
        self.lock = threading.Lock()
        self.events: queue.Queue = queue.Queue()  # "done" per finished call, "exit" per worker that ends
        self.workers = max(1, min(concurrency, n))
        for k in range(self.workers):
            threading.Thread(target=self._work, daemon=True, name=f"psycopref-call-{k}").start()

    def _take(self) -> int | None:
        with self.lock:
            if self.stop.is_set() or self._next >= self.n:
                return None
            self._next += 1
            self.in_flight += 1
            return self._next - 1

    def _work(self) -> None:
        _local.stop = self.stop
        try:
            while (i := self._take()) is not None:
                try:
                    self.results[i] = self.fn(i)
                except BaseException as err:  # noqa: BLE001  (handed to the main thread, which decides)
                    with self.lock:
                        self.in_flight -= 1
                        if not isinstance(err, Stopped):
                            self.errors.append(err)
                            self.stop.set()  # the first failure: no worker starts another call
                    continue
                with self.lock:
                    self.in_flight -= 1
                    self.finished += 1
                self.events.put("done")
        finally:
            _local.stop = None
            self.events.put("exit")

    def wait(self, on_done: Callable[[], None], timeout: float | None = None) -> None:
        """Until every worker has ended (or `timeout` s passed), calling `on_done` per finished call."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.workers:
            left = 0.2 if deadline is None else min(0.2, deadline - time.monotonic())
            if left <= 0:
                return
            try:
                event = self.events.get(timeout=left)
            except queue.Empty:
                continue
            if event == "exit":
                self.workers -= 1
            else:
                on_done()


def run_parallel(fn: Callable[[int], Any], n: int, concurrency: int, desc: str, unit: str) -> list[Any]:
    """Run fn(0..n-1) on `concurrency` threads with a progress bar; stop at the first error (see above).

    A backend or I/O failure becomes a `StageError` saying how many calls finished (they are cached); a
    stage's own `StageError` and anything else (a bug, traceback included) propagate unchanged; Ctrl-C or
    SIGTERM becomes `Interrupted` saying how many finished."""
    from tqdm.auto import tqdm

    with tqdm(total=n, desc=desc, unit=unit, dynamic_ncols=True) as bar:
        pool = _Pool(fn, n, concurrency)
        try:
            pool.wait(lambda: bar.update(1))
        except KeyboardInterrupt as sig:  # Ctrl-C, or SIGTERM (the CLI raises Interrupted for it)
            pool.stop.set()
            grace = grace_seconds()
            try:
                pool.wait(lambda: bar.update(1), timeout=grace)
            except KeyboardInterrupt:  # a second Ctrl-C: stop waiting
                pass
            with pool.lock:
                finished, abandoned = pool.finished, pool.in_flight
            lost = f"; {abandoned} in flight after the {grace:g} s grace were abandoned" if abandoned else ""
            raise Interrupted(f"{desc}: {finished} of {n} calls finished and cached{lost}",
                              getattr(sig, "signum", signal.SIGINT)) from None
    if pool.errors:
        err = pool.errors[0]
        if isinstance(err, StageError) or not isinstance(err, (PsycoprefError, OSError)):
            raise err  # a stage's own stop, or a bug: keep it as it is
        raise StageError(f"{desc} stopped: {err} ({pool.finished} of {n} calls finished and cached; "
                         "rerun the same command to resume)") from err
    return pool.results
