"""The policy commands:

    psycopref train-dpo RECIPE [--training.beta 0.1 ...]   offline DPO on the train pairs -> <work_dir>/policy_model
    psycopref train-dpo-iter RECIPE [...]                  iterative DPO with a reward model (resumable rounds)
    psycopref push-policy RECIPE [--hub-dir DIR | --hub]   publish the policy folder

Several GPUs: `accelerate launch --config_file recipes/accelerate/<config>.yaml -m hub_tools.cli train-dpo RECIPE`.
Win rates: `psycopref eval-policy` (hub_tools.policy.winrate).
"""

from __future__ import annotations

from ..config import load_any, parse_overrides
from ..hub.push import add_recipe_commands, apply_target_flags, report

KINDS = {"train-dpo": "dpo", "train-dpo-iter": "dpo-iter"}


COMMANDS = {  # subcommand -> help
    "train-dpo": "offline DPO (TRL DPOTrainer, beta 0.1) on the preference pairs; builds the policy folder",
    "train-dpo-iter": "iterative DPO: sample K answers per speech, score with a reward model, DPO on best vs worst",
    "push-policy": "publish a policy folder to the Hub or a local mirror",
}


def _cmd(args, extra: list[str]) -> int:
    overrides = parse_overrides(extra)
    if args.command == "push-policy":
        from .artifact import push_policy

        recipe = load_any(args.recipe, overrides)
        apply_target_flags(recipe.push, args)
        print(report(push_policy(recipe)))
        return 0
    recipe = load_any(args.recipe, overrides, KINDS[args.command])
    if args.command == "train-dpo":
        from .train import train_dpo

        print(train_dpo(recipe))
    else:
        from .iterate import train_dpo_iter

        print(train_dpo_iter(recipe))
    return 0


def add_cli(sub) -> None:
    add_recipe_commands(sub, COMMANDS, "policy recipe YAML (recipes/<model>/dpo/ or dpo-iter/config_*.yaml)", _cmd, push="push-policy")
