"""The reward-model commands:

    psycopref train-reward RECIPE [--training.learning_rate 1e-5 ...]   train; build <work_dir>/reward_model
    psycopref eval-reward RECIPE [...]                                   test metrics, figure and card into it
    psycopref push-reward RECIPE [--hub-dir DIR | --hub]                 publish the folder

Several GPUs: `accelerate launch --config_file recipes/accelerate/<config>.yaml -m hub_tools.cli train-reward RECIPE`.
"""

from __future__ import annotations

from ..config import load, parse_overrides


def load_reward_recipe(path, overrides=None):
    from .config import RewardRecipe

    return load(RewardRecipe, path, overrides)


def _cmd(args, extra: list[str]) -> int:
    recipe = load_reward_recipe(args.recipe, parse_overrides(extra))
    if args.command == "train-reward":
        from .train import train_reward

        print(train_reward(recipe))
    elif args.command == "eval-reward":
        from .evaluate import evaluate_reward

        t = evaluate_reward(recipe)["test"]
        print(f"{t['n_pairs']} test pairs: accuracy {t['accuracy']:.3f}, ROC AUC {t['roc_auc']}, "
              f"ECE {t['ece']:.3f}, Brier {t['brier']:.3f} -> {recipe.model_dir}")
    else:
        if args.hub_dir is not None:
            recipe.push.hub_dir = args.hub_dir
        if args.hub:
            recipe.push.hub_dir = None
        from .artifact import push_reward

        result = push_reward(recipe)
        print(f"{'pushed' if result.changed else 'unchanged'}: {result.url} ({result.commit_id})")
    return 0


def add_cli(sub) -> None:
    helps = {"train-reward": "train a Bradley-Terry reward model (TRL RewardTrainer) and build its repo folder",
             "eval-reward": "accuracy, ROC AUC, ECE, Brier, calibration and baselines on the test pairs, into the card",
             "push-reward": "publish the reward model folder to the Hub or a local mirror"}
    for name, text in helps.items():
        p = sub.add_parser(name, help=text)
        p.add_argument("recipe", help="reward recipe YAML (recipes/<model>/reward/config_*.yaml)")
        if name == "push-reward":
            p.add_argument("--hub-dir", default=None, help="publish into this local Hub mirror instead")
            p.add_argument("--hub", action="store_true", help="publish to the Hub (HF_ENDPOINT, token from HF_TOKEN / hf auth login)")
        p.set_defaults(func=_cmd, overrides=True)
