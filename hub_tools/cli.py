"""`psycopref` command line: one subcommand per pipeline stage, each reading a recipe.

    psycopref speeches RECIPE [--section.key value ...]   collect client speeches
    psycopref generate RECIPE [...]                        model-pool responses
    psycopref judge RECIPE [...]                           principle ratings
    psycopref pairs RECIPE [...]                           split + preference pairs (+ privacy scrub)
    psycopref dataset RECIPE [...]                         the dataset repo folder with its card
    psycopref push RECIPE [--hub-dir DIR | --hub]          publish the folder
    psycopref run RECIPE [...]                             every stage the recipe names, in order
    psycopref demo [--work-dir DIR] [--hub-dir DIR]        the whole pipeline offline on the embedded default
    psycopref annotate export|score ...                    expert-validation sheets (paper §3.4)

Flags after the recipe override its keys (`--judge.mode per_principle`); unknown keys are an error.
Every stage resumes: finished model calls are cached in the work dir and never paid for twice.
"""

from __future__ import annotations

import argparse
import logging
import sys
from importlib import resources
from pathlib import Path

from .config import RecipeError, load_recipe, parse_overrides

log = logging.getLogger("psycopref")
STAGE_COMMANDS = ("speeches", "generate", "judge", "pairs", "dataset", "push")
DEMO_RECIPE = "psycopref/dataset/config_demo.yaml"


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S")
    for noisy in ("httpx", "httpx2", "huggingface_hub", "datasets", "urllib3", "filelock"):
        logging.getLogger(noisy).setLevel(logging.INFO if verbose else logging.WARNING)


def demo_recipe_path() -> Path:
    return Path(str(resources.files("hub_tools.recipes").joinpath(DEMO_RECIPE)))


def _stage_cmd(args, extra: list[str]) -> int:
    from .pipeline import run_stages

    overrides = parse_overrides(extra)
    recipe = load_recipe(args.recipe, overrides)
    stages = list(recipe.stages) if args.command == "run" else [args.command]
    if args.command == "push" and args.hub_dir is not None:
        recipe.push.hub_dir = args.hub_dir
    if args.command == "push" and args.hub:
        recipe.push.hub_dir = None
    run_stages(recipe, stages)
    return 0


def _demo(args, extra: list[str]) -> int:
    from .demo import run_demo

    return run_demo(work_dir=args.work_dir, hub_dir=args.hub_dir, overrides=parse_overrides(extra))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="psycopref", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="Log HTTP requests and library chatter.")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in (*STAGE_COMMANDS, "run"):
        p = sub.add_parser(name, help=f"run the {name} stage" if name != "run" else "run every stage the recipe names")
        p.add_argument("recipe", help="recipe YAML (see recipes/)")
        if name == "push":
            p.add_argument("--hub-dir", default=None, help="publish into this local Hub mirror instead")
            p.add_argument("--hub", action="store_true", help="publish to the Hub (HF_ENDPOINT, token from HF_TOKEN / hf auth login)")
        p.set_defaults(func=_stage_cmd)
    demo = sub.add_parser("demo", help="the whole pipeline offline on the embedded default (SmolLM2 + llama.cpp)")
    demo.add_argument("--work-dir", default="runs/demo", help="stage outputs, caches and logs")
    demo.add_argument("--hub-dir", default="hub", help="local Hub mirror the dataset repo is pushed to")
    demo.set_defaults(func=_demo)
    from .dataset import annotate

    annotate.add_cli(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and args.func not in (_stage_cmd, _demo):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    _setup_logging(args.verbose)
    try:
        if args.func in (_stage_cmd, _demo):
            return args.func(args, extra)
        return args.func(args) or 0
    except KeyboardInterrupt:
        print("interrupted: finished work is kept; rerun the same command to resume", file=sys.stderr)
        return 130
    except (RecipeError, FileNotFoundError, ValueError, RuntimeError) as err:
        print(f"psycopref: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
