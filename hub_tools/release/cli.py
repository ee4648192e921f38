"""`psycopref release RECIPE [--dry-run] [--hub | --hub-dir DIR] [--only NAME ...]`: publish every artifact of a
release recipe with one version tag and cross-linked cards (`plan` makes the plan, `publish` carries it out)."""

from __future__ import annotations

import json

from ..commands import add_target_flags
from ..config import parse_overrides
from .plan import make_plan


def _cmd(args, extra: list[str]) -> int:
    overrides = parse_overrides(extra)
    if args.hub_dir is not None:
        overrides["hub_dir"] = args.hub_dir
    if args.hub:
        overrides["hub_dir"] = None
    plan = make_plan(args.recipe, overrides, allow_dev=args.allow_dev, tag=not args.no_tag, only=args.only)
    if args.dry_run:
        print(json.dumps(plan.as_json(), indent=2) if args.json else plan.table())
        return 0
    from .publish import publish

    results = publish(plan)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for r in results:
            print(f"{'pushed   ' if r['changed'] else 'unchanged'} {r['repo_type']}:{r['repo_id']} "
                  f"{r['commit_id'][:12]}{' ' + r['tag'] if r['tag'] else ''}  {r['url']}")
    return 0


def add_cli(sub) -> None:
    p = sub.add_parser("release", help="publish every artifact of a release under one version tag")
    p.add_argument("recipe", help="release recipe (recipes/psycopref/release/config_*.yaml)")
    p.add_argument("--dry-run", action="store_true", help="print the plan (repo ids, files, sizes, tag); touch nothing")
    p.add_argument("--json", action="store_true", help="print the plan (or the pushes) as JSON")
    add_target_flags(p)
    p.add_argument("--only", nargs="+", metavar="NAME", help="publish only these artifacts (the cards still link all)")
    p.add_argument("--allow-dev", action="store_true", help="allow a development or pre-release version")
    p.add_argument("--no-tag", action="store_true", help="push without the version tag (e.g. redeploying the Space between releases)")
    p.set_defaults(func=_cmd, overrides=True)
