"""The backend interface: one chat call in, one completion (text + token usage) out.

Backends are plug-ins chosen by name from a registry (open-r1 style), so a recipe can point a pool
member or the judge at GPT-4o, TGI, a vLLM server, the local llama.cpp server or an in-process
transformers model without code changes.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from ..errors import PsycoprefError
from ..registry import Registry


class BackendError(PsycoprefError, RuntimeError):
    """A call that failed for good (after retries); the message names the endpoint, never a key."""


class ServerError(BackendError):
    """The managed llama.cpp server (or its model file) could not start or answer."""


_SURROGATE = re.compile("[\ud800-\udfff]")  # in a str these are always lone: UTF-8 cannot hold them


def valid_text(text: str) -> str:
    """`text` with each lone surrogate (a server's JSON may escape one: "\\ud800") as U+FFFD, so it can be
    cached, saved and shown; any other text is returned unchanged."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return _SURROGATE.sub("\ufffd", text)
    return text


@dataclass
class Completion:
    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str | None = None
    created_at: float | None = None  # unix time the call finished (filled by the cache)

    def __post_init__(self) -> None:
        self.text = valid_text(self.text)

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


BACKENDS: Registry[Callable[..., Backend]] = Registry("backend", BackendError)
# The built-in backends, imported when first used (`psycopref[vllm]` is optional; torch is heavy).
BACKENDS.register_lazy("hub_tools.serving.openai_compat:OpenAICompatBackend", "openai", "tgi", "vllm-server", "llamacpp")
BACKENDS.register_lazy("hub_tools.serving.transformers_local:TransformersBackend", "transformers")
BACKENDS.register_lazy("hub_tools.serving.vllm_offline:VLLMBackend", "vllm")


def register_backend(*names: str):
    """Class decorator: make a backend available to recipes under one or more names."""
    return BACKENDS.register(*names)


def available_backends() -> list[str]:
    return BACKENDS.names()


def make_backend(endpoint, managed_url: str | None = None) -> Backend:
    """Build the backend a recipe `Endpoint` names. `managed_url` resolves base_url 'managed'."""
    return BACKENDS.get(endpoint.backend)(endpoint, managed_url=managed_url)
