"""The policy commands:

    psycopref policy dpo RECIPE [--training.beta 0.1 ...]   offline DPO on the train pairs -> <work_dir>/policy_model
    psycopref policy dpo-iter RECIPE [...]                  iterative DPO with a reward model (resumable rounds)
        [--phases [--train-launcher CMD] | --phase P --round K]   ... as separate processes per phase (policy.phases)
    psycopref policy eval RECIPE [...]                      win rates against a reference model (paper Table 2)
    psycopref policy push RECIPE [--hub-dir DIR | --hub]    publish the policy folder

Several GPUs: `accelerate launch --config_file recipes/accelerate/<config>.yaml -m hub_tools.cli policy dpo RECIPE`.
The old names (`train-dpo`, `train-dpo-iter`, `eval-policy`, `push-policy`) still work for one release.
"""

from __future__ import annotations

import argparse

from ..commands import apply_target_flags, group, rename
from ..config import load_any, parse_overrides
from ..hub.push import report


def _cmd(args, extra: list[str]) -> int:
    overrides = parse_overrides(extra)
    if args.verb == "push":
        from .artifact import push_policy

        recipe = load_any(args.recipe, overrides)  # dpo or dpo-iter: its method folder says which
        apply_target_flags(recipe.push, args)
        print(report(push_policy(recipe)))
    elif args.verb == "eval":
        from .winrate.evaluate import evaluate_policies

        out = evaluate_policies(load_any(args.recipe, overrides, kind="eval"))
        print(out.markdown)
        print(f"results: {out.json_path}, {out.markdown_path}, {out.figure_path}")
    elif args.verb == "dpo":
        from .train import train_dpo

        print(train_dpo(load_any(args.recipe, overrides, kind="dpo")))
    elif args.phase is not None:  # one phase of one round, in this process (a cluster script's step)
        from .phases import run_phase

        run_phase(load_any(args.recipe, overrides, kind="dpo-iter"), args.phase, args.round, args.shard)
    elif args.phases:
        from .phases import run_phases

        print(run_phases(load_any(args.recipe, overrides, kind="dpo-iter"), args.train_launcher))
    else:
        from .iterate import train_dpo_iter

        print(train_dpo_iter(load_any(args.recipe, overrides, kind="dpo-iter")))
    return 0


def _shard(text: str) -> tuple[int, int]:
    i, _, n = text.partition("/")
    if not (i.isdigit() and n.isdigit() and int(i) < int(n)):
        raise argparse.ArgumentTypeError(f"{text!r} is not I/N with 0 <= I < N")
    return int(i), int(n)


def add_cli(sub) -> None:
    policy = group(sub, "policy", "DPO and DPO-Iter policies and their win rates (paper §4.2)")
    policy.recipe_verb("dpo", "offline DPO (TRL DPOTrainer, beta 0.1) on the preference pairs",
                       _cmd, "DPO recipe YAML (recipes/<model>/dpo/config_*.yaml)")
    it = policy.recipe_verb("dpo-iter", "iterative DPO: sample, score with a reward model, train", _cmd,
                            "DPO-Iter recipe YAML (recipes/<model>/dpo-iter/config_*.yaml)")
    it.add_argument("--phases", action="store_true", help="run each round's phases (generate, score, train, evaluate) "
                    "as separate processes that hand the GPUs over in turn")
    it.add_argument("--train-launcher", default=None, help="with --phases: command prefix for the train phase, e.g. "
                    "'accelerate launch --config_file recipes/accelerate/deepspeed_zero3.yaml --num_processes 8'")
    it.add_argument("--phase", choices=("generate", "score", "train", "evaluate"), default=None,
                    help="run one phase of one round (--round) in this process, e.g. from a cluster script")
    it.add_argument("--round", type=int, default=1, help="with --phase: the round (0: evaluate the starting policy)")
    it.add_argument("--shard", type=_shard, default=None, metavar="I/N", help="with --phase generate or score: run as "
                    "its data-parallel worker I of N (the phase starts its workers itself)")
    policy.recipe_verb("eval", "win rates against a reference model (paper Table 2)", _cmd, "eval recipe YAML (recipes/<model>/eval/config_*.yaml)")
    policy.recipe_verb("push", "publish a policy folder (Hub or local mirror)", _cmd,
                       "policy recipe YAML (recipes/<model>/dpo/ or dpo-iter/config_*.yaml)", push=True)
    for old, verb in (("train-dpo", "dpo"), ("train-dpo-iter", "dpo-iter"), ("eval-policy", "eval"), ("push-policy", "push")):
        rename(old, "policy", verb)
