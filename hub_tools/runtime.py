"""What every model-calling stage shares: the managed server, the call cache/ledger, the backends.

`Runtime(recipe)` is a context manager. It starts the llama.cpp server only if some endpoint of the
stages being run uses `base_url: managed`, and always stops it on exit or error.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from typing import Any, Callable

from .backends import Backend, Completion, make_backend
from .cache import ResponseCache
from .config import Endpoint, Recipe, ServerConfig
from .llama_server import LlamaServer

log = logging.getLogger("psycopref")


def endpoint_identity(endpoint: Endpoint, server: ServerConfig | None) -> dict[str, Any]:
    """What identifies a model for caching: never the API key, never the managed server's port."""
    ident = {"backend": endpoint.backend, "model": endpoint.model, "base_url": endpoint.base_url}
    if endpoint.base_url == "managed" and server is not None:
        ident["gguf"] = server.gguf
    return ident


def managed_needed(recipe: Recipe, stages: list[str]) -> bool:
    endpoints: list[Endpoint] = []
    if "speeches" in stages and recipe.speeches.classifier:
        endpoints.append(recipe.speeches.classifier)
    if "generate" in stages and recipe.generate:
        endpoints += recipe.generate.pool
    if "judge" in stages and recipe.judge:
        endpoints.append(recipe.judge.endpoint)
    return any(e.base_url == "managed" for e in endpoints)


class Runtime(contextlib.AbstractContextManager):
    def __init__(self, recipe: Recipe, stages: list[str]):
        self.recipe = recipe
        self.work = recipe.work_path
        self.work.mkdir(parents=True, exist_ok=True)
        self.cache = ResponseCache(self.work / "cache.sqlite")
        self.server: LlamaServer | None = None
        self._stack = contextlib.ExitStack()
        self._backends: dict[str, Backend] = {}
        self._lock = threading.Lock()
        if managed_needed(recipe, stages):
            self.server = self._stack.enter_context(LlamaServer(recipe.server or ServerConfig(), self.work / "logs"))

    @property
    def managed_url(self) -> str | None:
        return self.server.base_url if self.server else None

    def backend(self, endpoint: Endpoint) -> Backend:
        """One backend per distinct (backend, base_url, model): pool members sharing a model share it."""
        key = repr(sorted(endpoint_identity(endpoint, None).items()))
        with self._lock:
            if key not in self._backends:
                self._backends[key] = make_backend(endpoint, managed_url=self.managed_url)
            return self._backends[key]

    def call(self, endpoint: Endpoint, messages: list[dict], *, stage: str, params: dict | None = None,
             json_schema: dict | None = None, extra_key: dict | None = None,
             price: Callable[[Completion], float] | None = None,
             on_miss: Callable[[], None] | None = None) -> tuple[Completion, bool]:
        """One cached call: returns (completion, was_cached). `extra_key` separates e.g. retry attempts;
        `on_miss` runs before a real (paid) call and may raise to stop, e.g. at a budget cap."""
        params = endpoint.params if params is None else params
        backend = self.backend(endpoint)
        schema = json_schema if backend.supports_json_schema else None
        parts = {"stage": stage, "endpoint": endpoint_identity(endpoint, self.recipe.server or ServerConfig()),
                 "messages": messages, "params": params, "schema": schema, **(extra_key or {})}
        def fresh() -> Completion:
            if on_miss is not None:
                on_miss()
            return backend.chat(messages, params, schema)

        return self.cache.call(parts, stage, fresh, price)

    def __exit__(self, *exc) -> None:
        for b in self._backends.values():
            b.close()
        self.cache.close()
        self._stack.close()


class StageError(RuntimeError):
    """A stage that stopped early; every finished call is kept in the cache."""


def run_parallel(fn: Callable[[int], Any], n: int, concurrency: int, desc: str, unit: str) -> list[Any]:
    """Run fn(0..n-1) on a thread pool with a progress bar; stop at the first error, keeping results."""
    from concurrent.futures import ThreadPoolExecutor, as_completed

    from tqdm.auto import tqdm

    results: list[Any] = [None] * n
    with ThreadPoolExecutor(concurrency) as pool, tqdm(total=n, desc=desc, unit=unit, dynamic_ncols=True) as bar:
        futures = {pool.submit(fn, i): i for i in range(n)}
        for fut in as_completed(futures):
            err = fut.exception()
            if err is not None:
                for other in futures:
                    other.cancel()
                done = sum(f.done() and not f.cancelled() and f.exception() is None for f in futures)
                if isinstance(err, StageError):
                    raise err
                raise StageError(f"{desc} stopped: {err} ({done} of {n} calls finished and cached; "
                                 "rerun the same command to resume)") from err
            results[futures[fut]] = fut.result()
            bar.update(1)
    return results
