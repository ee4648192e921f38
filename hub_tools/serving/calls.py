"""A stage's model calls, sent the fastest way each backend allows: batched or a few at a time.

`run_calls(rt, calls, ...)` answers a list of `Call`s (an endpoint and what `Runtime.call` takes) and
returns (completion, was_cached) per call, in order. Calls to a backend that `batches` (in-process vLLM)
go to its engine together, through `Runtime.call_many` (all of one endpoint's uncached calls in one
engine call per `ENGINE_BATCH`); the others go through `run_parallel` on `concurrency` threads. Either way
each answer is cached under the same key as a single `Runtime.call`, so a rerun, a resume after a kill or
a switch of backend for part of a pool behaves the same, and a failure or Ctrl-C stops the same way
(`parallel`'s message: how many calls finished and were cached).
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..config import Endpoint
from ..errors import Interrupted, PsycoprefError, StageError
from .base import Completion
from .parallel import run_parallel
from .runtime import Runtime, client_identity


@dataclass
class Call:
    """One model call of a stage: `Runtime.call`'s arguments."""

    endpoint: Endpoint
    messages: list[dict]
    params: dict[str, Any] | None = None  # None: the endpoint's own params
    json_schema: dict | None = None
    extra_key: dict[str, Any] = field(default_factory=dict)

    def keywords(self) -> dict[str, Any]:
        return {"messages": self.messages, "params": self.params, "json_schema": self.json_schema,
                "extra_key": self.extra_key}


def batches(rt: Runtime, endpoint: Endpoint) -> bool:
    """Whether the backend of `endpoint` batches (its class's fact: nothing is built to ask). One that cannot
    even be built to be asked counts as not batching: its calls then fail on the threaded path, reported like
    any failed call."""
    try:
        return rt.facts(endpoint).batches
    except (PsycoprefError, OSError):
        return False


def run_calls(rt: Runtime, calls: list[Call], *, stage: str, concurrency: int, desc: str, unit: str,
              price: Callable[[Completion], float] | None = None) -> list[tuple[Completion, bool]]:
    """(completion, was_cached) per call, in order: batched per endpoint where the backend batches, else
    on `concurrency` threads."""
    results: list[tuple[Completion, bool] | None] = [None] * len(calls)
    batched: dict[str, list[int]] = {}
    threaded: list[int] = []
    for i, c in enumerate(calls):
        if batches(rt, c.endpoint):
            batched.setdefault(client_identity(c.endpoint), []).append(i)
        else:
            threaded.append(i)
    if batched:
        _run_batched(rt, calls, list(batched.values()), results, stage, desc, unit, price)
    if threaded:
        def one(k: int) -> tuple[Completion, bool]:
            c = calls[threaded[k]]
            return rt.call(c.endpoint, stage=stage, price=price, **c.keywords())

        for i, result in zip(threaded, run_parallel(one, len(threaded), concurrency, desc, unit)):
            results[i] = result
    return results  # type: ignore[return-value]


def _run_batched(rt: Runtime, calls: list[Call], groups: list[list[int]], results: list, stage: str, desc: str,
                 unit: str, price: Callable[[Completion], float] | None) -> None:
    """Each group (the calls of one endpoint) through `Runtime.call_many`, behind one progress bar."""
    from tqdm.auto import tqdm

    n = sum(map(len, groups))
    with tqdm(total=n, desc=desc, unit=unit, dynamic_ncols=True) as bar:
        try:
            for group in groups:
                answers = rt.call_many(calls[group[0]].endpoint, [calls[i].keywords() for i in group], stage=stage,
                                       price=price, on_done=bar.update)
                for i, answer in zip(group, answers):
                    results[i] = answer
        except KeyboardInterrupt as sig:
            raise Interrupted(f"{desc}: {bar.n} of {n} calls finished and cached",
                              getattr(sig, "signum", signal.SIGINT)) from None
        except (PsycoprefError, OSError) as err:
            if isinstance(err, StageError):
                raise
            raise StageError(f"{desc} stopped: {err} ({bar.n} of {n} calls finished and cached; "
                             "rerun the same command to resume)") from err
