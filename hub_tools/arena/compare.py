"""The Space's engine, without any UI: the configured policies answering one speech in parallel, streamed.

`Policies(cfg)` starts what the config needs (the llama.cpp server for `base_url: managed`, one
`PolicyClient` per policy, the reward model) and `Policies.stream(names, speech)` yields the columns'
state, all of them at once, each time any column received text. Each policy streams in its own thread;
the consumer (the gradio event) owns the `Column` objects, so they are never written by two threads.
Closing the generator (a visitor who leaves) stops every stream and closes its connection, so the
servers stop generating. Nothing is cached or logged: answers live only in the visitor's page.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..errors import PsycoprefError
from ..serving.llama_server import LlamaServer
from ..serving.policy_client import PolicyClient
from .config import SpaceConfig, SpacePolicy

log = logging.getLogger("psycopref")

_DONE = object()  # a worker's last event


@dataclass
class Column:
    """One policy's answer as it arrives."""

    name: str
    text: str = ""
    done: bool = False
    error: str | None = None  # what a visitor may see; the endpoint's details go to the log only
    reward: float | None = None
    cut: bool = False  # the answer stopped at the token limit (finish_reason "length"), not where the model ended it
    first_piece_s: float | None = None  # seconds from the start to the first text
    seconds: float | None = None  # seconds from the start to the end

    @property
    def words(self) -> int:
        return len(self.text.split())

    def stats(self, blind: bool = False) -> str:
        """The line under an answer: length, reward, timing (while streaming: 'answering...'). `blind`: the
        length only, so a voter is not swayed by a score or told which policy is the slow one."""
        if self.error:
            return f"⚠️ {self.error}"
        if not self.done:
            return "answering…" if self.text else "waiting for the first words…"
        parts = [f"{self.words} words", f"{len(self.text)} characters"]
        if self.cut:
            parts.append("✂️ cut at the token limit")
        if self.reward is not None and not blind:
            parts.append(f"PsyCoPref reward {self.reward:+.2f} (higher is better)")
        if self.seconds is not None and not blind:
            parts.append(f"{self.seconds:.1f} s")
        return " · ".join(parts)


class Policies(contextlib.AbstractContextManager):
    """The config's policies, ready to answer; a context manager that stops the server it started."""

    def __init__(self, cfg: SpaceConfig, log_dir: str | Path = "logs", scorer=None):
        self.cfg = cfg
        self.server: LlamaServer | None = None
        resolved = [p.resolved() for p in cfg.policies]
        if any(p.base_url == "managed" for p in resolved):
            self.server = LlamaServer(cfg.server, log_dir).start()
        managed = self.server.base_url if self.server else None
        self.policies: dict[str, SpacePolicy] = {p.name: p for p in resolved}
        self.clients: dict[str, PolicyClient] = {}
        self.scorer = scorer
        self._score_lock = threading.Lock()  # one forward pass at a time on the shared reward model
        try:
            for p in resolved:
                self.clients[p.name] = PolicyClient(p, p.system_prompt, managed_url=managed)
            if scorer is None and cfg.reward.model:
                from ..reward.score import RewardScorer
                from ..serving.models import resolve_model

                self.scorer = RewardScorer.from_pretrained(resolve_model(cfg.reward.model),
                                                           max_length=cfg.reward.max_length)
        except BaseException:
            self.close()  # the server it started, too
            raise

    @property
    def names(self) -> list[str]:
        return list(self.policies)

    def params(self, name: str) -> dict:
        """A policy's decoding params, max_tokens capped by the Space's limit."""
        params = dict(self.policies[name].params)
        params["max_tokens"] = min(int(params.get("max_tokens", self.cfg.limits.max_tokens)), self.cfg.limits.max_tokens)
        return params

    def score(self, speech: str, answer: str) -> float | None:
        """The reward model's score of the answer to the speech, as it was trained: [user: speech, assistant: answer]."""
        if self.scorer is None or not answer.strip():
            return None
        conversation = [{"role": "user", "content": speech}, {"role": "assistant", "content": answer}]
        with self._score_lock:
            return float(self.scorer.score([conversation])[0])

    def _work(self, i: int, name: str, speech: str, events: queue.Queue, stop: threading.Event) -> None:
        """One policy's stream, as events (i, text), (i, error), (i, ("cut", True)), (i, ("reward", r)), (i, _DONE)."""
        text = []
        try:
            stream = self.clients[name].stream(speech, **self.params(name))
            try:
                while True:
                    try:
                        piece = next(stream)
                    except StopIteration as end:  # its value: the finish_reason, when the backend tells it
                        if end.value == "length":
                            events.put((i, ("cut", True)))
                        break
                    if stop.is_set():
                        return
                    text.append(piece)
                    events.put((i, piece))
            finally:
                stream.close()  # early exit: closes the connection, the server stops generating
            if self.scorer is not None:
                events.put((i, ("reward", self.score(speech, "".join(text)))))
        except PsycoprefError as err:
            log.warning("policy %s failed: %s", name, err)
            events.put((i, err))
        except Exception as err:  # noqa: BLE001  (a bug in one column must not take the others down)
            log.exception("policy %s failed unexpectedly", name)
            events.put((i, err))
        finally:
            events.put((i, _DONE))

    def stream(self, names: list[str], speech: str, interval: float = 0.05) -> Iterator[list[Column]]:
        """The columns after each batch of new text (at most one update per `interval` s, except the first
        text and the end of each column, which are shown at once). The last update has every column done."""
        unknown = [n for n in names if n not in self.policies]
        if unknown:
            raise PsycoprefError(f"unknown policies {unknown}; the config has {self.names}")
        columns = [Column(n) for n in names]
        events: queue.Queue = queue.Queue()
        stop = threading.Event()
        start = time.monotonic()
        for i, name in enumerate(names):
            threading.Thread(target=self._work, args=(i, name, speech, events, stop), daemon=True,
                             name=f"policy-{name}").start()
        pending, last = len(columns), 0.0
        try:
            while pending:
                urgent = False
                item = events.get()
                while True:
                    i, event = item
                    col = columns[i]
                    if event is _DONE:
                        col.done, col.seconds, pending, urgent = True, time.monotonic() - start, pending - 1, True
                    elif isinstance(event, tuple):
                        setattr(col, event[0], event[1])  # ("reward", score) or ("cut", True)
                    elif isinstance(event, BaseException):
                        col.error = "this policy did not answer; please try again later"
                    else:
                        if col.first_piece_s is None:
                            col.first_piece_s, urgent = time.monotonic() - start, True
                        col.text += event
                    wait = 0.0 if urgent or not pending else last + interval - time.monotonic()
                    try:
                        item = events.get(timeout=wait) if wait > 0 else events.get_nowait()
                    except queue.Empty:
                        break
                last = time.monotonic()
                yield columns
        finally:
            stop.set()

    def close(self) -> None:
        for client in self.clients.values():
            client.close()
        if self.server is not None:
            self.server.stop()

    def __exit__(self, *exc) -> None:
        self.close()
