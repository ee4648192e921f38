"""Serve a `http.server` server on 127.0.0.1 in a background thread for a test's duration."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from http.server import HTTPServer


@contextlib.contextmanager
def serving(httpd: HTTPServer, stopping: threading.Event | None = None) -> Iterator[str]:
    """Yield `httpd`'s URL while a daemon thread serves it; on exit set `stopping` (handlers waiting on it
    return), shut the server down and close its socket."""
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        if stopping is not None:
            stopping.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)
