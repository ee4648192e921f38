"""Calling models: the backend interface and registry, the OpenAI-compatible / TGI client, in-process
transformers and vLLM, the managed llama.cpp server, the call cache and the `Runtime` stages share, and
the client of a served policy (`policy_client`: the Responding Prompt, streaming, readiness).

Import the heavy parts from their modules (`hub_tools.serving.runtime`, `...llama_server`); this
package only re-exports the small interface.
"""

from .base import (
           Backend,
           BackendError,
           ChatRequest,
           Completion,
           Health,
           available_backends,
           in_process,
           make_backend,
           register_backend,
)

__all__ = ["Backend", "BackendError", "ChatRequest", "Completion", "Health", "available_backends", "in_process", "make_backend",
           "register_backend"]
