"""The dataset's commands, one per stage (in the order they run) plus `run`:

    psycopref dataset speeches RECIPE [--section.key value ...]   collect client speeches
    psycopref dataset generate RECIPE [...]                        model-pool responses
    psycopref dataset judge RECIPE [...]                           principle ratings
    psycopref dataset pairs RECIPE [...]                           privacy scrub, split, preference pairs
    psycopref dataset build RECIPE [...]                           the dataset repo folder with its card
    psycopref dataset push RECIPE [--hub-dir DIR | --hub]          publish the folder
    psycopref dataset run RECIPE [...]                             every stage the recipe names, in order

`build` runs the stage a recipe's `stages:` list calls `dataset` (its section is `dataset:` too). A stage
registered in `pipeline.STAGES` gets its command here too. The old top-level names (`psycopref
speeches`, ..., `psycopref push`, `psycopref run`, `psycopref dataset RECIPE`) still work for one release.
"""

from __future__ import annotations

from ..commands import DEFAULT_VERB, apply_target_flags, group, rename
from ..config import parse_overrides
from .pipeline import STAGES, load_recipe, run_stages, stage_order

RECIPE_HELP = "dataset recipe YAML (recipes/psycopref/dataset/config_*.yaml)"


def _cmd(args, extra: list[str]) -> int:
    recipe = load_recipe(args.recipe, parse_overrides(extra))
    stages = list(recipe.stages) if args.stage == "run" else [args.stage]
    if args.stage == "push":
        apply_target_flags(recipe.push, args)
    run_stages(recipe, stages)
    return 0


def add_cli(sub) -> None:
    """`psycopref dataset <stage>` for every registered stage, and `run` for every stage the recipe names."""
    dataset = group(sub, "dataset", "build the preference dataset stage by stage, and publish it")
    for name in stage_order():
        stage = STAGES.get(name)
        verb = stage.verb or name
        dataset.recipe_verb(verb, stage.help, _cmd, RECIPE_HELP, push=name == "push").set_defaults(stage=name)
        if name in ("speeches", "generate", "judge", "pairs", "push"):
            rename(name, "dataset", verb)
    dataset.recipe_verb("run", "every stage the recipe names, in order", _cmd, RECIPE_HELP).set_defaults(stage="run")
    rename("run", "dataset", "run")
    DEFAULT_VERB["dataset"] = "build"  # the old `psycopref dataset RECIPE`
