"""Stages 4–6: preference pairs, the dataset repository folder, and the push.

`pairs` scrubs personal data from speeches, responses and rationales first (so nothing unscrubbed
reaches any later file), splits by speech, and pairs responses (paper §3.3). `dataset` writes the
repo folder (parquet configs, figures, card, resolved recipe). `push` publishes it.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from pathlib import Path

from datasets import DatasetDict

from ..config import Recipe
from ..io import load_stage, save_atomic, write_json
from ..principles import PRINCIPLE_NAMES
from .pairs import build_pairs, split_speeches, to_release
from .privacy import scrub_dataset
from .push import PushResult, push_folder
from .repo import build_repo

log = logging.getLogger("psycopref")
SPLITS = ("train", "test")


def _work(recipe: Recipe, name: str) -> Path:
    return recipe.work_path / name


def _need(recipe: Recipe, name: str, produced_by: str) -> Path:
    """An earlier stage's output file, or an error naming the command that writes it."""
    path = _work(recipe, name)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: run `psycopref {produced_by}` first")
    return path


def run_pairs(recipe: Recipe) -> DatasetDict:
    """Scrub, split and pair. Writes `<work>/pairs` (DatasetDict), the scrubbed inputs and a report."""
    speeches = load_stage(recipe.work_dir, "speeches", "speeches")
    ratings = load_stage(recipe.work_dir, "ratings", "judge")
    privacy: Counter = Counter()
    if recipe.dataset.scrub:
        keep = recipe.dataset.keep_toll_free
        speeches, c1 = scrub_dataset(speeches, ["text"], keep_toll_free=keep)
        ratings, c2 = scrub_dataset(ratings, ["response"] + [f"{p}_rationale" for p in PRINCIPLE_NAMES],
                                    keep_toll_free=keep)
        privacy = Counter({k: c1.get(k, 0) + c2.get(k, 0) for k in {*c1, *c2}})  # keeps zero counts
    pairs, report = build_pairs(speeches, ratings, recipe.pairs, seed=recipe.seed)
    # the same split build_pairs made: it splits every speech with a ratings row, complete or not
    rated = sorted(set(ratings["speech_id"]))
    split_of = split_speeches(rated, recipe.pairs, seed=recipe.seed)
    speeches = speeches.map(lambda r: {"split": split_of.get(r["id"], "unrated")})
    save_atomic(pairs, _work(recipe, "pairs"))
    save_atomic(DatasetDict({s: speeches.filter(lambda r, s=s: r["split"] == s) for s in SPLITS}),
                _work(recipe, "speeches_split"))
    save_atomic(DatasetDict({s: ratings.filter(lambda r, s=s: split_of.get(r["speech_id"]) == s) for s in SPLITS}),
                _work(recipe, "ratings_split"))
    report["privacy"] = {k: int(v) for k, v in sorted(privacy.items())}
    write_json(_work(recipe, "pairs_report.json"), report)
    log.info("pairs: %d train / %d test pairs (%d train / %d test speeches); privacy masks: %s",
             len(pairs["train"]), len(pairs["test"]), report["speeches"]["train"], report["speeches"]["test"],
             dict(privacy) or "none")
    return pairs


def run_dataset(recipe: Recipe) -> Path:
    """Build the pushable repo folder `<work>/dataset_repo` from the earlier stages' outputs."""
    pairs = load_stage(recipe.work_dir, "pairs", "pairs")
    report = json.loads(_need(recipe, "pairs_report.json", "pairs").read_text())
    privacy = report.pop("privacy", {})
    ledger = json.loads(_need(recipe, "judge_ledger.json", "judge").read_text())
    speeches_report = _work(recipe, "speeches_report.json")
    from ..prompts import ALL_PRINCIPLES_PROMPT, RATING_PROMPT, template_hash

    reports = {
        "pairs": report,
        "privacy": privacy,
        "speeches": _collection_summary(speeches_report),
        "judge": {"model": ledger["model"], "mode": ledger["mode"],
                  "prompt_hash": template_hash(ALL_PRINCIPLES_PROMPT if ledger["mode"] == "all_principles" else RATING_PROMPT),
                  **{k: ledger[k] for k in ("calls", "prompt_tokens", "completion_tokens", "cost_usd", "quarantined")}},
        "pool": [{"name": m.name, "model": m.model} for m in (recipe.generate.pool if recipe.generate else [])],
    }
    ev = _work(recipe, "expert_validation.md")
    if ev.exists():
        reports["expert_validation_md"] = ev.read_text()
    out = build_repo(
        _work(recipe, "dataset_repo"),
        speeches=load_stage(recipe.work_dir, "speeches_split", "pairs"),
        ratings=load_stage(recipe.work_dir, "ratings_split", "pairs"),
        pairs=pairs, release=to_release(pairs), recipe=_public_recipe(recipe), reports=reports,
        repo_id=recipe.dataset.repo_id, pretty_name=recipe.dataset.pretty_name,
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


def _public_recipe(recipe: Recipe) -> dict:
    """The resolved recipe as published: local paths of the work dir are not the reader's concern."""
    data = recipe.model_dump(mode="json")
    data.pop("work_dir", None)
    return data


def run_push(recipe: Recipe, hub_dir: str | None = None) -> PushResult:
    folder = _work(recipe, "dataset_repo")
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} does not exist: run `psycopref dataset` first")
    cfg = recipe.push
    hub_dir = hub_dir if hub_dir is not None else cfg.hub_dir
    result = push_folder(folder, recipe.dataset.repo_id, "dataset", private=cfg.private, revision=cfg.revision,
                         tag=cfg.tag, hub_dir=hub_dir)
    log.info("push: %s %s (%s)", recipe.dataset.repo_id, "updated" if result.changed else "unchanged", result.url)
    return result
