"""Loading a base model for training or for saving: its tokenizer (chat template, pad token), the
from_pretrained arguments a recipe's model section asks for (dtype, 4-bit NF4 for QLoRA), and merging
trained LoRA adapters back into the unquantised base so a repo loads like any model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from ..config import RecipeError
from ..io import write_json
from .sections import ModelSection

PAD_CANDIDATES = ("<|finetune_right_pad_id|>", "<|pad|>", "<pad>")  # a dedicated pad token when the base has one
ADAPTER_DIR = "adapter"  # where a model folder keeps the trained adapter itself


def load_tokenizer(path: str):
    """The base model's tokenizer with a chat template and a pad token (a dedicated one if the vocabulary
    has one, else EOS, as TRL does)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path)
    if not tokenizer.chat_template:
        raise RecipeError(f"model.name_or_path: {path} has no chat template; the model is trained on conversations")
    if tokenizer.pad_token is None:
        vocab = tokenizer.get_vocab()
        tokenizer.pad_token = next((t for t in PAD_CANDIDATES if t in vocab), tokenizer.eos_token)
    return tokenizer


def save_tokenizer(tokenizer, folder: Path) -> None:
    """`tokenizer.save_pretrained(folder)`, with the chat template in tokenizer_config.json as well as in
    chat_template.jinja: transformers 5 writes only the .jinja file, which TGI, older transformers and some vLLM
    versions do not read (they take `chat_template` from tokenizer_config.json)."""
    tokenizer.save_pretrained(folder)
    template = tokenizer.chat_template
    path = Path(folder) / "tokenizer_config.json"
    if isinstance(template, str) and path.is_file():
        config = json.loads(path.read_text(encoding="utf-8"))
        if config.get("chat_template") != template:
            write_json(path, {**config, "chat_template": template})


def model_kwargs(m: ModelSection, *, for_training: bool = True) -> dict[str, Any]:
    """`from_pretrained` keyword arguments: the training dtype (or the saving dtype), the attention kernel,
    and for QLoRA training the 4-bit NF4 quantization on the process's GPU (or the CPU)."""
    import torch

    dtype = getattr(torch, m.dtype if for_training else m.save_dtype)
    kwargs: dict[str, Any] = {"dtype": dtype}
    if m.attn_implementation:
        kwargs["attn_implementation"] = m.attn_implementation
    if m.quantization and for_training:
        from accelerate import PartialState
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type=m.quantization, bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=dtype)
        kwargs["device_map"] = {"": PartialState().local_process_index} if torch.cuda.is_available() else "cpu"
    return kwargs


def merge_adapter(base, adapter_dir: Path):
    """`base` (loaded unquantised) with the trained LoRA adapter at `adapter_dir` merged into its weights."""
    from peft import PeftModel

    return PeftModel.from_pretrained(base, str(adapter_dir)).merge_and_unload()


def copy_adapter(final: Path, dest: Path, base_hub_id: str) -> None:
    """The trained adapter, pointing at the base's Hub id instead of a local path."""
    dest.mkdir()
    for name in ("adapter_model.safetensors", "adapter_config.json"):
        shutil.copy2(final / name, dest / name)
    config = json.loads((dest / "adapter_config.json").read_text(encoding="utf-8"))
    config["base_model_name_or_path"] = base_hub_id
    write_json(dest / "adapter_config.json", config)
