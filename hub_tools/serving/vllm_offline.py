"""Offline batched generation with vLLM on GPU machines (optional extra `psycopref[vllm]`).

For servers (vLLM's OpenAI-compatible server, TGI) use the `openai` backend instead; this one loads
the model in-process. Scaling past one GPU is vLLM's job (`tensor_parallel_size` in params).
"""

from __future__ import annotations

from typing import Any

from .base import Backend, BackendError, Completion

_ENGINE_KEYS = ("tensor_parallel_size", "gpu_memory_utilization", "max_model_len", "dtype")


class VLLMBackend(Backend):
    name = "vllm"
    supports_json_schema = True
    in_process = True

    def __init__(self, endpoint, managed_url: str | None = None):
        super().__init__(endpoint, managed_url)
        try:
            from vllm import LLM
        except ImportError:
            raise BackendError("backend 'vllm' needs vLLM on a GPU machine: pip install 'psycopref[vllm]'") from None
        engine = {k: endpoint.params[k] for k in _ENGINE_KEYS if k in endpoint.params}
        self.llm = LLM(model=endpoint.model, **engine)

    def chat(self, messages: list[dict], params: dict[str, Any], json_schema: dict | None = None) -> Completion:
        from vllm import SamplingParams

        sampling = {k: v for k, v in params.items() if k in ("temperature", "top_p", "top_k", "seed", "stop")}
        sampling["max_tokens"] = int(params.get("max_tokens", 256))
        if json_schema is not None:
            from vllm.sampling_params import GuidedDecodingParams

            sampling["guided_decoding"] = GuidedDecodingParams(json=json_schema)
        out = self.llm.chat(messages, SamplingParams(**sampling), use_tqdm=False)[0]
        gen = out.outputs[0]
        return Completion(gen.text, len(out.prompt_token_ids), len(gen.token_ids), gen.finish_reason)

    def close(self) -> None:
        self.llm = None
