"""The base model as a reward model: its tokenizer (chat template, pad token) and
`AutoModelForSequenceClassification` with one label, for training (4-bit for QLoRA) or for saving."""

from __future__ import annotations

from typing import Any

from ..config import RecipeError
from .config import RewardRecipe

PAD_CANDIDATES = ("<|finetune_right_pad_id|>", "<|pad|>", "<pad>")  # a dedicated pad token when the base has one


def load_tokenizer(path: str):
    """The base model's tokenizer with a chat template and a pad token (a dedicated one if the vocabulary
    has one, else EOS, as TRL does)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path)
    if not tokenizer.chat_template:
        raise RecipeError(f"model.name_or_path: {path} has no chat template; a reward model scores conversations")
    if tokenizer.pad_token is None:
        vocab = tokenizer.get_vocab()
        tokenizer.pad_token = next((t for t in PAD_CANDIDATES if t in vocab), tokenizer.eos_token)
    return tokenizer


def load_reward_model(recipe: RewardRecipe, path: str, pad_token_id: int, *, for_training: bool = True):
    """`AutoModelForSequenceClassification` with one label on the base at `path` (4-bit when the recipe
    says nf4 and `for_training`), its pad token set so the reward is read at the last real token."""
    import torch
    from transformers import AutoModelForSequenceClassification, BitsAndBytesConfig
    from trl.trainer.reward_trainer import suppress_seqcls_warning  # the new `score` head is expected

    m = recipe.model
    dtype = getattr(torch, m.dtype if for_training else m.save_dtype)
    kwargs: dict[str, Any] = {"num_labels": 1, "dtype": dtype, "pad_token_id": pad_token_id}
    if m.attn_implementation:
        kwargs["attn_implementation"] = m.attn_implementation
    if m.quantization and for_training:
        from accelerate import PartialState

        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type=m.quantization, bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=dtype)
        kwargs["device_map"] = {"": PartialState().local_process_index} if torch.cuda.is_available() else "cpu"
    with suppress_seqcls_warning():
        return AutoModelForSequenceClassification.from_pretrained(path, **kwargs)
