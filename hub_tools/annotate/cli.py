"""The expert-validation commands (paper §3.4):

    psycopref annotate export --pairs runs/demo/pairs --out sheets/   a blinded, topic-stratified sheet + its key
    psycopref annotate score sheets/*.csv --key sheets/key.jsonl [--card README.md]   agreement and Cohen's kappa
"""

from __future__ import annotations

import json
from pathlib import Path

from ..commands import group
from .pair_sheets import export_sheet, load_pairs, score_sheets, update_card


def _cmd_export(args) -> int:
    paths = export_sheet(load_pairs(args.pairs, args.split), args.out, n=args.n, seed=args.seed)
    print("\n".join(f"{kind}: {p}" for kind, p in paths.items()))
    print("Give annotators the sheet (CSV or JSONL) and INSTRUCTIONS.md; keep key.jsonl to yourself.")
    return 0


def _cmd_score(args) -> int:
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
    annotate = group(subparsers, "annotate", "expert-validation sheets (paper §3.4)")
    exp = annotate.verb("export", "sample pairs into a blinded annotation sheet + key")
    exp.add_argument("--pairs", required=True, help="save_to_disk folder, or repo folder/Hub id ('pairs' config)")
    exp.add_argument("--split", default="train", help="split to sample from (default: train)")
    exp.add_argument("--n", type=int, default=200, help="pairs to sample (default: 200, as in the paper)")
    exp.add_argument("--seed", type=int, default=42, help="sampling and A/B order seed (default: 42)")
    exp.add_argument("--out", required=True, help="output folder for sheet, key and instructions")
    exp.set_defaults(func=_cmd_export)
    sc = annotate.verb("score", "agreement of filled sheets with the labels and each other")
    sc.add_argument("sheets", nargs="+", help="filled sheets (CSV or JSONL), one annotator each")
    sc.add_argument("--key", required=True, help="key.jsonl written by `annotate export`")
    sc.add_argument("--json", help="also write the report as JSON here")
    sc.add_argument("--card", help="dataset card (README.md) to insert/replace the section in")
    sc.set_defaults(func=_cmd_score)
