"""The backend interface: one chat call in, one completion (text + token usage) out.

Backends are plug-ins chosen by name from a registry (open-r1 style), so a recipe can point a pool
member or the judge at GPT-4o, TGI, a vLLM server, the local llama.cpp server or an in-process
transformers model without code changes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Callable, Protocol


class BackendError(RuntimeError):
    """A call that failed for good (after retries); the message names the endpoint, never a key."""


@dataclass
class Completion:
    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str | None = None
    created_at: float | None = None  # unix time the call finished (filled by the cache)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Backend(Protocol):
    """What every backend implements."""

    name: str  # registry name
    supports_json_schema: bool  # can constrain output to a JSON schema

    def chat(self, messages: list[dict], params: dict[str, Any], json_schema: dict | None = None) -> Completion:
        """One chat completion. `json_schema` asks for schema-constrained JSON when supported."""
        ...

    def close(self) -> None: ...


_REGISTRY: dict[str, Callable[..., Backend]] = {}


def register_backend(*names: str):
    """Class decorator: make a backend available to recipes under one or more names."""

    def wrap(factory):
        for n in names:
            _REGISTRY[n] = factory
        return factory

    return wrap


def _load_builtin() -> None:
    from . import openai_compat, transformers_local, vllm_offline  # noqa: F401  (they register themselves)


def available_backends() -> list[str]:
    _load_builtin()
    return sorted(_REGISTRY)


def make_backend(endpoint, managed_url: str | None = None) -> Backend:
    """Build the backend a recipe `Endpoint` names. `managed_url` resolves base_url 'managed'."""
    _load_builtin()
    factory = _REGISTRY.get(endpoint.backend)
    if factory is None:
        raise BackendError(f"unknown backend {endpoint.backend!r}; available: {', '.join(available_backends())}")
    return factory(endpoint, managed_url=managed_url)
