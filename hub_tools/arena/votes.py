"""Blind A/B votes as new preference data in the PsyCoPref format, appended as JSON lines.

A vote becomes one record with the release's column names where they apply (`question`, `chosen`,
`rejected`, `chosen_model`, `rejected_model`) plus what a blind vote adds: both answers as shown (A, B)
with their revealed model names, the vote itself (`A`, `B`, `tie`, `both_bad`; the last two leave
chosen/rejected empty), the time, and the identities of the config's policies (backend, model,
params, system prompt; never a URL or key). Texts pass the dataset's privacy scrub first.

Offline the records go to a local file. With `votes.repo_id`, huggingface_hub's `CommitScheduler`
pushes the votes folder to that Hub dataset every few minutes from a background thread; each app
process writes its own file (`votes-<uuid>.jsonl`), so replicas never overwrite each other. When the
dataset cannot be reached at start (`retry_minutes` given, as the app does), votes are off instead of the
app failing: a vote is refused with a message, and the scheduler is started again at the first vote
after `retry_minutes`. A vote on a speech with crisis signals is never recorded.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..errors import PsycoprefError
from .config import SpaceConfig, VotesSection

log = logging.getLogger("psycopref")

VOTES = ("A", "B", "tie", "both_bad")  # what a visitor can answer
RECORD_VERSION = 1  # bump when the record's fields change


class VoteError(PsycoprefError, ValueError):
    """A vote that cannot be recorded (unknown choice, nothing to vote on)."""


def vote_record(speech: str, answer_a: str, answer_b: str, model_a: str, model_b: str, vote: str,
                config: SpaceConfig, crisis: list[str] | None = None, scrub: bool = True) -> dict[str, Any]:
    """One vote in the PsyCoPref format (see the module docstring)."""
    if vote not in VOTES:
        raise VoteError(f"unknown vote {vote!r}: one of {', '.join(VOTES)}")
    if crisis:
        raise VoteError(f"a vote on a speech with crisis signals ({', '.join(crisis)}) is never recorded")
    if scrub:
        from ..pairs.privacy import scrub as mask

        speech, answer_a, answer_b = (mask(t)[0] for t in (speech, answer_a, answer_b))
    chosen = rejected = chosen_model = rejected_model = None
    if vote in ("A", "B"):
        (chosen, chosen_model), (rejected, rejected_model) = (
            ((answer_a, model_a), (answer_b, model_b)) if vote == "A" else ((answer_b, model_b), (answer_a, model_a)))
    return {
        "vote_id": uuid.uuid4().hex,
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "question": speech,
        "response_a": answer_a, "model_a": model_a,
        "response_b": answer_b, "model_b": model_b,
        "vote": vote,
        "chosen": chosen, "rejected": rejected, "chosen_model": chosen_model, "rejected_model": rejected_model,
        "crisis_signals": [],  # always empty: a speech with crisis signals is never recorded (kept for the format)
        "policies": [p.identity() for p in config.policies],
        "record_version": RECORD_VERSION,
    }


class VoteStore:
    """Appends vote records to a JSON-lines file; with a Hub dataset, a CommitScheduler pushes them.
    `retry_minutes`: a dataset that cannot be reached turns votes off (and is tried again) instead of raising."""

    def __init__(self, cfg: VotesSection, retry_minutes: float | None = None):
        self.cfg = cfg
        self.scheduler = None
        self.off: str | None = None  # why votes are off, in words a visitor may read
        self.retry_minutes = retry_minutes
        self._next_try = 0.0
        self._file_lock = threading.Lock()
        self._start_lock = threading.Lock()
        path = Path(cfg.local_file)
        if cfg.repo_id:
            path = path.with_name(f"{path.stem}-{uuid.uuid4().hex[:12]}{path.suffix or '.jsonl'}")
            path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        if cfg.repo_id:
            self._start()

    def _start(self) -> None:
        from huggingface_hub import CommitScheduler

        cfg = self.cfg
        token = os.environ.get(cfg.token_env) or None  # from the environment only; never logged
        try:
            self.scheduler = CommitScheduler(
                repo_id=cfg.repo_id, repo_type="dataset", folder_path=self.path.parent, path_in_repo=cfg.path_in_repo,
                every=cfg.every_minutes, private=cfg.private, token=token, allow_patterns=["*.jsonl"])
            self.off = None
        except Exception as err:  # noqa: BLE001  (named without the token)
            problem = (f"votes dataset {cfg.repo_id}: cannot start pushing votes ({type(err).__name__}); "
                       f"is ${cfg.token_env} a write token?")
            if self.retry_minutes is None:
                raise VoteError(problem) from None
            self.off, self._next_try = problem, time.monotonic() + self.retry_minutes * 60
            log.warning("%s; votes are off, trying again in %g min", problem, self.retry_minutes)

    def available(self) -> bool:
        """Whether a vote can be recorded now (a dataset that was unreachable is tried again when due)."""
        if self.off is not None and time.monotonic() >= self._next_try:
            with self._start_lock:
                if self.off is not None and time.monotonic() >= self._next_try:
                    self._start()
        return self.off is None

    @property
    def _lock(self):
        return self.scheduler.lock if self.scheduler else self._file_lock  # no push reads a half line

    def append(self, record: dict[str, Any]) -> None:
        """Add one record (one JSON line, flushed to disk before returning)."""
        if not self.available():
            raise VoteError(f"votes are off for now, this vote was not saved ({self.off})")
        line = json.dumps(record, ensure_ascii=False) + "\n"
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a", encoding="utf-8") as fh:
                fh.write(line)
                fh.flush()
                os.fsync(fh.fileno())

    def where(self) -> str:
        """Where votes go, in words (for the notice and the log)."""
        if self.off is not None:
            return (f"the Hub dataset {self.cfg.repo_id} once it can be reached (votes are off for now: it could "
                    f"not be reached at start; the Space tries again every {self.retry_minutes:g} min)")
        if self.scheduler:
            return f"the Hub dataset {self.cfg.repo_id} (pushed every {self.cfg.every_minutes:g} min)"
        return "a file on this server"  # not its path: visitors need not know the server's layout

    def push_now(self):
        """Push pending votes at once (a future); None without a Hub dataset."""
        return self.scheduler.trigger() if self.scheduler else None

    def close(self) -> None:
        """Push what is pending and stop the scheduler."""
        if self.scheduler:
            try:
                self.scheduler.trigger().result()
            finally:
                self.scheduler.stop()
