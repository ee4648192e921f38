"""The dataset build: its recipe schema, and the wiring of recipe sections to the stages, in order.

Each stage is a function of its own config section, a work folder and a `Runtime`; this module is the
only place that knows a whole dataset recipe. It opens one Runtime for the endpoints of the stages
being run, runs them in pipeline order, and saves the resolved recipe and the run log in the work dir.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator, model_validator

from ..config import (
    Endpoint,
    HubTarget,
    RecipeError,
    ServerConfig,
    Strict,
    load_any,
    public_dump,
    save_resolved,
    validate,
)
from ..generate.config import GenerateConfig
from ..io import run_log
from ..judge.config import JudgeConfig
from ..pairs.config import PairsConfig
from ..registry import Registry
from ..serving.runtime import Runtime
from ..speeches.config import SpeechesConfig
from .config import DatasetConfig

log = logging.getLogger("psycopref")

JUDGED_RESPONSES = 4  # the Rating Prompt shows four responses (paper Appendix A)
MOVED = {("dataset", "scrub"): "pairs.scrub", ("dataset", "keep_toll_free"): "pairs.keep_toll_free"}


class Recipe(Strict):
    """A whole dataset build. Sections are optional so a recipe names only the stages it runs."""

    work_dir: str = Field("runs/psycopref", description="Where every stage writes its outputs, caches and logs.")
    seed: int = Field(42, ge=0, lt=2**32, description="Seed for member sampling, subsets, the split and judge shuffles.")
    stages: list[str] = Field(default_factory=lambda: ["speeches", "generate", "judge"], description="Stages `psycopref dataset run` executes, in pipeline order: speeches, generate, judge, pairs, dataset, push, and any registered stage (`STAGES`).")
    server: ServerConfig | None = Field(None, description="Managed llama.cpp server for endpoints with base_url 'managed'.")
    speeches: SpeechesConfig = Field(default_factory=SpeechesConfig, description="Stage 1: client speeches.")
    generate: GenerateConfig | None = Field(None, description="Stage 2: model-pool responses.")
    judge: JudgeConfig | None = Field(None, description="Stage 3: principle ratings.")
    pairs: PairsConfig = Field(default_factory=PairsConfig, description="Stage 4: privacy scrub, train/test split and preference pairs.")
    dataset: DatasetConfig = Field(default_factory=DatasetConfig, description="Stage 5: the dataset repository folder and card.")
    push: HubTarget = Field(default_factory=HubTarget, description="Stage 6: where the dataset folder is published.")

    @model_validator(mode="before")
    @classmethod
    def _moved_keys(cls, data: Any) -> Any:
        for (section, key), new in MOVED.items():
            if isinstance(data, dict) and isinstance(data.get(section), dict) and key in data[section]:
                raise ValueError(f"{section}.{key} has moved to {new}")
        return data

    @field_validator("stages")
    @classmethod
    def _registered(cls, stages: list[str]) -> list[str]:
        for name in stages:
            STAGES.get(name)  # an unknown stage: an error listing the registered ones
        return stages

    @property
    def work_path(self) -> Path:
        return Path(self.work_dir)

    @property
    def repo_id(self) -> str:
        """The dataset repo this build publishes (and its card names)."""
        return self.dataset.repo_id


def validate_recipe(data: dict[str, Any], source: str = "<recipe>") -> Recipe:
    """A dataset recipe from a mapping; errors name the source and the key."""
    return validate(Recipe, data, source)


def load_recipe(path: str | Path, overrides: dict[str, Any] | None = None) -> Recipe:
    """A dataset recipe from a YAML file, with CLI overrides merged in (`config.load_any` of kind dataset)."""
    return load_any(path, overrides, kind="dataset")


def _section(recipe: Recipe, name: str):
    cfg = getattr(recipe, name)
    if cfg is None:
        raise RecipeError(f"the recipe has no `{name}` section")
    return cfg


@dataclass(frozen=True)
class Stage:
    """How the pipeline runs one stage: its call from the recipe, the endpoints it will call, where it runs
    among the stages a recipe names, its command, and what it needs from the recipe beyond its own section's
    schema (checked before any stage of a run starts). Register one in `STAGES` and a recipe may name it."""

    run: Callable[[Recipe, Runtime], Any]
    endpoints: Callable[[Recipe], list[Endpoint]] = lambda recipe: []
    order: int = 100  # place in the run order: the built-ins run at 10 (speeches) ... 60 (push)
    help: str = "a registered stage"  # its command's one line under `psycopref dataset`
    verb: str | None = None  # its command under `psycopref dataset` (default: the stage's name)
    check: Callable[[Recipe], Any] = lambda recipe: None  # raises RecipeError before any stage of the run starts


STAGES: Registry[Stage] = Registry("stage", RecipeError)  # name -> Stage; drives the run order and the commands


def stage_order(names: Iterable[str] | None = None) -> list[str]:
    """`names` (default: every registered stage) in the order they run: by `order`, then by registration."""
    registered = list(STAGES)
    chosen = registered if names is None else [n for n in registered if n in set(names)]
    return sorted(chosen, key=lambda n: (STAGES.get(n).order, registered.index(n)))


def _speeches(r: Recipe, rt: Runtime):
    from ..speeches.stage import run_speeches

    return run_speeches(r.speeches, r.work_dir, rt)


def _generate(r: Recipe, rt: Runtime):
    from ..generate.stage import run_generate

    return run_generate(_section(r, "generate"), r.work_dir, rt, seed=r.seed)


def _check_generate(r: Recipe) -> None:
    gen = _section(r, "generate")
    if gen.members_per_speech > len(gen.pool):
        raise RecipeError(f"generate.members_per_speech={gen.members_per_speech} but the pool has only "
                          f"{len(gen.pool)} members")


def _check_judge(r: Recipe) -> None:
    _section(r, "judge")
    gen = r.generate
    if gen and gen.members_per_speech * gen.samples_per_member != JUDGED_RESPONSES:
        raise RecipeError(f"generate.members_per_speech must be {JUDGED_RESPONSES} (times samples_per_member) for "
                          f"the judge's Rating Prompt, got {gen.members_per_speech} x {gen.samples_per_member}")


def _judge(r: Recipe, rt: Runtime):
    from ..judge.stage import run_judge

    return run_judge(_section(r, "judge"), r.work_dir, rt, seed=r.seed)


def _pairs(r: Recipe, rt: Runtime):
    from ..pairs.stage import run_pairs

    return run_pairs(r.pairs, r.work_dir, seed=r.seed)


def _dataset(r: Recipe, rt: Runtime):
    from ..hub.portable import scrub
    from .stage import run_dataset

    published = public_dump(r)
    published["push"]["hub_dir"] = None  # the folder is published: reproduced elsewhere, it goes to the Hub
    return run_dataset(r.dataset, r.work_dir, recipe=scrub(published))  # no path of this machine


def _push(r: Recipe, rt: Runtime):
    from .stage import run_push

    return run_push(r.push, r.work_dir, r.dataset.repo_id)


STAGES.register("speeches")(Stage(_speeches, lambda r: [r.speeches.classifier] if r.speeches.classifier else [], 10,
                                   "collect client speeches: clean, de-duplicate, label topics"))
STAGES.register("generate")(Stage(_generate, lambda r: list(r.generate.pool) if r.generate else [], 20,
                                   "the model pool answers each speech (Responding Prompt)", check=_check_generate))
STAGES.register("judge")(Stage(_judge, lambda r: [r.judge.endpoint] if r.judge else [], 30,
                                "rate every answer on the seven principles (Rating Prompt)", check=_check_judge))
STAGES.register("pairs")(Stage(_pairs, order=40, help="privacy scrub, split by speech, preference pairs"))
STAGES.register("dataset")(Stage(_dataset, order=50, verb="build",
                                 help="the dataset repo folder: parquet configs, figures, card"))
STAGES.register("push")(Stage(_push, order=60, help="publish the dataset folder (Hub or local mirror)"))


def run_stages(recipe: Recipe, stages: list[str]) -> dict[str, object]:
    """Run `stages` (in pipeline order); returns each stage's output. Saves the resolved recipe first."""
    unknown = [s for s in stages if s not in STAGES]
    if unknown:
        raise RecipeError(f"unknown stage(s) {unknown}; known: {', '.join(stage_order())}")
    ordered = stage_order(stages)
    for name in ordered:  # a recipe mistake stops the run before any stage starts (or is paid for)
        STAGES.get(name).check(recipe)
    save_resolved(recipe, recipe.work_path / "recipe.resolved.yaml")
    endpoints = [e for name in ordered for e in STAGES.get(name).endpoints(recipe)]
    outputs = {}
    with run_log(recipe.work_dir), Runtime(recipe.work_dir, endpoints, recipe.server) as rt:
        for name in ordered:
            log.info("== stage %s ==", name)
            outputs[name] = STAGES.get(name).run(recipe, rt)
    return outputs


def build_dataset(recipe: Recipe) -> dict[str, object]:
    """The dataset's repo folder, built by every stage but the push (what a release builds when it is missing)."""
    return run_stages(recipe, [s for s in stage_order() if s != "push"])


def launch_command(recipe: Recipe, recipe_path: str) -> str:
    """How a release (or a person) builds this recipe's dataset folder."""
    return f"psycopref dataset run {recipe_path}"
