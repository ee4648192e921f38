"""OpenAI-compatible Batch API: many chat requests in one file, answered within hours at half price.

A `BatchJob` writes the requests as JSONL, uploads them (`POST /files`, purpose "batch"), creates the
batch (`POST /batches`), polls it (`GET /batches/{id}`) and downloads the results
(`GET /files/{id}/content`). The batch id is saved in a state file in the work dir the moment the batch
exists, so a run that is killed (or stops waiting) resumes polling the same batch instead of paying for
a second one. Results are handed back keyed by each request's `custom_id`; the caller stores them in
the same call cache as online answers.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import StageError
from ..io import write_json
from .base import BackendError, Completion

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
                 poll_seconds: float = 30.0, max_wait_seconds: float | None = None, timeout: float = 120.0):
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

    # -- the HTTP calls, errors named by endpoint and status only (never a header) ---------------------

    def _call(self, method: str, path: str, **kwargs) -> Any:
        try:
            response = self.client.request(method, path, **kwargs)
        except httpx.TransportError as err:
            raise BackendError(f"batch endpoint {self.base_url}{path}: {type(err).__name__}") from None
        if response.status_code >= 400:
            raise BackendError(f"batch endpoint {self.base_url}{path}: HTTP {response.status_code}")
        return response

    def state(self) -> dict | None:
        if not self.state_path.exists():
            return None
        return json.loads(self.state_path.read_text(encoding="utf-8"))

    def submit(self, requests: list[BatchRequest], metadata: dict[str, str] | None = None) -> str:
        """Upload the requests and create the batch; its id is saved before this returns."""
        lines = "".join(json.dumps({"custom_id": r.custom_id, "method": "POST", "url": CHAT_URL, "body": r.body},
                                   ensure_ascii=False) + "\n" for r in requests)
        upload = self._call("POST", "/files", data={"purpose": "batch"},
                            files={"file": ("requests.jsonl", lines.encode("utf-8"), "application/jsonl")}).json()
        batch = self._call("POST", "/batches", json={"input_file_id": upload["id"], "endpoint": CHAT_URL,
                                                     "completion_window": "24h", "metadata": metadata or {}}).json()
        write_json(self.state_path, {"batch_id": batch["id"], "input_file_id": upload["id"], "endpoint": self.base_url,
                                     "requests": len(requests), "submitted_at": time.time(), "collected": False})
        log.info("batch %s submitted to %s: %d requests", batch["id"], self.base_url, len(requests))
        return batch["id"]

    def wait(self, batch_id: str, sleep: Callable[[float], None] = time.sleep) -> dict:
        """Poll until the batch ends; past `max_wait_seconds` stop with a resumable StageError."""
        start = time.monotonic()
        while True:
            batch = self._call("GET", f"/batches/{batch_id}").json()
            counts = batch.get("request_counts") or {}
            log.info("batch %s: %s (%s of %s done, %s failed)", batch_id, batch["status"], counts.get("completed", "?"),
                     counts.get("total", "?"), counts.get("failed", 0))
            if batch["status"] in DONE:
                return batch
            if self.max_wait_seconds is not None and time.monotonic() - start >= self.max_wait_seconds:
                raise StageError(f"batch {batch_id} at {self.base_url} is still {batch['status']} after "
                                 f"{self.max_wait_seconds:.0f}s; its id is saved in {self.state_path}: "
                                 "rerun the same command to resume waiting (nothing is submitted twice)")
            sleep(self.poll_seconds)

    def results(self, batch: dict) -> dict[str, Completion | str]:
        """custom_id -> the answer, or an error text for a request the batch could not answer."""
        out: dict[str, Completion | str] = {}
        for file_key in ("output_file_id", "error_file_id"):
            if not batch.get(file_key):
                continue
            text = self._call("GET", f"/files/{batch[file_key]}/content").text
            for line in filter(None, text.splitlines()):
                item = json.loads(line)
                out[item["custom_id"]] = _completion(item)
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


def _completion(item: dict) -> Completion | str:
    """One output line as a Completion, or the reason it has none."""
    response = item.get("response") or {}
    if item.get("error") or response.get("status_code") != 200:
        err = item.get("error") or {}
        return f"HTTP {response.get('status_code')}: {err.get('message') or err.get('code') or 'no answer'}"
    body = response["body"]
    choice, usage = body["choices"][0], body.get("usage") or {}
    return Completion(text=choice["message"].get("content") or "", prompt_tokens=int(usage.get("prompt_tokens", 0)),
                      completion_tokens=int(usage.get("completion_tokens", 0)), finish_reason=choice.get("finish_reason"))
