"""A tiny random Llama saved like a Hub repo (config, safetensors, tokenizer with a chat template), for
tests that need a real transformers model offline: 2 layers, hidden 32, a word-level vocabulary."""

from __future__ import annotations

from pathlib import Path

SPECIALS = ["<pad>", "<s>", "</s>", "<unk>", "<user>", "<assistant>", "<system>"]  # ids 0-6: pad, bos, eos, ...
CHAT_TEMPLATE = ("{% for m in messages %}<{{ m['role'] }}> {{ m['content'] }} </s> {% endfor %}"
                 "{% if add_generation_prompt %}<assistant> {% endif %}")


def save_tiny_llama(path: Path, words: list[str] | None = None, corpus: list[str] | None = None, seed: int = 0,
                    hidden_size: int = 32) -> Path:
    """Save a causal-LM Llama to `path`. The tokenizer's vocabulary is SPECIALS + `words`, or is trained
    on `corpus` (a word-level tokenizer learnt on the fly). `hidden_size` 64 or more where bitsandbytes' CPU
    inference path runs a 4-bit model (it packs weights in blocks of 64 input features)."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    if corpus is not None:
        tok = Tokenizer(models.WordLevel(unk_token="<unk>"))
        tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
        tok.train_from_iterator(corpus, trainers.WordLevelTrainer(special_tokens=SPECIALS))
    else:
        tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(SPECIALS + list(words or []))}, unk_token="<unk>"))
        tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>",
                                   unk_token="<unk>")
    fast.chat_template = CHAT_TEMPLATE
    torch.manual_seed(seed)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=tok.get_vocab_size(), hidden_size=hidden_size, intermediate_size=2 * hidden_size,
                                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                                         max_position_embeddings=256, pad_token_id=0, bos_token_id=1, eos_token_id=2))
    model.save_pretrained(path)
    fast.save_pretrained(path)
    return Path(path)


def save_tiny_reward_model(path: Path, corpus: list[str], chat_template: str, seed: int = 0) -> Path:
    """Save a random one-output LlamaForSequenceClassification with its own chat template to `path`, as an
    off-the-shelf reward model repo is (config with pad_token_id, safetensors, tokenizer)."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForSequenceClassification, PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.train_from_iterator(corpus, trainers.WordLevelTrainer(special_tokens=SPECIALS))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>",
                                   unk_token="<unk>")
    fast.chat_template = chat_template
    torch.manual_seed(seed)
    model = LlamaForSequenceClassification(LlamaConfig(
        vocab_size=tok.get_vocab_size(), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256, pad_token_id=0, bos_token_id=1,
        eos_token_id=2, num_labels=1))
    model.save_pretrained(path)
    fast.save_pretrained(path)
    return Path(path)
