"""A real llama.cpp server (the `xllamacpp` wheel) started and stopped by the toolkit.

The server runs in a child process (`python -m hub_tools.llama_server`) so it can always be stopped,
even when the parent dies mid-stage, and so its logs go to a file in the work dir rather than the
terminal. Endpoints with `base_url: managed` talk to it through the same OpenAI-compatible backend as
any remote server.
"""

from __future__ import annotations

import argparse
import atexit
import importlib.util
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from ..config import ServerConfig
from .base import ServerError
from .models import resolve_gguf

log = logging.getLogger("psycopref")

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LlamaServer:
    """Context manager: start the server, wait for /health, always stop it on exit or error."""

    def __init__(self, cfg: ServerConfig, log_dir: str | Path):
        self.cfg = cfg
        self.gguf = resolve_gguf(cfg.gguf)
        self.port = cfg.port or free_port()
        self.log_path = Path(log_dir) / "llama-server.log"
        self.proc: subprocess.Popen | None = None

    @property
    def base_url(self) -> str:
        """OpenAI-compatible root, as `InferenceClient(base_url=...)` expects it."""
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> LlamaServer:
        if importlib.util.find_spec("xllamacpp") is None:
            raise ServerError("the llama.cpp server needs `xllamacpp`: pip install 'psycopref[demo]'")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "hub_tools.serving.llama_server", "--gguf", str(self.gguf), "--port", str(self.port),
               "--threads", str(self.cfg.threads), "--ctx-size", str(self.cfg.ctx_size),
               "--n-parallel", str(self.cfg.n_parallel)]
        with open(self.log_path, "ab") as logf:
            self.proc = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         start_new_session=True)
        atexit.register(self.stop)
        log.info("llama.cpp server starting on 127.0.0.1:%d (%s, %d thread(s)); log: %s",
                 self.port, self.gguf.name, self.cfg.threads, self.log_path)
        self._wait_healthy()
        return self

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + self.cfg.startup_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                tail = self.log_path.read_text(errors="replace")[-1500:]
                raise ServerError(f"llama.cpp server exited with code {self.proc.returncode}; log tail:\n{tail}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=2) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.25)
        self.stop()
        raise ServerError(f"llama.cpp server did not become healthy in {self.cfg.startup_timeout:.0f}s; see {self.log_path}")

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        log.info("llama.cpp server stopped")

    def __enter__(self) -> LlamaServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _serve(args: argparse.Namespace) -> None:
    """Child-process body: run xllamacpp's server until SIGTERM/SIGINT or the parent disappears."""
    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = args.gguf
    params.cpuparams.n_threads = args.threads
    params.cpuparams_batch.n_threads = args.threads
    params.n_ctx = args.ctx_size
    params.n_parallel = args.n_parallel
    params.hostnames = ["127.0.0.1"]  # loopback only
    params.port = args.port
    server = xllamacpp.Server(params)  # noqa: F841  (serves until deleted)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    parent = os.getppid()
    while not stop.wait(1.0):
        if os.getppid() != parent:  # orphaned: the toolkit died without stopping us
            break
    del server


if __name__ == "__main__":
    p = argparse.ArgumentParser(description="Run xllamacpp's llama.cpp server (used by psycopref).")
    p.add_argument("--gguf", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--ctx-size", type=int, default=8192)
    p.add_argument("--n-parallel", type=int, default=1)
    _serve(p.parse_args())
