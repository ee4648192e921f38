"""Recall and false alarms of the crisis detector on the labelled speeches of benchmarks/data/.

    python benchmarks/bench_crisis.py [--split dev|test|all] [--rules crisis.yaml] [--show-misses]

Each split (crisis_dev.yaml: what the rules are tuned on; crisis_test.yaml: held out) has crisis speeches
by category and wording (direct, indirect) and non-crises by kind (grief, media and work, idioms,
recovered past, everyday, negation and safety). Prints a Markdown table per split: recall per crisis
category, false-alarm rate per non-crisis kind, and the totals; `--show-misses` lists what went wrong.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

DATA = Path(__file__).parent / "data"
SPLITS = ("dev", "test")


@dataclass(frozen=True)
class Row:
    text: str
    crisis: bool
    group: str  # a crisis category, or a non-crisis kind
    wording: str = ""  # direct or indirect (crises only)


def load_split(split: str, data: Path = DATA) -> list[Row]:
    """The labelled speeches of one split."""
    doc = yaml.safe_load((data / f"crisis_{split}.yaml").read_text(encoding="utf-8"))
    rows = [Row(t, True, cat, wording) for cat, by in doc["crisis"].items() for wording, texts in by.items() for t in texts]
    return rows + [Row(t, False, kind) for kind, texts in doc["none"].items() for t in texts]


def evaluate(rows: list[Row], detect) -> dict:
    """recall (crises flagged), false_alarms (non-crises flagged), per group counts, and the wrong rows."""
    flagged = [bool(detect(r.text)) for r in rows]
    groups: dict[tuple[bool, str], list[int]] = {}
    for r, f in zip(rows, flagged, strict=True):
        counts = groups.setdefault((r.crisis, r.group), [0, 0])
        counts[0] += 1
        counts[1] += f
    crises = [f for r, f in zip(rows, flagged, strict=True) if r.crisis]
    others = [f for r, f in zip(rows, flagged, strict=True) if not r.crisis]
    return {"recall": sum(crises) / len(crises), "false_alarms": sum(others) / len(others),
            "crises": len(crises), "non_crises": len(others), "groups": groups,
            "wrong": [r for r, f in zip(rows, flagged, strict=True) if f != r.crisis]}


def table(split: str, result: dict) -> str:
    """The Markdown table of one split."""
    lines = [f"**{split}** ({result['crises']} crises, {result['non_crises']} non-crises)", "",
             "| group | speeches | banner raised | rate |", "|---|---:|---:|---:|"]
    for (crisis, group), (n, hit) in result["groups"].items():
        what = "recall" if crisis else "false alarms"
        lines.append(f"| {'crisis' if crisis else 'non-crisis'}: {group} | {n} | {hit} | {what} {hit / n:.0%} |")
    lines.append(f"| **all crises** | {result['crises']} | | **recall {result['recall']:.1%}** |")
    lines.append(f"| **all non-crises** | {result['non_crises']} | | **false alarms {result['false_alarms']:.1%}** |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from hub_tools.arena.crisis import load_rules

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--split", choices=[*SPLITS, "all"], default="all")
    ap.add_argument("--rules", help="a crisis file (default: the bundled hub_tools/arena/data/crisis.yaml)")
    ap.add_argument("--show-misses", action="store_true", help="list the speeches the rules got wrong")
    args = ap.parse_args(argv)
    rules = load_rules(args.rules)
    for split in SPLITS if args.split == "all" else (args.split,):
        result = evaluate(load_split(split), rules.signals)
        print(table(split, result) + "\n")
        if args.show_misses:
            for r in result["wrong"]:
                print(f"  {'MISSED' if r.crisis else 'FALSE ALARM'} [{r.group}] {r.text}  {rules.matches(r.text)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
