"""A fault-injecting OpenAI-compatible chat server, for testing clients against a misbehaving endpoint.

`POST /v1/chat/completions` (also `/chat/completions`) answers each request with the next scripted
behaviour: a normal answer (JSON, or server-sent events when the body says `"stream": true`, with an
optional per-token delay), an HTTP error with or without `Retry-After`, a hang, a dropped connection,
a malformed or truncated body. Scripts are queues: for requests that match (their prompt contains a
text, or a predicate holds), and for any request; once they run out, `fallback` answers (a normal
answer unless a test changes it). Every request is recorded (path, headers, body, behaviour, arrival
time), so a test can count calls per model and prompt and check exactly what the client sent. `GET /health` answers
`health` (200 by default, as TGI and llama.cpp do once ready; 503 while "loading"). A stream can break off
mid-answer (`BrokenStream`), and a request whose client hung up while it was being answered is marked
`aborted` (a streaming client that stopped reading closed its connection).

A plain `http.server` in a background thread on 127.0.0.1 (a free port): it can do what an ASGI server
cannot, such as closing a socket without any response. `refused_url()` gives a port that refuses
connections.

    with serve_faults() as server:
        server.script(Status(429, retry_after="1"), Drop(), match="sp-01")  # then the fallback
        server.fallback = Status(503)  # every other request, for good
        ...  # point an endpoint at server.base_url
        assert server.answered()[("model-a", prompt)] == 1
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from threaded_http import serving

CHAT_PATHS = ("/v1/chat/completions", "/chat/completions")


def _tokens(text: str) -> list[str]:
    """Word-sized pieces that join back to `text` (the stream's tokens)."""
    return re.findall(r"\s*\S+|\s+", text) or [""]


def default_responder(body: dict) -> str:
    """Echo the prompt, so a test can see which request an answer belongs to."""
    return f"answer to: {prompt_of(body)}"


def prompt_of(body: dict | None) -> str:
    """The last message's text of a chat request body ('' for anything else)."""
    messages = (body or {}).get("messages") or [{}]
    content = messages[-1].get("content") if isinstance(messages[-1], dict) else None
    return content if isinstance(content, str) else ""


@dataclass
class Request:
    """One request as the server received it."""

    path: str
    headers: dict[str, str]  # lower-case names
    raw: bytes
    body: dict | None  # the JSON body, None when it was not a JSON object
    behaviour: str = ""  # the behaviour's name, e.g. "answer", "status 429", "drop"
    at: float = 0.0  # time.monotonic() on arrival
    aborted: bool = False  # the client closed the connection before the answer was complete

    @property
    def prompt(self) -> str:
        return prompt_of(self.body)

    @property
    def model(self) -> str | None:
        return (self.body or {}).get("model")

    @property
    def answered(self) -> bool:
        """The server gave it a normal answer (a client that timed out first never read it)."""
        return self.behaviour == "answer"


# --- behaviours -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Answer:
    """A normal chat completion; `content` None asks the server's responder. Streams when asked to."""

    content: str | None = None
    delay: float = 0.0  # seconds before the answer starts
    token_delay: float | None = None  # seconds between streamed tokens; None: the server's default
    finish_reason: str = "stop"
    name = "answer"

    def serve(self, h: _Handler, req: Request) -> None:
        if self.delay and h.server.stopping.wait(self.delay):
            return
        srv = h.server.owner
        text = srv.responder(req.body or {}) if self.content is None else self.content
        usage = {"prompt_tokens": len(_tokens(req.prompt)), "completion_tokens": len(_tokens(text))}
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        common = {"id": f"chatcmpl-{len(srv.requests)}", "created": int(time.time()),
                  "model": (req.body or {}).get("model", "fault-model")}
        if not (req.body or {}).get("stream"):
            h.send_body(200, json.dumps(common | {
                "object": "chat.completion", "usage": usage,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                             "finish_reason": self.finish_reason}]}).encode())
            return
        delay = srv.token_delay if self.token_delay is None else self.token_delay
        h.start(200, {"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        chunk = common | {"object": "chat.completion.chunk"}
        for i, token in enumerate(_tokens(text)):
            if i and delay and h.server.stopping.wait(delay):
                return
            delta = {"role": "assistant", "content": token} if i == 0 else {"content": token}
            h.event(chunk | {"choices": [{"index": 0, "delta": delta, "finish_reason": None}]})
        h.event(chunk | {"choices": [{"index": 0, "delta": {}, "finish_reason": self.finish_reason}], "usage": usage})
        h.event("[DONE]")


@dataclass(frozen=True)
class Status:
    """An HTTP error; `retry_after` (delta-seconds or an HTTP date) becomes the Retry-After header."""

    code: int
    retry_after: str | None = None
    body: bytes = b'{"error": {"message": "injected fault", "type": "server_error"}}'

    @property
    def name(self) -> str:
        return f"status {self.code}"

    def serve(self, h: _Handler, req: Request) -> None:
        h.send_body(self.code, self.body, {"Retry-After": self.retry_after} if self.retry_after is not None else {})


@dataclass(frozen=True)
class Hang:
    """Say nothing for `seconds` (cut short when the server stops), then close without an answer."""

    seconds: float = 30.0
    name = "hang"

    def serve(self, h: _Handler, req: Request) -> None:
        h.server.stopping.wait(self.seconds)
        h.close_connection = True


@dataclass(frozen=True)
class Drop:
    """Close the connection at once, without any response."""

    name = "drop"

    def serve(self, h: _Handler, req: Request) -> None:
        h.close_connection = True


@dataclass(frozen=True)
class Malformed:
    """A 200 whose body is not a chat completion (by default JSON cut off mid-object)."""

    body: bytes = b'{"id": "chatcmpl-x", "choices": [{"message": {"content": "Hel'
    content_type: str = "application/json"
    name = "malformed"

    def serve(self, h: _Handler, req: Request) -> None:
        h.send_body(200, self.body, {"Content-Type": self.content_type})


@dataclass(frozen=True)
class Truncated:
    """A 200 announcing more bytes (Content-Length) than it sends before closing the connection."""

    sent: bytes = b'{"id": "chatcmpl-x", "choices": ['
    announced: int = 4096
    name = "truncated"

    def serve(self, h: _Handler, req: Request) -> None:
        h.start(200, {"Content-Type": "application/json", "Content-Length": str(self.announced)})
        h.wfile.write(self.sent)
        h.close_connection = True


@dataclass(frozen=True)
class BrokenStream:
    """A stream that sends `tokens` pieces of the answer, then either closes the connection (error None)
    or sends a TGI-style error event (`data: {"error": ..., "error_type": ...}`) and ends."""

    tokens: int = 3
    error: str | None = None
    error_type: str = "generation"
    name = "broken stream"

    def serve(self, h: _Handler, req: Request) -> None:
        h.start(200, {"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        chunk = {"id": "chatcmpl-broken", "object": "chat.completion.chunk", "created": int(time.time()),
                 "model": (req.body or {}).get("model", "fault-model")}
        for token in _tokens(h.server.owner.responder(req.body or {}))[:self.tokens]:
            h.event(chunk | {"choices": [{"index": 0, "delta": {"content": token}, "finish_reason": None}]})
        if self.error is not None:
            h.event({"error": self.error, "error_type": self.error_type})
        h.close_connection = True


def big_answer(size: int = 1_000_000) -> Answer:
    """A normal answer whose content is `size` characters long (and not JSON)."""
    line = "I hear how heavy this feels; let us take it one step at a time. "
    return Answer(content=(line * (size // len(line) + 1))[:size])


Behaviour = Answer | Status | Hang | Drop | Malformed | Truncated | BrokenStream


# --- the server -----------------------------------------------------------------------------------------

class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # every response says Connection: close; a stream ends when it closes
    server: _HTTPServer

    def log_message(self, format: str, *args) -> None:  # noqa: A002  (keep test output quiet)
        pass

    def start(self, code: int, headers: dict[str, str]) -> None:
        self.send_response(code)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True

    def send_body(self, code: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.start(code, {"Content-Type": "application/json", **(headers or {}), "Content-Length": str(len(body))})
        self.wfile.write(body)

    def event(self, data: dict | str) -> None:
        payload = data if isinstance(data, str) else json.dumps(data)
        self.wfile.write(f"data: {payload}\n\n".encode())
        self.wfile.flush()

    def do_GET(self) -> None:  # noqa: N802
        self.server.owner.record(Request(self.path, {k.lower(): v for k, v in self.headers.items()}, b"", None,
                                         behaviour="get", at=time.monotonic()))
        if self.path == "/health":
            code = self.server.owner.health
            self.send_body(code, b'{"status": "ok"}' if code == 200 else b'{"status": "loading model"}')
        else:
            self.send_body(404, b'{"error": "not found"}')

    def do_POST(self) -> None:  # noqa: N802
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        req = Request(self.path, {k.lower(): v for k, v in self.headers.items()}, raw,
                      body if isinstance(body, dict) else None, at=time.monotonic())
        if self.path not in CHAT_PATHS:
            req.behaviour = "not found"
            self.server.owner.record(req)
            self.send_body(404, b'{"error": "not found"}')
            return
        behaviour = self.server.owner.next_behaviour(req)
        req.behaviour = behaviour.name
        self.server.owner.record(req)
        try:
            behaviour.serve(self, req)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up first (e.g. its timeout)
            req.aborted = True
            self.close_connection = True


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    owner: FaultServer
    stopping: threading.Event


@dataclass
class FaultServer:
    """The scripts, the request log and the address of a running fault server."""

    url: str = ""  # http://127.0.0.1:<port>
    fallback: Behaviour = field(default_factory=Answer)  # what a request gets once the scripts run out
    responder: Callable[[dict], str] = default_responder  # content of a normal answer, from the request body
    token_delay: float = 0.0  # default seconds between streamed tokens
    health: int = 200  # status of GET /health
    requests: list[Request] = field(default_factory=list)
    _any: deque = field(default_factory=deque)
    _matching: list[tuple[Callable[[Request], bool], deque]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def base_url(self) -> str:
        """What an OpenAI client's base_url should be."""
        return f"{self.url}/v1"

    def script(self, *behaviours: Behaviour, match: str | Callable[[Request], bool] | None = None) -> None:
        """Queue behaviours for the next requests; with `match`, for the next requests whose prompt
        contains that text (or for which that predicate holds). Matching queues go first, in order."""
        with self._lock:
            if match is None:
                self._any.extend(behaviours)
            else:
                test = match if callable(match) else (lambda req, text=match: text in req.prompt)
                self._matching.append((test, deque(behaviours)))

    def clear(self) -> None:
        """Drop what is left of every script (the request log stays)."""
        with self._lock:
            self._any.clear()
            self._matching.clear()

    def next_behaviour(self, req: Request) -> Behaviour:
        with self._lock:
            for test, queue in self._matching:
                if queue and test(req):
                    return queue.popleft()
            return self._any.popleft() if self._any else self.fallback

    def record(self, req: Request) -> None:
        with self._lock:
            self.requests.append(req)

    def calls(self, prompt: str | None = None) -> list[Request]:
        """Chat requests so far, or those whose prompt contains `prompt`."""
        with self._lock:
            return [r for r in self.requests if r.path in CHAT_PATHS and (prompt is None or prompt in r.prompt)]

    def answered(self) -> Counter:
        """How many complete answers each (model, prompt) received."""
        return Counter((r.model, r.prompt) for r in self.calls() if r.answered)


@contextlib.contextmanager
def serve_faults(**settings) -> Iterator[FaultServer]:
    """Run a fault server on 127.0.0.1 (a free port) in a background thread; `settings` set its fields."""
    owner = FaultServer(**settings)
    httpd = _HTTPServer(("127.0.0.1", 0), _Handler)
    httpd.owner, httpd.stopping = owner, threading.Event()
    with serving(httpd, httpd.stopping) as owner.url:  # stopping releases hangs and slow streams
        yield owner


@contextlib.contextmanager
def refused_url() -> Iterator[str]:
    """An http://127.0.0.1:<port>/v1 URL that refuses connections: the port is bound but never listens."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
    finally:
        sock.close()
