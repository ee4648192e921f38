"""The expert-validation commands (paper §3.4 for the dataset's pairs, §4.2 for a policy):

    psycopref annotate export --pairs runs/demo/pairs --out sheets/   a blinded, topic-stratified sheet + its key
    psycopref annotate score sheets/*.csv --key sheets/key.jsonl [--card README.md]   agreement and Cohen's kappa

    psycopref annotate export --winrate runs/eval --policy NAME --out sheets/   policy-vs-reference and rating sheets
    psycopref annotate score --kind policy sheets/policy_sheet*.csv --key sheets/policy_key.jsonl \\
        [--ratings sheets/rating_sheet*.csv --rating-key sheets/rating_key.jsonl] [--recipe POLICY_RECIPE]
        expert win rates, judge-expert agreement, ratings per principle (into the policy's card with --recipe)
"""

from __future__ import annotations

import json
from pathlib import Path

from ..commands import group
from .pair_sheets import export_sheet, load_pairs, score_sheets, update_card


def _cmd_export(args) -> int:
    if args.winrate:
        from .policy_sheets import export_policy_sheets, read_winrate

        paths = export_policy_sheets(read_winrate(args.winrate, args.policy), args.out, n=args.n or 100,
                                     n_ratings=args.ratings, seed=args.seed)
        print("\n".join(f"{kind}: {p}" for kind, p in paths.items()))
        print("Give experts the two sheets (CSV or JSONL) and INSTRUCTIONS.md; keep the *key.jsonl files to yourself.")
        return 0
    paths = export_sheet(load_pairs(args.pairs, args.split), args.out, n=args.n or 200, seed=args.seed)
    print("\n".join(f"{kind}: {p}" for kind, p in paths.items()))
    print("Give annotators the sheet (CSV or JSONL) and INSTRUCTIONS.md; keep key.jsonl to yourself.")
    return 0


def _cmd_score(args) -> int:
    if args.kind == "policy":
        from .policy_report import attach_expert_eval, to_markdown
        from .policy_scoring import score_policy_sheets

        report = score_policy_sheets(args.sheets, args.key, args.ratings or (), args.rating_key, seed=args.seed)
        print(to_markdown(report))
        if args.json:
            Path(args.json).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        if args.recipe:
            from ..config import load_any

            print(f"card: {attach_expert_eval(report, load_any(args.recipe)) / 'README.md'}")
        return 0
    report = score_sheets(args.sheets, args.key)
    markdown = report.to_markdown()
    print(markdown)
    if args.json:
        Path(args.json).write_text(json.dumps(report.to_dict(), indent=2) + "\n", encoding="utf-8")
    if args.card:
        update_card(args.card, markdown)
    return 0


def add_cli(subparsers) -> None:
    """Register `annotate export` and `annotate score`; each sets `func(args) -> exit code`."""
    annotate = group(subparsers, "annotate", "expert-validation sheets (paper §3.4, §4.2)")
    exp = annotate.verb("export", "sample pairs or a policy's answers into blinded sheets + keys")
    source = exp.add_mutually_exclusive_group(required=True)
    source.add_argument("--pairs", help="save_to_disk folder, or repo folder/Hub id ('pairs' config)")
    source.add_argument("--winrate", help="a `psycopref policy eval` work dir: policy-vs-reference and rating sheets")
    exp.add_argument("--split", default="train", help="--pairs: split to sample from (default: train)")
    exp.add_argument("--policy", help="--winrate: the evaluated policy's name (needed when it evaluated several)")
    exp.add_argument("--n", type=int, default=None, help="pairs to sample (default: 200, as in the paper); "
                     "--winrate: speeches compared per setting (default: 100, as in the paper)")
    exp.add_argument("--ratings", type=int, default=50, help="--winrate: speeches per setting whose two answers are "
                     "rated 1-5 (default: 50: 100 answers per setting)")
    exp.add_argument("--seed", type=int, default=42, help="sampling and A/B order seed (default: 42)")
    exp.add_argument("--out", required=True, help="output folder for sheets, keys and instructions")
    exp.set_defaults(func=_cmd_export)
    sc = annotate.verb("score", "agreement of filled sheets with the labels or the judge")
    sc.add_argument("sheets", nargs="+", help="filled sheets (CSV or JSONL), one annotator each")
    sc.add_argument("--key", required=True, help="key.jsonl (or policy_key.jsonl) written by `annotate export`")
    sc.add_argument("--kind", choices=("pair", "policy"), default="pair",
                    help="pair: the dataset's preference pairs (default); policy: a policy against the reference")
    sc.add_argument("--ratings", nargs="+", help="--kind policy: filled rating sheets (1-5 per principle)")
    sc.add_argument("--rating-key", help="--kind policy: rating_key.jsonl written by `annotate export --winrate`")
    sc.add_argument("--recipe", help="--kind policy: the policy's recipe; its model folder's card gets the results")
    sc.add_argument("--seed", type=int, default=42, help="--kind policy: bootstrap seed (default: 42)")
    sc.add_argument("--json", help="also write the report as JSON here")
    sc.add_argument("--card", help="dataset card (README.md) to insert/replace the section in")
    sc.set_defaults(func=_cmd_score)
