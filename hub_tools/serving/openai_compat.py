"""Any OpenAI-compatible or TGI Messages API server, through `huggingface_hub.InferenceClient`.

One client covers GPT-4o (api.openai.com), TGI, vLLM's server and llama.cpp's server. Transport
failures (connection refused, timeouts, 429, 5xx) are retried with exponential backoff (tenacity);
the final error names the endpoint, never the API key.
"""

from __future__ import annotations

import inspect
import os
from typing import Any

from huggingface_hub import InferenceClient
from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled
from tenacity import retry, retry_if_exception, stop_after_attempt, wait_exponential

try:  # huggingface_hub>=2 speaks HTTP through httpx2, 1.x through httpx
    import httpx2 as _httpx
except ImportError:  # pragma: no cover
    import httpx as _httpx

from .base import BackendError, Completion

_CHAT_KWARGS = set(inspect.signature(InferenceClient.chat_completion).parameters) - {"self", "messages", "stream"}


def _transient(err: BaseException) -> bool:
    if isinstance(err, OfflineModeIsEnabled):  # a setting, not a network hiccup
        return False
    if isinstance(err, (_httpx.TransportError, ConnectionError, TimeoutError)):
        return True
    if isinstance(err, HfHubHTTPError) and err.response is not None:
        return err.response.status_code == 429 or err.response.status_code >= 500
    return False


def _structured(dialect: str, schema: dict) -> dict:
    """Request kwargs asking a server of this dialect for JSON (schema-constrained where it can).

    `InferenceClient` rewrites `response_format: json_schema` to TGI's grammar form, so servers that
    speak OpenAI's form get the schema through their own native field instead."""
    if dialect == "tgi":  # sent as {"type": "json_object", "value": schema}: TGI's grammar
        return {"response_format": {"type": "json_schema", "json_schema": {"name": "answer", "schema": schema}}}
    if dialect == "llamacpp":  # llama.cpp server: top-level json_schema -> GBNF grammar
        return {"extra_body": {"json_schema": schema}}
    if dialect == "vllm-server":  # vLLM's OpenAI server: guided decoding
        return {"extra_body": {"guided_json": schema}}
    return {"response_format": {"type": "json_object"}}  # OpenAI JSON mode; pydantic validates the keys


class OpenAICompatBackend:
    supports_json_schema = True

    def __init__(self, endpoint, managed_url: str | None = None):
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
        self.max_retries = endpoint.max_retries
        self.client = InferenceClient(base_url=base_url, api_key=api_key, timeout=endpoint.timeout)

    def chat(self, messages: list[dict], params: dict[str, Any], json_schema: dict | None = None) -> Completion:
        kwargs = {k: v for k, v in params.items() if k in _CHAT_KWARGS}
        extra = {k: v for k, v in params.items() if k not in _CHAT_KWARGS}  # e.g. top_k, min_p
        if extra:
            kwargs["extra_body"] = {**kwargs.get("extra_body", {}), **extra}
        if json_schema is not None:
            for key, value in _structured(self.name, json_schema).items():
                kwargs[key] = {**kwargs.get(key, {}), **value} if key == "extra_body" else value

        @retry(retry=retry_if_exception(_transient), stop=stop_after_attempt(self.max_retries + 1),
               wait=wait_exponential(multiplier=0.5, max=20), reraise=True)
        def _call():
            return self.client.chat_completion(messages, model=self.model, **kwargs)

        try:
            out = _call()
        except OfflineModeIsEnabled:
            raise BackendError(f"{self.base_url}: HF_HUB_OFFLINE=1 makes huggingface_hub refuse every HTTP request, "
                               "local servers included; unset it for generation and judging (nothing is downloaded "
                               "from the Hub by these stages)") from None
        except Exception as err:  # noqa: BLE001  (re-raised with the endpoint named, key-free)
            status = getattr(getattr(err, "response", None), "status_code", None)
            detail = f"HTTP {status}" if status else type(err).__name__
            raise BackendError(f"{self.base_url} (model {self.model}) failed after {self.max_retries + 1} attempt(s): {detail}") from None
        choice = out.choices[0]
        usage = out.usage
        return Completion(
            text=choice.message.content or "",
            prompt_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
            completion_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
            finish_reason=choice.finish_reason,
        )

    def close(self) -> None:
        pass
