"""Backend registry and the in-process transformers backend (tiny random model built offline)."""

from __future__ import annotations

import pytest

from hub_tools.config import Endpoint
from hub_tools.serving import BackendError, available_backends, make_backend
from hub_tools.serving.openai_compat import _structured

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

CHAT_TEMPLATE = ("{% for m in messages %}<{{ m['role'] }}> {{ m['content'] }} </s> {% endfor %}"
                 "{% if add_generation_prompt %}<assistant> {% endif %}")


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory):
    """A 2-layer random Llama with a word-level tokenizer and a chat template, saved like a Hub repo."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    words = ["<pad>", "<s>", "</s>", "<unk>", "<user>", "<assistant>", "<system>"] + \
            "i feel sad and alone today you are not hello tell me more about it".split()
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>",
                                   unk_token="<unk>")
    fast.chat_template = CHAT_TEMPLATE
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=len(words), hidden_size=32, intermediate_size=64,
                                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                                         max_position_embeddings=128, pad_token_id=0, bos_token_id=1, eos_token_id=2))
    path = tmp_path_factory.mktemp("tiny-llama")
    model.save_pretrained(path)
    fast.save_pretrained(path)
    return path


def test_registry_lists_every_backend():
    assert {"openai", "tgi", "vllm-server", "llamacpp", "transformers", "vllm"} <= set(available_backends())
    with pytest.raises(BackendError, match="unknown backend 'nope'"):
        make_backend(Endpoint(backend="nope", model="m"))


def test_structured_output_dialects():
    schema = {"type": "object"}
    assert _structured("llamacpp", schema) == {"extra_body": {"json_schema": schema}}
    assert _structured("vllm-server", schema) == {"extra_body": {"structured_outputs": {"json": schema}}}
    assert _structured("tgi", schema)["response_format"]["json_schema"]["schema"] == schema
    assert _structured("openai", schema) == {"response_format": {"type": "json_object"}}


def test_managed_without_server_is_an_error():
    with pytest.raises(BackendError, match="starts no server"):
        make_backend(Endpoint(backend="llamacpp", model="m", base_url="managed"))


def test_transformers_backend_generates_with_usage(tiny_model_dir):
    backend = make_backend(Endpoint(backend="transformers", model=str(tiny_model_dir)))
    assert backend.supports_json_schema is False
    msgs = [{"role": "user", "content": "i feel sad and alone today"}]
    out = backend.chat(msgs, {"max_tokens": 5, "temperature": 0.0})
    ids = backend.tokenizer.apply_chat_template(msgs, add_generation_prompt=True, return_dict=True)["input_ids"]
    assert out.prompt_tokens == len(ids)
    assert 1 <= out.completion_tokens <= 5
    again = backend.chat(msgs, {"max_tokens": 5, "temperature": 0.0})
    assert again.text == out.text  # greedy decoding is deterministic
    a = backend.chat(msgs, {"max_tokens": 5, "temperature": 1.0, "seed": 3})
    b = backend.chat(msgs, {"max_tokens": 5, "temperature": 1.0, "seed": 3})
    assert a.text == b.text  # a seed makes sampling reproducible


def test_transformers_backend_rejects_unknown_model():
    with pytest.raises(BackendError, match="neither a folder"):
        make_backend(Endpoint(backend="transformers", model="not-a-model"))


def test_vllm_backend_explains_missing_extra(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "vllm", None)  # as on CPU machines, where the GPU extra is absent
    with pytest.raises(BackendError, match=r"psycopref\[vllm\]"):
        make_backend(Endpoint(backend="vllm", model="m"))


def test_transformers_backend_batches_concurrent_requests(tiny_model_dir):
    """Requests in flight together share one left-padded generate, and each gets its own answer: the same
    greedy text (and token counts) as when asked alone."""
    from concurrent.futures import ThreadPoolExecutor

    backend = make_backend(Endpoint(backend="transformers", model=str(tiny_model_dir)))
    prompts = ["i feel sad", "you are not alone today", "tell me more about it and how you feel", "hello"]
    params = {"max_tokens": 6, "temperature": 0.0}
    alone = [backend.chat([{"role": "user", "content": p}], params) for p in prompts]
    calls = []
    real = backend.model.generate

    def counting(*args, **kwargs):
        calls.append(kwargs["input_ids"].shape[0])
        return real(*args, **kwargs)

    backend.model.generate = counting
    with ThreadPoolExecutor(4) as pool:
        together = list(pool.map(lambda p: backend.chat([{"role": "user", "content": p}], params), prompts))
    assert len(calls) < len(prompts) and max(calls) > 1  # at least one batch answered several requests
    assert [c.text for c in together] == [c.text for c in alone]
    assert [(c.prompt_tokens, c.completion_tokens) for c in together] == [(c.prompt_tokens, c.completion_tokens) for c in alone]
    different = backend.chat([{"role": "user", "content": "hello"}], {"max_tokens": 3, "temperature": 0.0})
    assert different.completion_tokens <= 3  # other settings: their own generate call
