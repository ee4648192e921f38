"""The policy as a causal LM: loaded for DPO training (4-bit for QLoRA) or, merged and unquantised, for
saving and answering."""

from __future__ import annotations

from ..training.modeling import model_kwargs
from ..training.sections import ModelSection


def load_policy_model(m: ModelSection, path: str, *, for_training: bool = True):
    """`AutoModelForCausalLM` at `path` (a folder or Hub id), as the model section asks."""
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(path, **model_kwargs(m, for_training=for_training))
