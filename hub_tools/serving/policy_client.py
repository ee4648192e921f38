"""A served policy answering client speeches: TGI's Messages API, vLLM's OpenAI server, a llama.cpp server.

`PolicyClient` wraps one recipe `Endpoint` (backend `tgi`, `vllm-server`, `llamacpp` or `openai`, all
`huggingface_hub.InferenceClient(base_url=...)` through `OpenAICompatBackend`, with its retries that honour
Retry-After on 429/503, its timeouts and its key handling; or an in-process `transformers` model) and asks
it the paper's Responding Prompt, with the policy's system prompt, optional length constraint and decoding
parameters from the recipe, streamed or not. `health` / `wait_ready` ask the server's readiness route, so
a caller can wait for a TGI container that is still loading its 8B model instead of failing its first call.
No answer is cached: the Space must not keep what visitors type.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any

from ..config import Endpoint
from ..paper.prompts import responding_messages
from .base import Backend, BackendError, Completion, Health, make_backend

log = logging.getLogger("psycopref")


class PolicyClient:
    """One policy behind one endpoint, asked with the Responding Prompt (paper Appendix A)."""

    def __init__(self, endpoint: Endpoint, system_prompt: str | None = None, length_words: int | None = None,
                 managed_url: str | None = None, backend: Backend | None = None):
        self.endpoint = endpoint
        self.system_prompt = system_prompt
        self.length_words = length_words  # default length constraint ("Answer in about N words.")
        self.backend = backend or make_backend(endpoint, managed_url=managed_url)
        self.label = self.backend.label

    def messages(self, speech: str, length_words: int | None = None) -> list[dict]:
        """The chat the policy is sent: system prompt (if any), then the Responding Prompt."""
        words = length_words if length_words is not None else self.length_words
        return responding_messages(speech, self.system_prompt, words)

    def params(self, **overrides: Any) -> dict[str, Any]:
        """The recipe's decoding parameters with `overrides` (None values dropped) on top."""
        return {**self.endpoint.params, **{k: v for k, v in overrides.items() if v is not None}}

    def answer(self, speech: str, length_words: int | None = None, **params: Any) -> Completion:
        """The whole answer in one request."""
        return self.backend.chat(self.messages(speech, length_words), self.params(**params))

    def stream(self, speech: str, length_words: int | None = None, **params: Any) -> Iterator[str]:
        """The answer piece by piece as the server generates it (`Backend.stream_chat`: a backend that cannot stream gives its whole answer at once)."""
        return self.backend.stream_chat(self.messages(speech, length_words), self.params(**params))

    def health(self) -> Health:
        """Whether the server is ready now (one request, no retries); in-process models always are."""
        return self.backend.health()

    def wait_ready(self, timeout: float = 600.0, interval: float = 2.0) -> Health:
        """Poll `health` until the server is ready; a `BackendError` naming the endpoint after `timeout` s
        (a TGI container downloads and loads an 8B model for minutes before it answers)."""
        deadline = time.monotonic() + timeout
        while True:
            health = self.health()
            if health.ready:
                return health
            if time.monotonic() + interval > deadline:
                raise BackendError(f"{self.label} is not ready after {timeout:g} s: {health.detail}")
            log.info("%s: not ready yet (%s); asking again in %g s", self.label, health.detail, interval)
            time.sleep(interval)

    def close(self) -> None:
        self.backend.close()
