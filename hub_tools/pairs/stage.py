"""Stage 4: preference pairs from the judge's ratings.

Personal data is scrubbed from speeches, responses and rationales first, so nothing unscrubbed reaches
any later file; then speeches are split by speech and responses paired (paper §3.3). Writes `pairs/`
(train/test), the scrubbed, split inputs the dataset repo publishes (`speeches_split/`,
`ratings_split/`) and `pairs_report.json`.
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

from datasets import Dataset, DatasetDict

from ..io import PAIRS, RATINGS, RATINGS_SPLIT, SPEECHES, SPEECHES_SPLIT, load_stage, save_atomic, write_json
from ..paper.principles import PRINCIPLE_NAMES
from ..paper.public_release import SPLITS
from .build import build_pairs, split_speeches
from .config import PairsConfig
from .privacy import scrub_dataset

log = logging.getLogger("psycopref")


def run_pairs(cfg: PairsConfig, work_dir: str | Path, *, seed: int = 42, speeches: Dataset | None = None,
              ratings: Dataset | None = None) -> DatasetDict:
    """Scrub, split and pair `ratings` (default: `<work_dir>/ratings`) of `speeches` (default:
    `<work_dir>/speeches`); save and return `<work_dir>/pairs`."""
    work = Path(work_dir)
    speeches = load_stage(work, SPEECHES, "dataset speeches") if speeches is None else speeches
    ratings = load_stage(work, RATINGS, "dataset judge") if ratings is None else ratings
    privacy: Counter = Counter()
    if cfg.scrub:
        speeches, c1 = scrub_dataset(speeches, ["text"], keep_toll_free=cfg.keep_toll_free)
        ratings, c2 = scrub_dataset(ratings, ["response"] + [f"{p}_rationale" for p in PRINCIPLE_NAMES],
                                    keep_toll_free=cfg.keep_toll_free)
        privacy = Counter({k: c1.get(k, 0) + c2.get(k, 0) for k in {*c1, *c2}})  # keeps zero counts
    pairs, report = build_pairs(speeches, ratings, cfg, seed=seed)
    # the same split build_pairs made: it splits every speech with a ratings row, complete or not
    split_of = split_speeches(sorted(set(ratings["speech_id"])), cfg, seed=seed)
    speeches = speeches.map(lambda r: {"split": split_of.get(r["id"], "unrated")})
    save_atomic(pairs, work / PAIRS)
    save_atomic(DatasetDict({s: speeches.filter(lambda r, s=s: r["split"] == s) for s in SPLITS}),
                work / SPEECHES_SPLIT)
    save_atomic(DatasetDict({s: ratings.filter(lambda r, s=s: split_of.get(r["speech_id"]) == s) for s in SPLITS}),
                work / RATINGS_SPLIT)
    report["privacy"] = {k: int(v) for k, v in sorted(privacy.items())}
    write_json(work / "pairs_report.json", report)
    log.info("pairs: %d train / %d test pairs (%d train / %d test speeches); privacy masks: %s",
             len(pairs["train"]), len(pairs["test"]), report["speeches"]["train"], report["speeches"]["test"],
             dict(privacy) or "none")
    return pairs
