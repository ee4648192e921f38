"""Any OpenAI-compatible or TGI Messages API server, through `huggingface_hub.InferenceClient`.

One client covers GPT-4o (api.openai.com), TGI, vLLM's server and llama.cpp's server. Transient
failures are retried as `serving.retry` says (Retry-After honoured, waits capped and logged). The final error names the endpoint (URL and model), never the API key, and the only key ever
sent is the one the recipe names: without `api_key_env` no Authorization header goes out at all.
`stream_chat` streams an answer (retrying only until the stream opens) and `health` asks the server's
readiness route, for the policy client (`serving.policy_client`) and the Space.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Iterator
from typing import Any

from huggingface_hub import InferenceClient
from huggingface_hub.errors import OfflineModeIsEnabled

from .base import Backend, BackendError, Completion, Health, valid_text
from .grammar import to_gbnf
from .retry import Retrier, describe, parse_retry_after, status

__all__ = ["OpenAICompatBackend", "parse_retry_after"]

_CHAT_KWARGS = set(inspect.signature(InferenceClient.chat_completion).parameters) - {"self", "messages", "stream"}


def _count(usage: Any, name: str) -> int:
    """A token count from the answer's usage block; 0 when the server sends none (or nonsense)."""
    try:
        return int(getattr(usage, name, 0) or 0)
    except (TypeError, ValueError):
        return 0


def _structured(dialect: str, schema: dict) -> dict:
    """Request kwargs asking a server of this dialect for JSON (schema-constrained where it can).

    `InferenceClient` rewrites `response_format: json_schema` to TGI's grammar form, so servers that
    speak OpenAI's form get the schema through their own native field instead."""
    if dialect == "tgi":  # sent as {"type": "json_object", "value": schema}: TGI's grammar
        return {"response_format": {"type": "json_schema", "json_schema": {"name": "answer", "schema": schema}}}
    if dialect == "llamacpp":  # llama.cpp server: our whitespace-free grammar, else its own from the schema
        try:
            return {"extra_body": {"grammar": to_gbnf(schema)}}
        except ValueError:
            return {"extra_body": {"json_schema": schema}}
    if dialect == "vllm-server":  # vLLM >= 0.12's OpenAI server (its `guided_json` field was removed in 0.12)
        return {"extra_body": {"structured_outputs": {"json": schema}}}
    return {"response_format": {"type": "json_object"}}  # OpenAI JSON mode; pydantic validates the keys


class OpenAICompatBackend(Backend):
    supports_json_schema = True
    supports_batch = True

    def __init__(self, endpoint, managed_url: str | None = None):
        super().__init__(endpoint, managed_url)
        base_url = endpoint.base_url
        # the registry name picks the server's dialect for structured output
        self.name = "llamacpp" if base_url == "managed" else endpoint.backend
        if base_url == "managed":
            if managed_url is None:
                raise BackendError(f"endpoint {endpoint.model!r} uses base_url 'managed' but the recipe starts no server")
            base_url = managed_url
        if not base_url:
            raise BackendError(f"endpoint {endpoint.model!r} needs a base_url")
        api_key = None
        if endpoint.api_key_env:
            api_key = os.environ.get(endpoint.api_key_env)
            if not api_key:
                raise BackendError(f"endpoint {base_url} expects its API key in ${endpoint.api_key_env}, which is unset")
        self.base_url = base_url
        self.model = endpoint.model
        self.label = f"{base_url} (model {endpoint.model})"  # how errors and logs name the endpoint
        self.timeout = endpoint.timeout
        self.retry = Retrier(self.label, endpoint.max_retries, endpoint.max_retry_wait, self._describe)
        # Without a key InferenceClient would send the user's Hugging Face token (HF_TOKEN or `hf auth
        # login`) to whatever server base_url names; a None header drops it.
        headers = None if api_key else {"authorization": None}
        self._client_args = {"base_url": base_url, "api_key": api_key, "timeout": endpoint.timeout, "headers": headers}
        self.client = InferenceClient(**self._client_args)

    def _describe(self, err: BaseException) -> str:
        """What went wrong, in words, without the server's body (it may quote the request)."""
        if status(err) is None and isinstance(err, ValueError):  # JSONDecodeError, or JSON that is no object
            return "the answer is not a JSON chat completion; is base_url an OpenAI-compatible server?"
        return describe(err, self.timeout)

    def request_kwargs(self, params: dict[str, Any], json_schema: dict | None = None) -> dict[str, Any]:
        """`InferenceClient.chat_completion` keyword arguments for these decoding params and schema."""
        kwargs = {k: v for k, v in params.items() if k in _CHAT_KWARGS}
        extra = {k: v for k, v in params.items() if k not in _CHAT_KWARGS}  # e.g. top_k, min_p
        if extra:
            kwargs["extra_body"] = {**kwargs.get("extra_body", {}), **extra}
        if json_schema is not None:
            for key, value in _structured(self.name, json_schema).items():
                kwargs[key] = {**kwargs.get(key, {}), **value} if key == "extra_body" else value
        return kwargs

    def request_body(self, messages: list[dict], params: dict[str, Any], json_schema: dict | None = None) -> dict:
        """The JSON body `chat` would post, for the Batch API: model, messages, params, structured output."""
        kwargs = self.request_kwargs(params, json_schema)
        extra = kwargs.pop("extra_body", {})
        return {"model": self.model, "messages": messages, **kwargs, **extra}

    def _failure(self, err: Exception, attempts: int) -> BackendError:
        """The final error: the endpoint and how many attempts were made, never the key or the server's body."""
        if isinstance(err, OfflineModeIsEnabled):
            return BackendError(f"{self.base_url}: HF_HUB_OFFLINE=1 makes huggingface_hub refuse every HTTP request, "
                                "local servers included; unset it for generation and judging (nothing is downloaded "
                                "from the Hub by these stages)")
        tries = f" after {attempts} attempts" if attempts > 1 else ""
        return BackendError(f"{self.label} failed{tries}: {self._describe(err)}")

    def _call(self, send):
        """`send()` (one request), retried on transient failures (`serving.retry`)."""
        return self.retry.call(send, self._failure)

    def chat(self, messages: list[dict], params: dict[str, Any], json_schema: dict | None = None) -> Completion:
        kwargs = self.request_kwargs(params, json_schema)
        return self._completion(self._call(lambda: self.client.chat_completion(messages, model=self.model, **kwargs)))

    def stream_chat(self, messages: list[dict], params: dict[str, Any]) -> Iterator[str]:
        """The answer's text as the server streams it (server-sent events), piece by piece; the generator
        returns the finish_reason ("length": cut by max_tokens).

        Opening the stream is retried like `chat` (connection errors, 429/503 with Retry-After, 5xx);
        once text has arrived a failure is final (a retry would repeat it). The endpoint's `timeout`
        bounds each wait for the next piece. Each stream has its own client, so closing the generator
        early (a visitor who leaves) closes the connection and a TGI or llama.cpp server stops generating."""
        kwargs = self.request_kwargs(params)
        with InferenceClient(**self._client_args) as client:
            chunks = self._call(lambda: client.chat_completion(messages, model=self.model, stream=True, **kwargs))
            pieces, finished = 0, None
            try:
                for chunk in chunks:
                    choice = chunk.choices[0] if chunk.choices else None
                    finished = finished or getattr(choice, "finish_reason", None)
                    text = getattr(getattr(choice, "delta", None), "content", None)
                    if text:
                        pieces += 1
                        yield valid_text(text)
            except Exception as err:  # noqa: BLE001  (named, key-free; no retry once text has been shown)
                raise BackendError(f"{self.label}: the stream broke off after {pieces} pieces: {self._describe(err)}") from None
            if not finished:  # the connection closed mid-answer: an event stream has no length to check
                raise BackendError(f"{self.label}: the stream broke off after {pieces} pieces: it ended without a "
                                   "finish_reason (the connection closed mid-answer)")
            return str(finished)  # the generator's value: "stop", or "length" for an answer cut by max_tokens

    def health(self) -> Health:
        """What the server's readiness route says: `/health` at the server's root
        (TGI, vLLM and llama.cpp answer 200 once the model is loaded, llama.cpp 503 while loading), else
        `<base_url>/models` for servers without it (OpenAI). Status None: nothing answered. Not retried:
        callers poll."""
        from huggingface_hub import get_session

        root = self.base_url.rstrip("/").removesuffix("/v1")
        key = self._client_args["api_key"]  # the key the recipe names, and no other
        headers = {"authorization": f"Bearer {key}"} if key else {}
        status = None
        try:
            for url in (f"{root}/health", f"{self.base_url.rstrip('/')}/models"):
                status = get_session().get(url, headers=headers, timeout=min(self.timeout, 10.0)).status_code
                if status != 404:
                    break
        except Exception as err:  # noqa: BLE001  (a server that is not up yet)
            return Health(False, None, self._describe(err))
        meaning = "ready" if status == 200 else "loading" if status == 503 else f"HTTP {status}"
        return Health(status == 200, status, meaning)

    def _completion(self, out) -> Completion:
        """The answer's text and usage; a body without `choices[0].message` is the endpoint's fault."""
        choice = out.choices[0] if isinstance(out.choices, list) and out.choices else None
        message = getattr(choice, "message", None)
        content = getattr(message, "content", None)
        if message is None or not isinstance(content, (str, type(None))):
            raise BackendError(f"{self.label} failed: the answer has no choices[0].message text; "
                               "is base_url an OpenAI-compatible server?")
        finish = getattr(choice, "finish_reason", None)
        return Completion(text=content or "", prompt_tokens=_count(out.usage, "prompt_tokens"),
                          completion_tokens=_count(out.usage, "completion_tokens"),
                          finish_reason=None if finish is None else str(finish))

