"""Blind A/B votes as new preference data in the PsyCoPref format, appended as JSON lines.

A vote becomes one record with the release's column names where they apply (`question`, `chosen`,
`rejected`, `chosen_model`, `rejected_model`) plus what a blind vote adds: both answers as shown (A, B)
with their revealed model names, the vote itself (`A`, `B`, `tie`, `both_bad`; the last two leave
chosen/rejected empty), the time, and the identities of the config's policies (backend, model,
params, system prompt; never a URL or key). Texts pass the dataset's privacy scrub first.

Offline the records go to a local file. With `votes.repo_id`, huggingface_hub's `CommitScheduler`
pushes the votes folder to that Hub dataset every few minutes from a background thread; each app
process writes its own file (`votes-<uuid>.jsonl`), so replicas never overwrite each other.
"""

from __future__ import annotations

import json
import logging
import os
import threading
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
        "crisis_signals": list(crisis or []),
        "policies": [p.identity() for p in config.policies],
        "record_version": RECORD_VERSION,
    }


class VoteStore:
    """Appends vote records to a JSON-lines file; with a Hub dataset, a CommitScheduler pushes them."""

    def __init__(self, cfg: VotesSection):
        self.cfg = cfg
        self.scheduler = None
        path = Path(cfg.local_file)
        if cfg.repo_id:
            from huggingface_hub import CommitScheduler

            token = os.environ.get(cfg.token_env) or None  # from the environment only; never logged
            path = path.with_name(f"{path.stem}-{uuid.uuid4().hex[:12]}{path.suffix or '.jsonl'}")
            path.parent.mkdir(parents=True, exist_ok=True)
            try:
                self.scheduler = CommitScheduler(
                    repo_id=cfg.repo_id, repo_type="dataset", folder_path=path.parent, path_in_repo=cfg.path_in_repo,
                    every=cfg.every_minutes, private=cfg.private, token=token, allow_patterns=["*.jsonl"])
            except Exception as err:  # noqa: BLE001  (named without the token)
                raise VoteError(f"votes dataset {cfg.repo_id}: cannot start pushing votes ({type(err).__name__}); "
                                f"is ${cfg.token_env} a write token?") from None
        self.path = path
        self._lock = self.scheduler.lock if self.scheduler else threading.Lock()  # no push reads a half line

    def append(self, record: dict[str, Any]) -> None:
        """Add one record (one JSON line, flushed to disk before returning)."""
        line = json.dumps(record, ensure_ascii=False) + "\n"
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a", encoding="utf-8") as fh:
                fh.write(line)
                fh.flush()
                os.fsync(fh.fileno())

    def where(self) -> str:
        """Where votes go, in words (for the notice and the log)."""
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
