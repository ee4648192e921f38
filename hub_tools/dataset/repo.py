"""Assemble the dataset repository folder exactly as it is pushed to the Hub, card included.

Layout (the default config is the public release's layout, so existing loaders keep working):
  data/{split}-00000-of-00001.parquet       default config: the release columns (contracts: ID ... rejected_staging_rating)
  pairs|ratings|speeches/{split}-00000-of-00001.parquet
  figures/*.png, recipe.yaml (resolved recipe), README.md (card from cards/dataset_card.md)
The card's licence is the one given, or the most restrictive among the sources of the speeches
published (their `source` column; see speeches/licenses.py); the card lists every source's licence.
The folder is built in a temporary sibling and swapped in, and the same inputs give the same bytes
(parquet, PNG and card), so re-pushing an unchanged build makes no commit.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from datasets import DatasetDict
from huggingface_hub import DatasetCard, DatasetCardData

from ..hub import figures
from ..hub.cards import flatten, fmt, render_card, size_category
from ..io import atomic_dir
from ..kinds import DATASET_ID, RECIPE_FILE
from ..paper import taxonomy
from ..paper.principles import PRINCIPLE_NAMES, principles
from ..paper.public_release import RELEASE_COLUMNS, SPLITS
from ..speeches.licenses import RESTRICTIVENESS, dataset_licensing

CONFIG_DIRS = {"default": "data", "pairs": "pairs", "ratings": "ratings", "speeches": "speeches"}
# Columns the card's statistics read, per config (everything else is passed through untouched).
_NEEDED = {
    "speeches": ["source", "topic_fine", "topic_coarse", "topic_method", "n_chars"],
    "ratings": ["overall"] + [f"{p}_rating" for p in PRINCIPLE_NAMES],
    "pairs": ["chosen_model", "rejected_model", "safety_veto", "topic_coarse", "topic_fine"],
}
_JUDGE_KEYS = ("model", "mode", "prompt_hash", "calls", "prompt_tokens", "completion_tokens", "cost_usd", "quarantined")
# Preference pairs train policies (text-generation) and reward models, which are sequence-classification
# score heads (text-classification); the Hub has no dedicated "preference" task category.
TASK_CATEGORIES = ["text-generation", "text-classification"]
TAGS = ["dpo", "reward-modeling", "preference", "psychotherapy", "counseling", "mental-health", "synthetic"]
UNLABELLED = "Unlabelled"  # topic shown for speeches no classifier or source labelled
TEMPLATE = "dataset_card.md"  # inside package hub_tools.cards (the repo's cards/ folder)


def data_file(config: str, split: str) -> str:
    """Repo-relative parquet path of one config's split (one shard, the Hub's naming)."""
    return f"{CONFIG_DIRS[config]}/{split}-00000-of-00001.parquet"


def build_repo(
    out_dir: str | Path,
    *,
    speeches: DatasetDict,
    ratings: DatasetDict,
    pairs: DatasetDict,
    release: DatasetDict,
    recipe: Mapping[str, Any],
    reports: Mapping[str, Any],
    repo_id: str = DATASET_ID,
    pretty_name: str = "PsyCoPref",
    license: str | None = None,
) -> Path:
    """Write the pushable dataset folder to `out_dir` (replaced atomically) and return its path.

    `license` (a Hub licence id) overrides the licence derived from the speeches' sources."""
    configs = {"default": release, "pairs": pairs, "ratings": ratings, "speeches": speeches}
    _validate(configs)
    min_gap = _min_gap(reports, recipe)
    for key in ("judge", "pool", "privacy"):
        if key not in reports:
            raise ValueError(f"reports is missing {key!r}")
    missing = [k for k in _JUDGE_KEYS if k not in reports["judge"]]
    if missing:
        raise ValueError(f"reports['judge'] is missing {', '.join(missing)}")

    out = Path(out_dir).resolve()
    with atomic_dir(out) as tmp:
        tmp.mkdir()
        for name, dd in configs.items():
            for split in SPLITS:
                path = tmp / data_file(name, split)
                path.parent.mkdir(parents=True, exist_ok=True)
                dd[split].to_parquet(str(path))
        (tmp / RECIPE_FILE).write_text(
            yaml.safe_dump(dict(recipe), sort_keys=False, allow_unicode=True), encoding="utf-8"
        )
        context = _context(tmp, configs, recipe, reports, min_gap, repo_id, pretty_name, license)
        render_card_file(context.pop("card_data"), context).save(tmp / "README.md")
    return out


def render_card_file(card_data: DatasetCardData, context: Mapping[str, Any]) -> DatasetCard:
    """The dataset card: YAML metadata from `card_data`, body from `cards/dataset_card.md` filled with `context`."""
    return render_card("dataset", card_data, TEMPLATE, context)


def _validate(configs: Mapping[str, DatasetDict]) -> None:
    for name, dd in configs.items():
        for split in SPLITS:
            if split not in dd:
                raise ValueError(f"config {name!r} has no {split!r} split (got {sorted(dd)})")
            if len(dd[split]) == 0:
                raise ValueError(f"config {name!r}, split {split!r} is empty")
            missing = [c for c in _NEEDED.get(name, []) if c not in dd[split].column_names]
            if missing:
                raise ValueError(f"config {name!r}, split {split!r} lacks columns {missing}")
    for split in SPLITS:
        ds = configs["default"][split]
        if ds.column_names != RELEASE_COLUMNS:
            raise ValueError(
                f"config 'default', split {split!r}: columns must be the release columns in order "
                f"{RELEASE_COLUMNS}, got {ds.column_names}"
            )
        bad = [c for c in RELEASE_COLUMNS if c.endswith("_rating") or c == "prefID"]
        bad = [c for c in bad if getattr(ds.features[c], "dtype", None) != "int64"]
        if bad:
            raise ValueError(f"config 'default', split {split!r}: columns {bad} must be int64")


def _min_gap(reports: Mapping[str, Any], recipe: Mapping[str, Any]) -> float:
    """The pairing rule's overall-score gap: reports['pairs']['min_gap'], else recipe['pairs']['min_gap']."""
    for section in (reports.get("pairs"), recipe.get("pairs")):
        if isinstance(section, Mapping) and section.get("min_gap") is not None:
            return float(section["min_gap"])
    raise ValueError("the pairing gap threshold is missing: set reports['pairs']['min_gap'] or recipe['pairs']['min_gap']")


def _col(dd: DatasetDict, column: str, splits=SPLITS) -> list:
    return [v for split in splits for v in dd[split][column]]


def _rows(counter: Counter, order: list[str] | None = None) -> list[tuple[str, int]]:
    """(label, count) sorted by count then label, or in `order` (zero counts dropped) when given."""
    if order is not None:
        known = [(k, counter[k]) for k in order if counter[k]]
        return known + sorted(((k, v) for k, v in counter.items() if k not in order), key=lambda kv: kv[0])
    return sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))


def _source_datasets(sources: list[str], recipe: Mapping[str, Any]) -> list[str]:
    """Sources that contributed speeches, as their Hub ids where the recipe names one."""
    hub_ids = {
        s.get("name"): s.get("hub_id")
        for s in (recipe.get("speeches") or {}).get("sources") or []
        if isinstance(s, Mapping)
    }
    return sorted({hub_ids.get(s) or s for s in sources})


def _context(root: Path, configs, recipe, reports, min_gap, repo_id, pretty_name, license) -> dict[str, Any]:
    """Every number the card shows, computed from the data and the reports; figures written under root."""
    speeches, ratings, pairs, release = (configs[k] for k in ("speeches", "ratings", "pairs", "default"))
    counts = {name: {s: len(dd[s]) for s in SPLITS} for name, dd in configs.items()}
    n_release = sum(counts["default"].values())

    src = Counter(_col(speeches, "source"))
    coarse = Counter(t or UNLABELLED for t in _col(speeches, "topic_coarse"))
    fine = Counter(t or UNLABELLED for t in _col(speeches, "topic_fine"))
    pair_coarse = {s: Counter(t or UNLABELLED for t in pairs[s]["topic_coarse"]) for s in SPLITS}
    pair_fine = Counter(t or UNLABELLED for t in _col(pairs, "topic_fine"))
    f2c = taxonomy.fine_to_coarse()
    n_chars = _col(speeches, "n_chars")

    pool = [m if isinstance(m, Mapping) else {"name": str(m), "model": ""} for m in reports["pool"]]
    chosen, rejected = Counter(_col(release, "chosen_model")), Counter(_col(release, "rejected_model"))
    members = sorted({m["name"] for m in pool} | set(chosen) | set(rejected),
                     key=lambda m: (-chosen[m], rejected[m], m))

    overall = [v for v in _col(ratings, "overall") if v is not None]
    p_rows, p_means = [], {}
    for p in principles():
        values = _col(ratings, f"{p.short}_rating")
        rated = [v for v in values if v is not None]
        mean = sum(rated) / len(rated) if rated else 0.0
        p_means[p.short] = mean
        p_rows.append({"short": p.short, "name": p.name, "mean": fmt(mean), "rated": f"{len(rated):,}",
                       "missing": f"{len(values) - len(rated):,}"})

    figs = {
        "topics_coarse": figures.topics_figure(root, coarse, level="coarse"),
        "topics_fine": figures.topics_figure(root, fine, level="fine"),
        "chosen_models": figures.models_figure(root, {m: chosen[m] for m in members}, side="chosen"),
        "rejected_models": figures.models_figure(root, {m: rejected[m] for m in members}, side="rejected"),
        "principle_means": figures.principle_means_figure(root, p_means),
    }
    if overall:
        figs["overall_scores"] = figures.overall_histogram(root, overall, n_principles=len(PRINCIPLE_NAMES))

    judge = dict(reports["judge"])
    licensing = dataset_licensing(src, license)
    lic_of = {s.name: s for s in licensing.sources}
    card_data = DatasetCardData(
        license=licensing.license,
        language=["en"],
        annotations_creators=["machine-generated"],
        language_creators=["found", "machine-generated"],
        multilinguality=["monolingual"],
        task_categories=TASK_CATEGORIES,
        tags=TAGS,
        size_categories=[size_category(n_release)],
        source_datasets=_source_datasets(list(src), recipe),
        pretty_name=pretty_name,
        configs=[
            {"config_name": name, "data_files": [{"split": s, "path": data_file(name, s)} for s in SPLITS]}
            for name in CONFIG_DIRS
        ],
    )
    return {
        "card_data": card_data,
        "repo_id": repo_id,
        "n_release_columns": len(RELEASE_COLUMNS),
        "pretty_name": pretty_name,
        "principles": [{"short": p.short, "name": p.name} for p in principles()],
        "judge": {
            "model": judge["model"], "mode": judge["mode"], "prompt_hash": judge["prompt_hash"],
            "calls": f"{int(judge['calls']):,}", "prompt_tokens": f"{int(judge['prompt_tokens']):,}",
            "completion_tokens": f"{int(judge['completion_tokens']):,}",
            "cost_usd": fmt(float(judge["cost_usd"])), "quarantined": f"{int(judge['quarantined']):,}",
        },
        "pool": [{"name": m["name"], "model": m.get("model", "")} for m in pool],
        "min_gap": f"{min_gap:g}",
        "counts": [{"config": n, **{s: f"{c[s]:,}" for s in SPLITS}, "total": f"{sum(c.values()):,}"}
                   for n, c in counts.items()],
        "n": {n: {s: f"{c[s]:,}" for s in SPLITS} for n, c in counts.items()},
        "n_speeches": f"{sum(counts['speeches'].values()):,}",
        "mean_chars": fmt(sum(n_chars) / len(n_chars), 0),
        "sources": [{"source": k, "speeches": f"{v:,}", "license": lic_of[k].license, "homepage": lic_of[k].homepage}
                    for k, v in _rows(src)],
        "license": licensing.license,
        "license_how": licensing.how,
        "license_order": " < ".join(RESTRICTIVENESS),
        "topic_methods": [{"method": k, "speeches": f"{v:,}"} for k, v in _rows(Counter(_col(speeches, "topic_method")))],
        "unlabelled": UNLABELLED,
        "coarse_topics": [
            {"topic": k, "speeches": f"{v:,}", **{s: f"{pair_coarse[s][k]:,}" for s in SPLITS}}
            for k, v in _rows(coarse, taxonomy.coarse_topics())
        ],
        "fine_topics": [
            {"coarse": f2c.get(k, UNLABELLED), "topic": k, "speeches": f"{v:,}",
             "pairs": f"{pair_fine[k]:,}"}
            for k, v in _rows(fine, taxonomy.fine_topics())
        ],
        "models": [
            {"name": m, "chosen": f"{chosen[m]:,}", "rejected": f"{rejected[m]:,}",
             "share": fmt(100 * chosen[m] / (chosen[m] + rejected[m]), 1) if chosen[m] + rejected[m] else "-"}
            for m in members
        ],
        "n_rated": f"{sum(counts['ratings'].values()):,}",
        "n_complete": f"{len(overall):,}",
        "mean_overall": fmt(sum(overall) / len(overall)) if overall else "-",
        "principle_stats": p_rows,
        "safety_veto": {s: f"{sum(bool(v) for v in pairs[s]['safety_veto']):,}" for s in SPLITS},
        "privacy": [{"type": str(k), "count": f"{int(v):,}"} for k, v in reports["privacy"].items()],
        "privacy_total": f"{sum(int(v) for v in reports['privacy'].values()):,}",
        "speeches_report": flatten(reports.get("speeches") or {}),
        "pairs_report": flatten(reports.get("pairs") or {}),
        "demo_scale": n_release < 1000,  # the Hub's smallest size bucket: a quick demo run, not a study
        "figures": figs,
        "expert_validation_md": (reports.get("expert_validation_md") or "").strip(),
    }
