"""The backend interface: one chat call in, one completion (text + token usage) out.

Backends are plug-ins chosen by name from a registry (open-r1 style), so a recipe can point a pool
member or the judge at GPT-4o, TGI, a vLLM server, the local llama.cpp server or an in-process
transformers model without code changes.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

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


@dataclass(frozen=True)
class ChatRequest:
    """One chat call of a batch handed to `Backend.chat_many`: what `Backend.chat` takes."""

    messages: list[dict]
    params: dict[str, Any]
    json_schema: dict | None = None


@dataclass(frozen=True)
class Health:
    """What a server's readiness route said: `ready` once it answers chat requests."""

    ready: bool
    status: int | None  # HTTP status of the readiness route; None when nothing answered
    detail: str  # "ready", "loading", "HTTP 404", "could not connect ...", "in-process model"


class Backend:
    """A model behind a chat call: the base class of every backend (a plug-in subclasses it and registers
    with `register_backend`). `chat` is the one thing a backend must do; every optional ability is declared
    here with its default, so callers use it without probing.

    Class facts: `name` (the registry name), `supports_json_schema` (can constrain output to a JSON schema),
    `in_process` (loads `model` itself, often from a local folder: no server, no base_url),
    `supports_batch` (builds OpenAI Batch API request bodies with `request_body`),
    `batches` (`chat_many` hands a whole list of calls to one engine at once: callers send a stage's calls
    to it together instead of one per thread).
    """

    name: str = "backend"
    label: str = "backend"  # how logs and errors name the model (set from the endpoint)
    supports_json_schema: bool = False
    in_process: bool = False
    supports_batch: bool = False
    batches: bool = False

    def __init__(self, endpoint, managed_url: str | None = None):
        self.endpoint = endpoint
        self.label = f"{endpoint.backend} model {endpoint.model}"

    def chat(self, messages: list[dict], params: dict[str, Any], json_schema: dict | None = None) -> Completion:
        """One chat completion. `json_schema` asks for schema-constrained JSON when supported."""
        raise NotImplementedError(f"backend {self.name!r} does not implement chat")

    def chat_many(self, requests: list[ChatRequest]) -> list[Completion]:
        """One completion per request, in order. By default one `chat` after another; a batching engine
        (`batches`) answers them all in one go."""
        return [self.chat(r.messages, r.params, r.json_schema) for r in requests]

    def stream_chat(self, messages: list[dict], params: dict[str, Any]) -> Iterator[str]:
        """The answer piece by piece; by default the whole answer at once. The generator returns the
        finish_reason when the backend knows it ("length": cut by max_tokens), else None."""
        completion = self.chat(messages, params)
        yield completion.text
        return completion.finish_reason

    def health(self) -> Health:
        """Whether the model answers now; by default it always does (an in-process model, a server with no
        readiness route)."""
        return Health(True, None, "in-process model" if self.in_process else "no readiness route")

    def request_body(self, messages: list[dict], params: dict[str, Any], json_schema: dict | None = None) -> dict:
        """The JSON body of one OpenAI Batch API request (backends with `supports_batch`)."""
        raise BackendError(f"backend {self.name!r} cannot build Batch API requests")

    def close(self) -> None:
        """Free what the backend holds (an in-process model's memory, connections)."""


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
    backend = BACKENDS.get(endpoint.backend)(endpoint, managed_url=managed_url)
    if not isinstance(backend, Backend):
        raise BackendError(f"backend {endpoint.backend!r} made a {type(backend).__name__}, not a "
                           "hub_tools.serving.Backend: subclass Backend (it declares every optional ability)")
    return backend


def in_process(backend: str) -> bool:
    """Whether the backend named `backend` loads its model in-process (a local folder, no server): the
    `in_process` fact of its class."""
    factory = BACKENDS.get(backend)
    return isinstance(factory, type) and issubclass(factory, Backend) and factory.in_process
