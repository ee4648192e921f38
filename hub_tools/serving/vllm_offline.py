"""Offline batched generation with vLLM on GPU machines (optional extra `psycopref[vllm]`, vLLM >= 0.12).

For servers (vLLM's OpenAI-compatible server, TGI) use the `openai`/`vllm-server` backends instead; this
one loads the model in-process. vLLM's throughput comes from batching, so this backend `batches`: a stage
hands it all its uncached calls and `chat_many` sends them to the engine in one `LLM.chat(conversations,
sampling_params=[...])` call; identical unseeded requests (several samples of one prompt) become one
request with `n` samples. One engine over several GPUs is vLLM's job (`tensor_parallel_size` in params);
several engines (data parallel) are processes of their own sharing the call cache (DPO-Iter's generate workers).
Structured output uses vLLM's current API, `SamplingParams(structured_outputs=StructuredOutputsParams(json=
schema))` (the `guided_decoding` field it replaces was removed in vLLM 0.12).
"""

from __future__ import annotations

import json
import threading
from typing import Any

from .base import Backend, BackendError, ChatRequest, Completion

# Engine settings read from the endpoint's params (the rest of params are sampling settings).
ENGINE_KEYS = ("tensor_parallel_size", "pipeline_parallel_size", "gpu_memory_utilization", "max_model_len", "dtype",
               "quantization", "max_num_seqs", "enable_prefix_caching", "enforce_eager")
SAMPLING_KEYS = ("temperature", "top_p", "top_k", "min_p", "seed", "stop", "repetition_penalty",
                 "presence_penalty", "frequency_penalty")


class VLLMBackend(Backend):
    name = "vllm"
    supports_json_schema = True
    in_process = True
    batches = True

    def __init__(self, endpoint, managed_url: str | None = None):
        super().__init__(endpoint, managed_url)
        try:
            from vllm import LLM
        except ImportError:
            raise BackendError("backend 'vllm' needs vLLM on a GPU machine: pip install 'psycopref[vllm]'") from None
        engine = {k: endpoint.params[k] for k in ENGINE_KEYS if k in endpoint.params}
        self.llm = LLM(model=endpoint.model, **engine)
        self._lock = threading.Lock()  # one engine: calls from several threads take turns (each is a batch)

    @staticmethod
    def sampling(params: dict[str, Any], json_schema: dict | None = None, n: int = 1):
        """vLLM `SamplingParams` for one request: `n` samples, JSON constrained to `json_schema` if given."""
        from vllm import SamplingParams

        sampling = {k: v for k, v in params.items() if k in SAMPLING_KEYS}
        sampling["max_tokens"] = int(params.get("max_tokens", 256))
        if n > 1:
            sampling["n"] = n
        if json_schema is not None:
            from vllm.sampling_params import StructuredOutputsParams

            sampling["structured_outputs"] = StructuredOutputsParams(json=json_schema)
        return SamplingParams(**sampling)

    def chat(self, messages: list[dict], params: dict[str, Any], json_schema: dict | None = None) -> Completion:
        return self.chat_many([ChatRequest(messages, params, json_schema)])[0]

    def chat_many(self, requests: list[ChatRequest]) -> list[Completion]:
        """All `requests` in one engine call; several identical unseeded requests are one request with `n`."""
        groups: dict[str, list[int]] = {}
        for i, r in enumerate(requests):
            same = json.dumps([r.messages, r.params, r.json_schema], sort_keys=True, default=str)
            groups.setdefault(same if "seed" not in r.params else f"{i}", []).append(i)
        firsts = [requests[idx[0]] for idx in groups.values()]
        conversations = [r.messages for r in firsts]
        sampling = [self.sampling(r.params, r.json_schema, len(idx)) for r, idx in zip(firsts, groups.values())]
        with self._lock:
            if self.llm is None:
                raise BackendError(f"{self.label} was closed")
            try:
                outputs = self.llm.chat(conversations, sampling_params=sampling, use_tqdm=False)
            except (RuntimeError, ValueError) as err:  # CUDA out of memory, a prompt over max_model_len, ...
                raise BackendError(f"{self.label}: the engine failed on a batch of {len(conversations)} "
                                   f"requests: {type(err).__name__}: {err}") from err
        if len(outputs) != len(conversations):
            raise BackendError(f"{self.label} answered {len(outputs)} of {len(conversations)} requests")
        done: list[Completion | None] = [None] * len(requests)
        for idx, out in zip(groups.values(), outputs):
            if len(out.outputs) != len(idx):
                raise BackendError(f"{self.label} returned {len(out.outputs)} of {len(idx)} samples of a request")
            for i, gen in zip(idx, out.outputs):
                done[i] = Completion(gen.text, len(out.prompt_token_ids or ()), len(gen.token_ids), gen.finish_reason)
        return done  # type: ignore[return-value]

    def close(self) -> None:
        self.llm = None
