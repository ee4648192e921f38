"""What psycopref makes, in one table: every kind of recipe and, for the kinds that make a Hub artifact, its
repo type, its pushable folder, the step that builds it, the card writer and the command that builds it.

    recipes/<artifact>/<kind>/config_<variant>.yaml    is read by the schema of <kind>

`config.load_any` (which schema reads a recipe), the release (what it plans, builds, re-cards and pushes, in
this table's order), the demo (its steps and their recipes) and `psycopref estimate` read this table instead
of keeping lists of their own; a new kind registers with `register_kind`. Schemas and steps are named
"module:attribute" and imported when first used, so this module imports no area: it sits below them all.
The names every artifact shares (the organisation, the dataset's repo id, the recipe file in each folder)
are defined here too.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from .errors import RecipeError
from .registry import Registry

DEFAULT_ORG = "Psychotherapy-LLM"  # the paper's Hub organisation: owner of every default repo id
DATASET_ID = f"{DEFAULT_ORG}/PsyCoPref"  # the dataset repo a build publishes and models train on
DATASET_MIRROR = f"hub/datasets/{DATASET_ID}"  # ...in the default local Hub mirror (`push.hub_dir: hub`)
SPACE_NAME = "PsyCoPref-Space"  # the comparison Space's repo name
RECIPE_FILE = "recipe.yaml"  # the resolved recipe (as published) in every artifact folder


@dataclass(frozen=True)
class RecipeKind:
    """One kind of recipe (or, for the Space, of artifact without a recipe) and, when it makes a Hub artifact,
    how that artifact is built and published."""

    name: str  # the method folder of its recipes: recipes/<artifact>/<name>/config_*.yaml
    title: str  # how plans and cards name one ("reward model")
    schema: str | None  # "module:Class" reading its recipes; None: it has no recipe (the Space)
    repo_type: str | None = None  # Hub repo type of what it makes; None: it publishes nothing (eval, release)
    folder: str | None = None  # its pushable folder, under the recipe's work_dir
    build: str | None = None  # "module:function(recipe)": builds (and evaluates) that folder
    card: str | None = None  # "module:function(recipe, folder, repo_id)": (re)writes the folder's card
    command: str | None = None  # "module:function(recipe, recipe_path) -> str": the shell command(s) that build it
    demo: str | None = None  # its recipe in `psycopref demo`, under the packaged recipes/

    def load(self, part: str) -> Any:
        """The object one of the "module:attribute" fields names (`part`: schema, build, card or command)."""
        target = getattr(self, part)
        if target is None:
            raise RecipeError(f"a {self.title} has no {part}")
        module, attr = target.split(":")
        return getattr(importlib.import_module(module), attr)

    @property
    def publishes(self) -> bool:
        return self.repo_type is not None


KINDS: Registry[RecipeKind] = Registry("recipe kind", RecipeError)  # in pipeline order: the release pushes so


def register_kind(kind: RecipeKind) -> RecipeKind:
    """Make recipes under recipes/<artifact>/<kind.name>/ readable (and, with a repo type, releasable)."""
    return KINDS.register(kind.name)(kind)


def publishing_kinds() -> list[RecipeKind]:
    """The kinds that make a Hub artifact, in the order a release pushes them."""
    return [k for k in (KINDS.get(n) for n in KINDS) if k.publishes]


register_kind(RecipeKind(
    "dataset", "dataset", "hub_tools.dataset.pipeline:Recipe", "dataset", "dataset_repo",
    build="hub_tools.dataset.pipeline:build_dataset", command="hub_tools.dataset.pipeline:launch_command",
    demo="psycopref/dataset/config_demo.yaml"))
register_kind(RecipeKind(
    "reward", "reward model", "hub_tools.reward.config:RewardRecipe", "model", "reward_model",
    build="hub_tools.reward.train:build_reward", card="hub_tools.reward.card:write_card",
    command="hub_tools.reward.card:launch_command", demo="smollm2-135m-instruct/reward/config_demo.yaml"))
register_kind(RecipeKind(
    "dpo", "DPO policy", "hub_tools.policy.config:DPORecipe", "model", "policy_model",
    build="hub_tools.policy.train:train_dpo", card="hub_tools.policy.card:write_card",
    command="hub_tools.policy.card:launch_command", demo="smollm2-135m-instruct/dpo/config_demo.yaml"))
register_kind(RecipeKind(
    "dpo-iter", "DPO-Iter policy", "hub_tools.policy.config:DPOIterRecipe", "model", "policy_model",
    build="hub_tools.policy.iterate:train_dpo_iter", card="hub_tools.policy.card:write_card",
    command="hub_tools.policy.card:launch_command", demo="smollm2-135m-instruct/dpo-iter/config_demo.yaml"))
register_kind(RecipeKind(
    "eval", "win-rate evaluation", "hub_tools.policy.winrate.config:EvalRecipe",
    demo="smollm2-135m-instruct/eval/config_demo.yaml"))
register_kind(RecipeKind("release", "release", "hub_tools.release.plan:ReleaseRecipe"))
register_kind(RecipeKind("space", "Space", None, "space"))
