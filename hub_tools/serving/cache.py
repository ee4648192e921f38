"""On-disk cache of model calls, so a killed stage resumes without repeating a paid call.

Each finished call is committed to SQLite (WAL journal, safe for several processes) the moment it returns, keyed by a hash of
everything that determines the answer (who was asked, the messages, the parameters, the schema and
an attempt number). A kill loses at most the calls in flight; nothing finished is ever lost.
The same table is the token ledger: every row holds prompt/completion tokens and its cost estimate.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .base import Completion

BUSY_TIMEOUT_S = 120.0  # how long a write waits for another process's (WAL: one writer at a time, readers never wait)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS calls (
    key TEXT PRIMARY KEY,
    stage TEXT NOT NULL,
    text TEXT NOT NULL,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    finish_reason TEXT,
    cost_usd REAL NOT NULL DEFAULT 0,
    seconds REAL NOT NULL DEFAULT 0,
    created_at REAL NOT NULL
)
"""


def cache_key(parts: dict[str, Any]) -> str:
    """Stable SHA-256 of a JSON-able description of one call."""
    blob = json.dumps(parts, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class ResponseCache:
    """Thread-safe SQLite cache + ledger. One file per work dir (`<work_dir>/cache.sqlite`)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        # several processes may share the file (data-parallel workers): a writer waits its turn (busy timeout)
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=BUSY_TIMEOUT_S)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(_SCHEMA)

    def get(self, key: str) -> Completion | None:
        with self._lock:
            row = self._db.execute(
                "SELECT text, prompt_tokens, completion_tokens, finish_reason, created_at FROM calls WHERE key=?", (key,)
            ).fetchone()
        return Completion(*row) if row else None

    def put(self, key: str, stage: str, completion: Completion, cost_usd: float = 0.0, seconds: float = 0.0) -> None:
        completion.created_at = completion.created_at or time.time()
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO calls VALUES (?,?,?,?,?,?,?,?,?)",
                (key, stage, completion.text, completion.prompt_tokens, completion.completion_tokens,
                 completion.finish_reason, cost_usd, seconds, completion.created_at),
            )

    def put_many(self, rows: list[tuple[str, str, Completion, float, float]]) -> None:
        """Several (key, stage, completion, cost_usd, seconds) in one transaction: an engine batch takes the
        write lock once, not once per answer, when other processes write to the same file."""
        now = time.time()
        for _, _, c, _, _ in rows:
            c.created_at = c.created_at or now
        values = [(key, stage, c.text, c.prompt_tokens, c.completion_tokens, c.finish_reason, cost, secs, c.created_at)
                  for key, stage, c, cost, secs in rows]
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany("INSERT OR REPLACE INTO calls VALUES (?,?,?,?,?,?,?,?,?)", values)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def call(self, parts: dict[str, Any], stage: str, fn: Callable[[], Completion],
             price: Callable[[Completion], float] | None = None) -> tuple[Completion, bool]:
        """Return (completion, was_cached): the cached answer, or call `fn` and store it at once."""
        key = cache_key(parts)
        hit = self.get(key)
        if hit is not None:
            return hit, True
        start = time.perf_counter()
        completion = fn()
        self.put(key, stage, completion, price(completion) if price else 0.0, time.perf_counter() - start)
        return completion, False

    def ledger(self, stage: str | None = None) -> dict[str, float]:
        """Totals of calls, tokens and estimated cost, for one stage or all."""
        where, args = ("WHERE stage=?", (stage,)) if stage else ("", ())
        with self._lock:
            n, p, c, cost, secs = self._db.execute(
                f"SELECT COUNT(*), COALESCE(SUM(prompt_tokens),0), COALESCE(SUM(completion_tokens),0), "
                f"COALESCE(SUM(cost_usd),0), COALESCE(SUM(seconds),0) FROM calls {where}", args
            ).fetchone()
        return {"calls": n, "prompt_tokens": p, "completion_tokens": c, "cost_usd": round(cost, 6), "seconds": round(secs, 2)}

    def close(self) -> None:
        with self._lock:
            self._db.close()
