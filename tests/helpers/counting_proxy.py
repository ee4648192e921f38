"""A counting reverse proxy on 127.0.0.1: forwards every request to an upstream HTTP server and records it, so
a test can count the requests that really reached a server it does not script (the llama.cpp server).

Each request is forwarded whole and its answer read whole before it is sent back (with Content-Length), which
is right for plain JSON calls; a streamed answer arrives in one piece.

    with counting_proxy("http://127.0.0.1:8080") as proxy:
        ...  # point the client at proxy.url
        assert proxy.count("POST", "/v1/chat/completions") == 3
"""

from __future__ import annotations

import contextlib
import http.client
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from threaded_http import serving

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-authorization",
              "proxy-authenticate", "host", "content-length"}


@dataclass
class CountingProxy:
    upstream: str  # http://host:port of the real server
    url: str = ""  # this proxy's http://127.0.0.1:<port>
    requests: list[str] = field(default_factory=list)  # "METHOD path" of every request, in arrival order
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, method: str, path: str) -> int:
        with self._lock:
            return self.requests.count(f"{method} {path}")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args) -> None:  # noqa: A002  (keep test output quiet)
        pass

    def _forward(self) -> None:
        proxy = self.server.proxy
        with proxy._lock:
            proxy.requests.append(f"{self.command} {self.path.split('?', 1)[0]}")
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        target = urlsplit(proxy.upstream)
        conn = http.client.HTTPConnection(target.hostname, target.port, timeout=600)
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
            conn.request(self.command, self.path, body=body or None, headers=headers)
            answer = conn.getresponse()
            data = answer.read()
        finally:
            conn.close()
        self.send_response(answer.status)
        for name, value in answer.getheaders():
            if name.lower() not in HOP_BY_HOP:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = _forward  # noqa: N815


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    proxy: CountingProxy


@contextlib.contextmanager
def counting_proxy(upstream: str) -> Iterator[CountingProxy]:
    """A proxy to `upstream` on a free 127.0.0.1 port, for the block's duration."""
    proxy = CountingProxy(upstream.rstrip("/"))
    httpd = _Server(("127.0.0.1", 0), _Handler)
    httpd.proxy = proxy
    with serving(httpd) as proxy.url:
        yield proxy
