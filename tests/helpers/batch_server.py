"""A fake OpenAI Batch API (`/v1/files`, `/v1/batches`), for testing the judge's batch mode offline.
It also answers online `/v1/chat/completions` with the same responder, for the retries that follow.

Uploads are kept in memory; a created batch moves validating -> in_progress -> completed as it is
polled (`polls_to_finish` status checks), and is then answered line by line by `responder(body)`;
requests for which `fails(body)` holds come back in the error file instead. `faults` answer the next
status checks and downloads with an HTTP error (and Retry-After), and `line_of` can write an output
line some other way (to break it). Every request is recorded with its arrival time, so tests can check
that a batch was submitted once, how often it was polled and how long the client waited between polls.

    with serve_batches(responder=lambda body: "{...}") as api:
        ...  # point the judge endpoint's base_url at api.base_url
        assert api.created == 1
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from threaded_http import serving


@dataclass
class BatchAPI:
    url: str = ""
    responder: Callable[[dict], str] = lambda body: "ok"  # the answer text for one request body
    fails: Callable[[dict], bool] = lambda body: False  # requests (bodies) that end in the error file
    polls_to_finish: int = 2  # status checks before a batch completes
    faults: deque = field(default_factory=deque)  # (status, Retry-After or None) for the next GETs, one each
    line_of: Callable[[dict], str] = json.dumps  # how an output item is written as its line
    times: list[float] = field(default_factory=list)  # time.monotonic() of every request, as `log`
    files: dict[str, bytes] = field(default_factory=dict)
    batches: dict[str, dict] = field(default_factory=dict)
    log: list[tuple[str, str]] = field(default_factory=list)  # (method, path) of every request
    _lock: threading.RLock = field(default_factory=threading.RLock)  # re-entered: a finishing poll uploads

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    @property
    def created(self) -> int:
        return sum(1 for m, p in self.log if m == "POST" and p == "/v1/batches")

    def polls(self, batch_id: str) -> int:
        return sum(1 for m, p in self.log if m == "GET" and p == f"/v1/batches/{batch_id}")

    def upload(self, data: bytes) -> dict:
        with self._lock:
            fid = f"file-{len(self.files) + 1}"
            self.files[fid] = data
        return {"id": fid, "object": "file", "purpose": "batch", "bytes": len(data)}

    def create(self, body: dict) -> dict:
        with self._lock:
            bid = f"batch_{len(self.batches) + 1}"
            lines = [json.loads(line) for line in self.files[body["input_file_id"]].decode().splitlines() if line]
            self.batches[bid] = {"id": bid, "object": "batch", "status": "validating", "endpoint": body["endpoint"],
                                 "input_file_id": body["input_file_id"], "output_file_id": None,
                                 "error_file_id": None, "request_counts": {"total": len(lines), "completed": 0,
                                                                           "failed": 0}, "_lines": lines, "_polls": 0}
            return self._public(bid)

    def poll(self, bid: str) -> dict:
        with self._lock:
            batch = self.batches[bid]
            batch["_polls"] += 1
            if batch["status"] not in ("completed",) and batch["_polls"] >= self.polls_to_finish:
                self._finish(batch)
            elif batch["status"] == "validating":
                batch["status"] = "in_progress"
            return self._public(bid)

    @property
    def online(self) -> int:
        """Online chat calls so far."""
        return sum(1 for m, p in self.log if m == "POST" and p == "/v1/chat/completions")

    def _finish(self, batch: dict) -> None:
        ok, bad = [], []
        for line in batch["_lines"]:
            cid, body = line["custom_id"], line["body"]
            if self.fails(body):
                bad.append({"id": f"r-{cid[:8]}", "custom_id": cid, "response": None,
                            "error": {"code": "server_error", "message": "the model could not answer"}})
                continue
            ok.append({"id": f"r-{cid[:8]}", "custom_id": cid, "error": None, "response": {
                "status_code": 200, "request_id": cid[:8], "body": chat_completion(body, self.responder(body))}})
        batch["status"] = "completed"
        batch["request_counts"] |= {"completed": len(ok), "failed": len(bad)}
        for key, items in (("output_file_id", ok), ("error_file_id", bad)):
            if items:
                lines = [self.line_of(i) if key == "output_file_id" else json.dumps(i) for i in items]
                batch[key] = self.upload("".join(line + "\n" for line in lines).encode())["id"]

    def _public(self, bid: str) -> dict:
        return {k: v for k, v in self.batches[bid].items() if not k.startswith("_")}

    def requests_in(self, bid: str) -> list[dict]:
        """The request lines a batch was created with."""
        return self.batches[bid]["_lines"]


def chat_completion(body: dict, text: str) -> dict:
    """An OpenAI chat completion object answering `body` with `text` (100 prompt tokens, 4 chars a token)."""
    return {"id": "chatcmpl", "object": "chat.completion", "model": body.get("model"),
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}],
            "usage": {"prompt_tokens": 100, "completion_tokens": len(text) // 4, "total_tokens": 100 + len(text) // 4}}


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, *args) -> None:  # quiet
        pass

    def _send(self, status: int, obj: dict | bytes, retry_after: str | None = None) -> None:
        data = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
        self.send_response(status)
        if retry_after is not None:
            self.send_header("Retry-After", retry_after)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        api, raw = self.server.api, self._body()
        api.log.append(("POST", self.path))
        api.times.append(time.monotonic())
        if self.path == "/v1/files":
            msg = BytesParser(policy=HTTP).parsebytes(
                f"Content-Type: {self.headers['Content-Type']}\r\n\r\n".encode() + raw)
            parts = {p.get_param("name", header="content-disposition"): p.get_payload(decode=True)
                     for p in msg.iter_parts()}
            if parts.get("purpose") != b"batch" or "file" not in parts:
                return self._send(400, {"error": {"message": "purpose must be batch, with a file"}})
            return self._send(200, api.upload(parts["file"]))
        if self.path == "/v1/batches":
            return self._send(200, api.create(json.loads(raw)))
        if self.path == "/v1/chat/completions":
            body = json.loads(raw)
            return self._send(200, chat_completion(body, api.responder(body)))
        self._send(404, {"error": {"message": "not found"}})

    def do_GET(self) -> None:  # noqa: N802
        api = self.server.api
        api.log.append(("GET", self.path))
        api.times.append(time.monotonic())
        if api.faults:
            status, retry_after = api.faults.popleft()
            return self._send(status, {"error": {"message": "injected fault"}}, retry_after)
        parts = self.path.strip("/").split("/")
        if parts[:2] == ["v1", "batches"] and len(parts) == 3 and parts[2] in api.batches:
            return self._send(200, api.poll(parts[2]))
        if parts[:2] == ["v1", "files"] and len(parts) == 4 and parts[3] == "content" and parts[2] in api.files:
            return self._send(200, api.files[parts[2]])
        self._send(404, {"error": {"message": "not found"}})


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    api: BatchAPI


@contextlib.contextmanager
def serve_batches(**settings) -> Iterator[BatchAPI]:
    """Run the fake Batch API on 127.0.0.1 (a free port) in a background thread."""
    api = BatchAPI(**settings)
    httpd = _Server(("127.0.0.1", 0), _Handler)
    httpd.api = api
    with serving(httpd) as api.url:
        yield api
