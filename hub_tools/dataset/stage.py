"""Stages 5–6: the dataset repository folder, and publishing it.

`dataset` writes the repo folder (parquet configs, figures, card, resolved recipe) from the earlier
stages' outputs; `push` publishes it through the shared Hub layer.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from ..config import HubTarget
from ..hub.push import PushResult, push_folder
from ..io import PAIRS, RATINGS_SPLIT, SPEECHES_SPLIT, load_stage, need
from ..kinds import KINDS
from ..pairs.build import to_release
from ..paper.prompts import rating_template, template_hash
from .config import DatasetConfig
from .repo import build_repo

log = logging.getLogger("psycopref")
OUTPUT_DIR = KINDS.get("dataset").folder  # the pushable repo folder


def run_dataset(cfg: DatasetConfig, work_dir: str | Path, *, recipe: dict[str, Any]) -> Path:
    """Build the pushable repo folder `<work_dir>/dataset_repo`; `recipe` is the resolved recipe as
    published (its `generate.pool` names the pool in the card). The card's licence is `cfg.license`, or
    derived from the sources of the speeches published (their `source` column)."""
    work = Path(work_dir)
    pairs = load_stage(work, PAIRS, "dataset pairs")
    report = json.loads(need(work, "pairs_report.json", "dataset pairs").read_text())
    privacy = report.pop("privacy", {})
    ledger = json.loads(need(work, "judge_ledger.json", "dataset judge").read_text())
    reports = {
        "pairs": report,
        "privacy": privacy,
        "speeches": _collection_summary(work / "speeches_report.json"),
        "judge": {"model": ledger["model"], "mode": ledger["mode"],
                  "prompt_hash": ledger.get("prompt_hash") or template_hash(rating_template(ledger["mode"])),
                  **{k: ledger[k] for k in ("calls", "prompt_tokens", "completion_tokens", "cost_usd", "quarantined")}},
        "pool": [{"name": m["name"], "model": m["model"]} for m in (recipe.get("generate") or {}).get("pool") or []],
    }
    ev = work / "expert_validation.md"
    if ev.exists():
        reports["expert_validation_md"] = ev.read_text()
    out = build_repo(
        work / OUTPUT_DIR,
        speeches=load_stage(work, SPEECHES_SPLIT, "dataset pairs"),
        ratings=load_stage(work, RATINGS_SPLIT, "dataset pairs"),
        pairs=pairs, release=to_release(pairs), recipe=recipe, reports=reports,
        repo_id=cfg.repo_id, pretty_name=cfg.pretty_name, license=cfg.license,
    )
    log.info("dataset: repo folder written to %s", out)
    return out


def _collection_summary(path: Path) -> dict:
    """The speeches stage's cleaning counts (all collected speeches), without per-topic detail."""
    if not path.exists():
        return {}
    report = json.loads(path.read_text())
    summary = {f"collected.{k}": v for k, v in report.get("steps", {}).items()}
    summary |= {f"topic_method.{k}": v for k, v in report.get("topic_method", {}).items()}
    return summary


def run_push(target: HubTarget, work_dir: str | Path, repo_id: str) -> PushResult:
    """Publish `<work_dir>/dataset_repo` as the dataset `repo_id` to `target` (the Hub or a local mirror)."""
    folder = need(work_dir, OUTPUT_DIR, "dataset build")
    result = push_folder(folder, repo_id, "dataset", private=target.private, revision=target.revision,
                         tag=target.tag, hub_dir=target.hub_dir)
    log.info("push: %s %s (%s)", repo_id, "updated" if result.changed else "unchanged", result.url)
    return result
