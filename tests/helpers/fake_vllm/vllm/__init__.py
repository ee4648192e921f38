"""A CPU stand-in for vLLM (>= 0.12) implementing exactly the documented offline API the toolkit uses:
`LLM(model, **engine_args)`, `LLM.chat(messages, sampling_params=None, use_tqdm=True, ...)` taking one
conversation or a list of them and one `SamplingParams` or a list of the same length, returning one
`RequestOutput` per conversation with `n` `CompletionOutput`s; `SamplingParams` (a closed set of fields: an
unknown one such as the removed `guided_decoding` is a TypeError, as in vLLM) and
`sampling_params.StructuredOutputsParams`. Every `LLM` and every `chat` call is recorded in `LLM.instances`
and `LLM.calls`, so tests can count engine calls and check the parameters sent; with FAKE_VLLM_LOG set, also
in that file (`record`), for tests whose engines live in other processes.

Answers are deterministic: the text names the conversation's last message, the seed and the sample index;
with `structured_outputs.json` the text is a JSON value of that schema.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

from .sampling_params import SamplingParams, StructuredOutputsParams

__all__ = ["LLM", "CompletionOutput", "RequestOutput", "SamplingParams", "StructuredOutputsParams"]


@dataclass
class CompletionOutput:
    index: int
    text: str
    token_ids: list[int]
    cumulative_logprob: float | None = None
    logprobs: Any = None
    finish_reason: str | None = None
    stop_reason: int | str | None = None


@dataclass
class RequestOutput:
    request_id: str
    prompt: str | None
    prompt_token_ids: list[int] | None
    prompt_logprobs: Any
    outputs: list[CompletionOutput]
    finished: bool = True


def instance(schema: dict) -> Any:
    """A small JSON value of `schema` (objects, arrays, enums, integers, strings)."""
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object":
        return {k: instance(v) for k, v in schema.get("properties", {}).items()}
    if kind == "array":
        if "prefixItems" in schema:
            return [instance(s) for s in schema["prefixItems"]]
        return [instance(schema["items"]) for _ in range(schema.get("minItems", 1))]
    if kind == "integer":
        return schema.get("maximum", 1)
    return "ok"


def record(event: str, **facts: Any) -> None:
    """With FAKE_VLLM_LOG set (tests of several processes): one JSON line per engine built and per chat call,
    with the process ids and the CUDA_VISIBLE_DEVICES it saw."""
    path = os.environ.get("FAKE_VLLM_LOG")
    if path:
        line = {"event": event, "pid": os.getpid(), "ppid": os.getppid(),
                "devices": os.environ.get("CUDA_VISIBLE_DEVICES"), **facts}
        with open(path, "a") as f:
            f.write(json.dumps(line) + "\n")


class LLM:
    instances: list[LLM] = []  # every engine built (reset by the tests)
    calls: list[dict] = []  # every chat call: {"llm", "conversations", "sampling_params"}

    def __init__(self, model: str, **engine_args: Any):
        self.model, self.engine_args = model, engine_args
        LLM.instances.append(self)
        record("engine", model=model, engine_args=engine_args)

    def chat(self, messages, sampling_params=None, use_tqdm=True, lora_request=None, chat_template=None,
             chat_template_content_format="auto", add_generation_prompt=True, continue_final_message=False,
             tools=None, chat_template_kwargs=None, mm_processor_kwargs=None) -> list[RequestOutput]:
        conversations = messages if messages and isinstance(messages[0], list) else [messages]
        if sampling_params is None:
            sampling_params = SamplingParams()
        params = sampling_params if isinstance(sampling_params, list) else [sampling_params] * len(conversations)
        if len(params) != len(conversations):
            raise ValueError("The lengths of prompts and sampling_params must be the same.")
        LLM.calls.append({"llm": self, "conversations": conversations, "sampling_params": params})
        record("chat", last=[c[-1]["content"] for c in conversations])
        outputs = []
        for r, (conv, sp) in enumerate(zip(conversations, params)):
            prompt_ids = list(range(sum(len(m["content"].split()) for m in conv)))
            gens = []
            for k in range(sp.n):
                if sp.structured_outputs is not None and sp.structured_outputs.json is not None:
                    schema = sp.structured_outputs.json
                    text = json.dumps(instance(json.loads(schema) if isinstance(schema, str) else schema))
                else:
                    text = f"reply to [{conv[-1]['content'][-24:]}] system={conv[0]['content'][:12] if conv[0]['role'] == 'system' else '-'} seed={sp.seed} k={k}"
                ids = list(range(min(sp.max_tokens or 16, len(text.split()))))
                gens.append(CompletionOutput(k, text, ids, finish_reason="stop"))
            outputs.append(RequestOutput(str(len(LLM.calls)) + f"-{r}", None, prompt_ids, None, gens))
        return outputs

