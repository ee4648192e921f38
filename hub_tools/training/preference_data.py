"""The preference pairs a reward model trains and is evaluated on, in TRL's conversational format.

Reads the dataset's `pairs` config (prompt / chosen / rejected message lists, topics) or the public
release's `default` config (question / chosen / rejected strings, e.g. users of
`Psychotherapy-LLM/PsychoCounsel-Preference`), from a dataset repo folder, a `save_to_disk` folder or
the Hub. Every split comes out with the same columns: ID, prompt, chosen, rejected, topic_coarse,
source. Train loses a dev set held out by speech ID (no speech in both), for temperature scaling;
HelpSteer2 preference pairs can be mixed into train.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import random
from pathlib import Path
from typing import Any

from datasets import Dataset, DatasetDict, Features, List, Value

from ..errors import PsycoprefError
from ..io import load_repo_dataset
from .sections import DataSection, HelpSteer2Section

log = logging.getLogger("psycopref")

_MESSAGES = List({"role": Value("string"), "content": Value("string")})
FEATURES = Features({"ID": Value("string"), "prompt": _MESSAGES, "chosen": _MESSAGES, "rejected": _MESSAGES,
                     "topic_coarse": Value("string"), "source": Value("string")})
HELPSTEER2_TURN = "<extra_id_1>"  # HelpSteer2's turn separator: a prompt holding it is multi-turn


class DataError(PsycoprefError, ValueError):
    """Pairs that cannot be read; the message names the path, config, split or line."""


def _read(cfg: DataSection) -> DatasetDict:
    from datasets import load_from_disk

    path = Path(cfg.path).expanduser()
    try:
        if (path / "dataset_dict.json").is_file():  # a work dir's pairs/ (save_to_disk)
            return load_from_disk(str(path))
        return load_repo_dataset(path if path.exists() else cfg.path, cfg.config)
    except (FileNotFoundError, ValueError, ConnectionError, OSError) as err:
        raise DataError(f"data.path {cfg.path!r} (config {cfg.config!r}) cannot be read: {err}") from None


def _messages(value: Any, role: str) -> list[dict]:
    return value if isinstance(value, list) else [{"role": role, "content": str(value)}]


def _normalise(ds: Dataset, split: str, source: str = "psycopref") -> Dataset:
    """The common columns, whether `ds` is the pairs config (message lists) or the release (strings)."""
    cols = set(ds.column_names)
    if not {"chosen", "rejected"} <= cols or not cols & {"prompt", "question"}:
        raise DataError(f"split {split!r} has columns {sorted(cols)}; expected prompt or question, chosen, rejected")

    def row(ex: dict) -> dict:
        prompt = ex["prompt"] if "prompt" in ex and ex["prompt"] is not None else ex["question"]
        messages = _messages(prompt, "user")
        sid = ex.get("ID")
        if sid is None:  # no speech id: pairs with the same prompt share one, so the dev split stays by speech
            sid = hashlib.sha1(json.dumps(messages, sort_keys=True).encode()).hexdigest()[:16]
        return {"ID": str(sid), "prompt": messages,
                "chosen": _messages(ex["chosen"], "assistant"), "rejected": _messages(ex["rejected"], "assistant"),
                "topic_coarse": ex.get("topic_coarse"), "source": source}

    return ds.map(row, remove_columns=ds.column_names, features=FEATURES, desc=f"Reading {split} pairs")


def _subset(ds: Dataset, n: int | None, seed: int) -> Dataset:
    if n is None or n >= len(ds):
        return ds
    return ds.shuffle(seed=seed).select(range(n)).flatten_indices()


def dev_speeches(ids: list[str], fraction: float, seed: int) -> set[str]:
    """The speech IDs held out of train as the dev set (seeded, order-independent, as the test split)."""
    from ..pairs.build import split_speeches
    from ..pairs.config import PairsConfig

    if fraction <= 0:
        return set()
    sides = split_speeches(ids, PairsConfig(test_fraction=fraction, seed=seed))
    return {sid for sid, side in sides.items() if side == "test"}


def load_pairs(cfg: DataSection, seed: int = 42) -> DatasetDict:
    """train / dev / test in the common columns. dev is empty when cfg.dev_fraction is 0."""
    raw = _read(cfg)
    for split in (cfg.train_split, cfg.test_split):
        if split not in raw:
            raise DataError(f"data.path {cfg.path!r} has no split {split!r} (has {', '.join(raw)})")
    train = _normalise(raw[cfg.train_split], cfg.train_split)
    test = _subset(_normalise(raw[cfg.test_split], cfg.test_split), cfg.max_test_pairs, seed)
    if not len(train) or not len(test):
        raise DataError(f"data.path {cfg.path!r}: train has {len(train)} and test {len(test)} pairs; both need some")
    held = dev_speeches(train["ID"], cfg.dev_fraction, seed)
    dev = train.filter(lambda ex: ex["ID"] in held, desc="Dev split")
    train = _subset(train.filter(lambda ex: ex["ID"] not in held, desc="Train split"), cfg.max_train_pairs, seed)
    if cfg.helpsteer2 is not None:
        from datasets import concatenate_datasets

        extra = helpsteer2_pairs(cfg.helpsteer2, len(train), seed)
        train = concatenate_datasets([train, extra]).shuffle(seed=seed).flatten_indices()
    log.info("preference pairs: %d train, %d dev, %d test", len(train), len(dev), len(test))
    return DatasetDict({"train": train, "dev": dev, "test": test})


def helpsteer2_pairs(cfg: HelpSteer2Section, n_psycopref: int, seed: int) -> Dataset:
    """A seeded sample of HelpSteer2's single-turn train preferences as (prompt, chosen, rejected) pairs.

    preference_strength > 0 means response_2 is better, < 0 response_1; ties (0) say nothing and are
    dropped, as are multi-turn prompts (PsyCoPref is single-turn) and the validation split."""
    path = Path(cfg.path).expanduser()
    if not path.is_file():
        raise DataError(f"data.helpsteer2.path: {path} not found (HelpSteer2's preference/preference.jsonl.gz)")
    rows, dropped = [], {"tie": 0, "multi_turn": 0, "not_train": 0}
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        for i, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                ex = json.loads(line)
                prompt, one, two, strength = ex["prompt"], ex["response_1"], ex["response_2"], int(ex["preference_strength"])
            except (json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
                raise DataError(f"{path}, line {i}: not a HelpSteer2 preference row ({err.__class__.__name__}: {err})") from None
            if ex.get("split", "train") != "train":
                dropped["not_train"] += 1
            elif strength == 0:
                dropped["tie"] += 1
            elif HELPSTEER2_TURN in prompt:
                dropped["multi_turn"] += 1
            else:
                chosen, rejected = (two, one) if strength > 0 else (one, two)
                rows.append({"ID": f"helpsteer2-{i}", "prompt": _messages(prompt, "user"),
                             "chosen": _messages(chosen, "assistant"), "rejected": _messages(rejected, "assistant"),
                             "topic_coarse": None, "source": "helpsteer2"})
    want = cfg.count if cfg.count is not None else round(cfg.ratio * n_psycopref)
    if want > len(rows):
        raise DataError(f"data.helpsteer2 asks for {want} pairs but {path} has {len(rows)} usable ones "
                        f"(dropped: {dropped})")
    picked = sorted(random.Random(seed).sample(range(len(rows)), want))
    log.info("helpsteer2: %d of %d usable pairs (dropped %s)", want, len(rows), dropped)
    return Dataset.from_list([rows[i] for i in picked], features=FEATURES)


def response_text(messages: list[dict]) -> str:
    """The answer being scored: the last assistant message."""
    return messages[-1]["content"] if messages else ""
