"""`psycopref estimate RECIPE ... [--markdown | --costs]`: peak training memory per device (memory.py), or
GPU-hours and API dollars (costs.py), computed from recipes without a GPU."""

from __future__ import annotations

import argparse

from ..config import parse_overrides
from . import costs, memory


def _estimate_cmd(args, extra: list[str]) -> int:
    overrides = parse_overrides(extra)
    if args.costs:
        inputs = costs.load_inputs(args.inputs)
        lines = [line for path in args.recipes
                 for line in costs.recipe_lines(path, inputs, overrides, args.kind, speeches=args.speeches)]
        print(costs.cost_table(lines, inputs, args.inputs or costs.default_inputs()))
        return 0
    rows = [(str(path), memory.estimate_recipe(path, overrides, args.kind)) for path in args.recipes]
    if args.markdown:
        print(memory.markdown_table(rows))
        return 0
    for name, est in rows:
        print(f"{name}: {est.params:,} parameters, {est.trainable:,} trainable, {est.quantized:,} in 4-bit")
        for key, gib in est.gib().items():
            print(f"  {key:<14} {gib:8.2f} GiB")
        if est.plan.budget_gb is not None:
            print(f"  budget {est.plan.budget_gb:g} GiB per device: {'fits' if est.fits else 'DOES NOT FIT'}")
    return 0


def add_cli(sub) -> None:
    p = sub.add_parser("estimate", help="memory per GPU, or GPU-hours and dollars, without a GPU",
                       formatter_class=argparse.RawDescriptionHelpFormatter, epilog=f"{memory.__doc__}\n{costs.__doc__}")
    p.add_argument("recipes", nargs="+", help="recipe YAML files (recipes/<artifact>/<method>/config_*.yaml)")
    p.add_argument("--kind", default=None, help="recipe kind when the file is not under recipes/<artifact>/<method>/")
    p.add_argument("--markdown", action="store_true", help="print one Markdown table (for benchmarks/RESULTS.md)")
    p.add_argument("--costs", action="store_true", help="GPU-hours and dollars instead (dataset, model and release "
                   "recipes; hub_tools/estimate/costs.py), as a Markdown table")
    p.add_argument("--inputs", default=None, help="--costs: measured token counts, throughputs and prices (default: the "
                   "package's hub_tools/estimate/data/measured.yaml)")
    p.add_argument("--speeches", type=int, default=None, help="--costs: speeches in the build (default: the inputs' build.speeches)")
    p.set_defaults(func=_estimate_cmd, overrides=True)
