"""OpenAI-compatible Batch API: many chat requests in one file, answered within hours at half price.

A `BatchJob` writes the requests as JSONL, uploads them (`POST /files`, purpose "batch"), creates the
batch (`POST /batches`), polls it (`GET /batches/{id}`) and downloads the results
(`GET /files/{id}/content`). The batch id is saved in a state file in the work dir the moment the batch
exists, so a run that is killed (or stops waiting) resumes polling the same batch instead of paying for
a second one. Every request is retried like an online call (`serving.retry`: 408, 429 and 5xx, Retry-After
honoured), except creating the batch, which is asked once: a retry after an unclear failure could pay for
two. While it waits, a progress bar shows how many requests the batch has answered. Results are handed back
keyed by each request's `custom_id` (a result line that cannot be read is left out: its prompt is asked
online); the caller stores them in the same call cache as online answers.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import Interrupted, StageError
from ..io import write_json
from .base import BackendError, Completion
from .retry import Retrier, describe

try:  # huggingface_hub>=2 speaks HTTP through httpx2, 1.x through httpx
    import httpx2 as httpx
except ImportError:  # pragma: no cover
    import httpx

log = logging.getLogger("psycopref")

DONE = ("completed", "failed", "expired", "cancelled")  # the Batch API's terminal statuses
CHAT_URL = "/v1/chat/completions"


@dataclass(frozen=True)
class BatchRequest:
    custom_id: str  # the caller's key for the answer (we use the call-cache key)
    body: dict[str, Any]  # the chat completion request body, model included


class BatchJob:
    """One batch against `base_url`, remembered in `state_path` until its results are collected."""

    def __init__(self, base_url: str, state_path: str | Path, api_key_env: str | None = None,
                 poll_seconds: float = 30.0, max_wait_seconds: float | None = None, timeout: float = 120.0,
                 max_retries: int = 3, max_retry_wait: float = 60.0):
        self.base_url = base_url.rstrip("/")
        self.state_path = Path(state_path)
        self.poll_seconds = poll_seconds  # between status checks
        self.max_wait_seconds = max_wait_seconds  # stop waiting (resumable) after this; None = until done
        headers = {}
        if api_key_env:
            key = os.environ.get(api_key_env)
            if not key:
                raise BackendError(f"batch endpoint {self.base_url} expects its API key in ${api_key_env}, which is unset")
            headers["Authorization"] = f"Bearer {key}"
        self.client = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout)
        self.timeout = timeout
        self.retry = Retrier(f"batch endpoint {self.base_url}", max_retries, max_retry_wait, self._describe)
        self.once = Retrier(self.retry.label, 0, 0.0, self._describe)

    # -- the HTTP calls, errors named by endpoint and status only (never a header) ---------------------

    def _describe(self, err: BaseException) -> str:
        return describe(err, self.timeout)

    def _call(self, method: str, path: str, retried: bool = True, **kwargs) -> Any:
        """One request, retried on transient failures unless `retried` is False; a final failure is a
        `BackendError` naming the endpoint and path, never a header."""
        def send() -> httpx.Response:
            return self.client.request(method, path, **kwargs).raise_for_status()

        def fail(err: Exception, attempts: int) -> BackendError:
            tries = f" after {attempts} attempts" if attempts > 1 else ""
            return BackendError(f"batch endpoint {self.base_url}{path} failed{tries}: {self._describe(err)}")

        return (self.retry if retried else self.once).call(send, fail)

    def _json(self, method: str, path: str, retried: bool = True, **kwargs) -> dict:
        """`_call` for a JSON object answer; any other answer is a `BackendError`."""
        try:
            obj = self._call(method, path, retried, **kwargs).json()
        except (ValueError, RecursionError):
            obj = None
        if not isinstance(obj, dict):
            raise BackendError(f"batch endpoint {self.base_url}{path}: the answer is not a JSON object; is it an "
                               "OpenAI-compatible Batch API?")
        return obj

    def state(self) -> dict | None:
        if not self.state_path.exists():
            return None
        return json.loads(self.state_path.read_text(encoding="utf-8"))

    def submit(self, requests: list[BatchRequest], metadata: dict[str, str] | None = None) -> str:
        """Upload the requests and create the batch; its id is saved before this returns."""
        lines = "".join(json.dumps({"custom_id": r.custom_id, "method": "POST", "url": CHAT_URL, "body": r.body},
                                   ensure_ascii=False) + "\n" for r in requests)
        upload = self._json("POST", "/files", data={"purpose": "batch"},
                            files={"file": ("requests.jsonl", lines.encode("utf-8"), "application/jsonl")})
        batch = self._json("POST", "/batches", retried=False,  # asked once: a retry could create (and bill) two
                           json={"input_file_id": upload["id"], "endpoint": CHAT_URL, "completion_window": "24h",
                                 "metadata": metadata or {}})
        write_json(self.state_path, {"batch_id": batch["id"], "input_file_id": upload["id"], "endpoint": self.base_url,
                                     "requests": len(requests), "submitted_at": time.time(), "collected": False})
        log.info("batch %s submitted to %s: %d requests", batch["id"], self.base_url, len(requests))
        return batch["id"]

    def wait(self, batch_id: str, sleep: Callable[[float], None] = time.sleep) -> dict:
        """Poll until the batch ends, with a progress bar; past `max_wait_seconds` stop with a resumable
        StageError, and on Ctrl-C or SIGTERM say that the batch goes on and a rerun resumes waiting."""
        from tqdm.auto import tqdm

        start, seen, status = time.monotonic(), None, "submitted"
        try:
            with tqdm(desc=f"batch {batch_id}", unit="req", dynamic_ncols=True) as bar:
                while True:
                    try:
                        batch = self._json("GET", f"/batches/{batch_id}")
                    except BackendError as err:
                        raise StageError(f"{err}; batch {batch_id} goes on at the server and its id is saved in "
                                         f"{self.state_path}: rerun the same command to resume waiting") from None
                    status, counts = str(batch.get("status")), batch.get("request_counts") or {}
                    done, total = _int(counts.get("completed")) + _int(counts.get("failed")), _int(counts.get("total"))
                    bar.total, bar.n = total or None, done
                    bar.set_postfix_str(status)
                    if (status, done) != seen:  # the log gets a line when something changed, not every poll
                        seen = (status, done)
                        log.info("batch %s: %s (%d of %s done, %d failed)", batch_id, status, done, total or "?",
                                 _int(counts.get("failed")))
                    if status in DONE:
                        return batch
                    if self.max_wait_seconds is not None and time.monotonic() - start >= self.max_wait_seconds:
                        raise StageError(f"batch {batch_id} at {self.base_url} is still {status} after "
                                         f"{self.max_wait_seconds:.0f}s; its id is saved in {self.state_path}: "
                                         "rerun the same command to resume waiting (nothing is submitted twice)")
                    sleep(self.poll_seconds)
        except KeyboardInterrupt as sig:
            raise Interrupted(f"batch {batch_id} is still {status} at {self.base_url} (it goes on without us); its "
                              f"id is saved in {self.state_path}", getattr(sig, "signum", signal.SIGINT)) from None

    def results(self, batch: dict) -> dict[str, Completion | str]:
        """custom_id -> the answer, or an error text for a request the batch could not answer. A line that
        cannot be read is left out (its prompt is then asked online), with a warning."""
        out: dict[str, Completion | str] = {}
        unreadable = 0
        for file_key in ("output_file_id", "error_file_id"):
            if not batch.get(file_key):
                continue
            text = self._call("GET", f"/files/{batch[file_key]}/content").text
            for line in filter(None, text.splitlines()):
                try:
                    item = json.loads(line)
                    out[_custom_id(item)] = _completion(item)
                except (ValueError, TypeError, KeyError, IndexError, AttributeError, RecursionError):
                    unreadable += 1
        if unreadable:
            log.warning("batch %s: %d result lines could not be read; their prompts are asked online",
                        batch.get("id"), unreadable)
        return out

    def collect(self, requests: list[BatchRequest], metadata: dict[str, str] | None = None) -> dict[str, Completion | str]:
        """Submit `requests` (unless a saved batch is pending: resume it), wait, return the results."""
        state = self.state()
        if state and not state.get("collected"):
            batch_id = state["batch_id"]
            log.info("resuming batch %s at %s (saved in %s)", batch_id, self.base_url, self.state_path)
        else:
            batch_id = self.submit(requests, metadata)
        batch = self.wait(batch_id)
        results = self.results(batch)
        write_json(self.state_path, {**(self.state() or {}), "collected": True, "status": batch["status"]})
        if batch["status"] != "completed":
            log.warning("batch %s ended %s: %d of its answers came back; the rest are asked online",
                        batch_id, batch["status"], sum(isinstance(r, Completion) for r in results.values()))
        return results

    def close(self) -> None:
        self.client.close()


def _int(value: Any) -> int:
    """A count from the server, 0 when it sends none or nonsense."""
    return value if type(value) is int and 0 <= value < 10**12 else 0


def _custom_id(item: dict) -> str:
    custom_id = item["custom_id"]
    if not isinstance(custom_id, str):
        raise TypeError("custom_id is not a string")
    return custom_id


def _completion(item: dict) -> Completion | str:
    """One output line as a Completion, or the reason it has none."""
    response = item.get("response") or {}
    if item.get("error") or response.get("status_code") != 200:
        err = item.get("error") or {}
        return f"HTTP {response.get('status_code')}: {err.get('message') or err.get('code') or 'no answer'}"[:300]
    body = response["body"]
    choice, usage = body["choices"][0], body.get("usage") or {}
    content = choice["message"].get("content") or ""
    if not isinstance(content, str):
        raise TypeError("the answer's content is not text")
    finish = choice.get("finish_reason")
    return Completion(text=content, prompt_tokens=_int(usage.get("prompt_tokens")),
                      completion_tokens=_int(usage.get("completion_tokens")),
                      finish_reason=finish if isinstance(finish, str) else None)
