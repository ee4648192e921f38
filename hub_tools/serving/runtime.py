"""What every model-calling stage shares: the managed server, the call cache/ledger, the backends.

`Runtime(work_dir, endpoints, server)` is a context manager any caller can open for the endpoints it
is about to use: the dataset pipeline for a recipe's stages, an iterative-DPO round for its current
policy. It starts the llama.cpp server only if one of those endpoints uses `base_url: managed`, and
always stops it on exit or error. Every model call goes through `Runtime.call`, which caches it in
`<work_dir>/cache.sqlite`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from ..config import Endpoint, ServerConfig
from .base import BACKENDS, Backend, ChatRequest, Completion, in_process, make_backend
from .cache import ResponseCache, cache_key
from .llama_server import LlamaServer
from .parallel import Stopped, run_parallel, stopping

ENGINE_BATCH = 4096  # calls per `chat_many` (one vLLM engine call): a kill loses at most one batch's answers

__all__ = ["Runtime", "client_identity", "endpoint_identity", "run_parallel"]


def folder_fingerprint(path: Path) -> str:
    """Size and modification time of a model folder's config and weight files: a checkpoint rebuilt in
    the same place (an iterative-DPO round trained again) is a different model to the cache."""
    files = sorted(p for p in path.iterdir() if p.name == "config.json" or p.suffix in (".safetensors", ".bin", ".gguf"))
    stamp = [[p.name, p.stat().st_size, p.stat().st_mtime_ns] for p in files]
    return hashlib.sha256(json.dumps(stamp).encode()).hexdigest()[:16]


def endpoint_identity(endpoint: Endpoint, server: ServerConfig | None) -> dict[str, Any]:
    """What identifies a model for caching: never the API key, never the managed server's port."""
    ident = {"backend": endpoint.backend, "model": endpoint.model, "base_url": endpoint.base_url}
    if endpoint.base_url == "managed" and server is not None:
        ident["gguf"] = server.gguf
    if in_process(endpoint.backend) and Path(endpoint.model).is_dir():  # a local model folder
        ident["fingerprint"] = folder_fingerprint(Path(endpoint.model))
    return ident


def client_identity(endpoint: Endpoint) -> str:
    """What makes two endpoints need separate clients: every `Endpoint` setting but the per-call `params`
    (the key's variable, timeout, retries, ...), so a pool member never sends another member's key or
    inherits its timeout. A subclass's own fields (a pool member's name, system prompt) are per call too.
    Only the variable's name is part of it, never the key: it is read once, when the client is built."""
    settings = {name: getattr(endpoint, name) for name in Endpoint.model_fields if name != "params"}
    if in_process(endpoint.backend) and Path(endpoint.model).is_dir():
        settings["fingerprint"] = folder_fingerprint(Path(endpoint.model))
    return json.dumps(settings, sort_keys=True, default=str)


class Runtime(contextlib.AbstractContextManager):
    """Cache, backends and (when needed) the managed server for calls to `endpoints`."""

    def __init__(self, work_dir: str | Path, endpoints: Iterable[Endpoint] = (), server: ServerConfig | None = None):
        self.work = Path(work_dir)
        self.work.mkdir(parents=True, exist_ok=True)
        self.server_config = server or ServerConfig()  # also names the managed model in cache keys
        self.cache = ResponseCache(self.work / "cache.sqlite")
        self.server: LlamaServer | None = None
        self._stack = contextlib.ExitStack()
        self._backends: dict[str, Backend] = {}
        self._lock = threading.Lock()
        if any(e.base_url == "managed" for e in endpoints):
            try:
                self.server = self._stack.enter_context(LlamaServer(self.server_config, self.work / "logs"))
            except BaseException:
                self.cache.close()
                raise

    @property
    def managed_url(self) -> str | None:
        return self.server.base_url if self.server else None

    def backend(self, endpoint: Endpoint) -> Backend:
        """One backend per distinct `client_identity`: pool members with the same model and settings share it."""
        key = client_identity(endpoint)
        with self._lock:
            if key not in self._backends:
                self._backends[key] = make_backend(endpoint, managed_url=self.managed_url)
            return self._backends[key]

    def facts(self, endpoint: Endpoint) -> type[Backend] | Backend:
        """What the endpoint's backend can do (`batches`, `supports_json_schema`): its registered class's facts,
        so nothing is built (no model loaded) for calls the cache answers; a factory that is not a `Backend`
        class is built to be asked."""
        factory = BACKENDS.get(endpoint.backend)
        return factory if isinstance(factory, type) and issubclass(factory, Backend) else self.backend(endpoint)

    def call_parts(self, endpoint: Endpoint, messages: list[dict], *, stage: str, params: dict | None = None,
                   json_schema: dict | None = None, extra_key: dict | None = None) -> dict[str, Any]:
        """What identifies one call in the cache (its key is `cache.cache_key(parts)`); the schema is
        dropped where the backend cannot constrain output, exactly as `call` sends it."""
        schema = json_schema if self.facts(endpoint).supports_json_schema else None
        return {"stage": stage, "endpoint": endpoint_identity(endpoint, self.server_config), "messages": messages,
                "params": endpoint.params if params is None else params, "schema": schema, **(extra_key or {})}

    def release(self, endpoint: Endpoint) -> None:
        """Close and forget the backend serving `endpoint` (an in-process model frees its memory), e.g. a
        policy checkpoint whose round is over."""
        key = client_identity(endpoint)
        with self._lock:
            backend = self._backends.pop(key, None)
        if backend is not None:
            backend.close()

    def call(self, endpoint: Endpoint, messages: list[dict], *, stage: str, params: dict | None = None,
             json_schema: dict | None = None, extra_key: dict | None = None,
             price: Callable[[Completion], float] | None = None,
             on_miss: Callable[[], None] | None = None) -> tuple[Completion, bool]:
        """One cached call: returns (completion, was_cached). `extra_key` separates e.g. retry attempts;
        `on_miss` runs before a real (paid) call and may raise to stop, e.g. at a budget cap."""
        params = endpoint.params if params is None else params
        parts = self.call_parts(endpoint, messages, stage=stage, params=params, json_schema=json_schema,
                                extra_key=extra_key)
        schema = parts["schema"]

        def fresh() -> Completion:
            if stopping():  # the stage failed or was interrupted: no new paid call
                raise Stopped(f"{stage}: not sent, the stage is stopping")
            if on_miss is not None:
                on_miss()
            return self.backend(endpoint).chat(messages, params, schema)  # built on the first miss

        return self.cache.call(parts, stage, fresh, price)

    def call_many(self, endpoint: Endpoint, calls: list[dict[str, Any]], *, stage: str,
                  price: Callable[[Completion], float] | None = None,
                  on_done: Callable[[int], None] | None = None) -> list[tuple[Completion, bool]]:
        """Many cached calls to one endpoint: (completion, was_cached) per call, in order. Each call is a
        dict of `call`'s keywords (messages, params, json_schema, extra_key) and is cached under the same
        key as `call` would use; the misses go to the backend's `chat_many` in batches of `ENGINE_BATCH`
        (one engine call each for a batching backend), each answer cached as its batch returns; the backend
        is built only when some call is not cached.
        `on_done(k)` reports k more finished calls."""
        parts = [self.call_parts(endpoint, c["messages"], stage=stage, params=c.get("params"),
                                 json_schema=c.get("json_schema"), extra_key=c.get("extra_key")) for c in calls]
        keys = [cache_key(p) for p in parts]
        results: list[tuple[Completion, bool] | None] = [None] * len(calls)
        misses = []
        for i, key in enumerate(keys):
            hit = self.cache.get(key)
            if hit is None:
                misses.append(i)
            else:
                results[i] = (hit, True)
        if len(misses) < len(calls) and on_done is not None:
            on_done(len(calls) - len(misses))
        for lo in range(0, len(misses), ENGINE_BATCH):
            if stopping():
                raise Stopped(f"{stage}: not sent, the stage is stopping")
            batch = misses[lo:lo + ENGINE_BATCH]
            start = time.perf_counter()
            done = self.backend(endpoint).chat_many([ChatRequest(calls[i]["messages"], parts[i]["params"], parts[i]["schema"])
                                      for i in batch])
            seconds = (time.perf_counter() - start) / max(1, len(batch))  # the batch's time, shared out
            self.cache.put_many([(keys[i], stage, completion, price(completion) if price else 0.0, seconds)
                                 for i, completion in zip(batch, done, strict=True)])
            for i, completion in zip(batch, done):
                results[i] = (completion, False)
            if on_done is not None:
                on_done(len(batch))
        return results  # type: ignore[return-value]

    def __exit__(self, *exc) -> None:
        for b in self._backends.values():
            b.close()
        self.cache.close()
        self._stack.close()
