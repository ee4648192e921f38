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

import yaml
from datasets import Dataset, DatasetDict, Features, List, Value

from ..errors import PsycoprefError
from ..io import read_dataset
from ..kinds import RECIPE_FILE
from .sections import DataSection, HelpSteer2Section

log = logging.getLogger("psycopref")

_MESSAGES = List({"role": Value("string"), "content": Value("string")})
FEATURES = Features({"ID": Value("string"), "prompt": _MESSAGES, "chosen": _MESSAGES, "rejected": _MESSAGES,
                     "topic_coarse": Value("string"), "source": Value("string")})
HELPSTEER2_TURN = "<extra_id_1>"  # HelpSteer2's turn separator: a prompt holding it is multi-turn


class DataError(PsycoprefError, ValueError):
    """Pairs that cannot be read; the message names the path, config, split or line."""


def _read(cfg: DataSection) -> DatasetDict:
    raw = read_dataset(cfg.path, cfg.config, f"data.path {cfg.path!r}", DataError, cfg.revision)
    if not isinstance(raw, DatasetDict):
        raise DataError(f"data.path {cfg.path!r} holds one table, not splits: expected {cfg.train_split!r} and "
                        f"{cfg.test_split!r}")
    return raw


def _messages(value: Any, role: str, where: str = "") -> list[dict]:
    """A conversation: a text becomes one `role` message; a list must be {role, content} texts."""
    if isinstance(value, str):
        return [{"role": role, "content": value}]
    if isinstance(value, list) and value and all(
            isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str) for m in value):
        return [{"role": m["role"], "content": m["content"]} for m in value]
    shown = json.dumps(value, default=str)
    raise DataError(f"{where}: expected a text or a non-empty list of {{role, content}} messages, got "
                    f"{type(value).__name__} {shown if len(shown) <= 60 else shown[:57] + '...'}")


def _normalise(ds: Dataset, split: str, source: str = "psycopref", path: str = "") -> Dataset:
    """The common columns, whether `ds` is the pairs config (message lists) or the release (strings)."""
    cols = set(ds.column_names)
    if not {"chosen", "rejected"} <= cols or not cols & {"prompt", "question"}:
        raise DataError(f"split {split!r} has columns {sorted(cols)}; expected prompt or question, chosen, rejected")

    def row(ex: dict, i: int) -> dict:
        key = "prompt" if "prompt" in ex and ex["prompt"] is not None else "question"
        where = f"data.path {path!r}, split {split!r}, row {i}"
        messages = _messages(ex[key], "user", f"{where}, column {key!r}")
        sid = ex.get("ID")
        if sid is None:  # no speech id: pairs with the same prompt share one, so the dev split stays by speech
            sid = hashlib.sha1(json.dumps(messages, sort_keys=True).encode()).hexdigest()[:16]
        return {"ID": str(sid), "prompt": messages,
                "chosen": _messages(ex["chosen"], "assistant", f"{where}, column 'chosen'"),
                "rejected": _messages(ex["rejected"], "assistant", f"{where}, column 'rejected'"),
                "topic_coarse": ex.get("topic_coarse"), "source": source}

    return ds.map(row, with_indices=True, remove_columns=ds.column_names, features=FEATURES,
                  desc=f"Reading {split} pairs")


def _subset(ds: Dataset, n: int | None, seed: int) -> Dataset:
    if n is None or n >= len(ds):
        return ds
    return ds.shuffle(seed=seed).select(range(n)).flatten_indices()


def as_trained(cfg: DataSection, folder: Path) -> DataSection:
    """`cfg` at the dataset commit the model in `folder` was trained on (its recipe.yaml's `data.revision`) when
    `cfg` names the same Hub dataset without a revision, so evaluating after the repo's main moved on reads the
    pairs (and the dev split) training read."""
    recipe = folder / RECIPE_FILE
    if cfg.revision is not None or not recipe.is_file():
        return cfg
    trained = (yaml.safe_load(recipe.read_text(encoding="utf-8")) or {}).get("data") or {}
    if trained.get("path") != cfg.path or not trained.get("revision"):
        return cfg
    return cfg.model_copy(update={"revision": trained["revision"]})


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
    train = _normalise(raw[cfg.train_split], cfg.train_split, path=cfg.path)
    test = _subset(_normalise(raw[cfg.test_split], cfg.test_split, path=cfg.path), cfg.max_test_pairs, seed)
    if not len(train) or not len(test):
        raise DataError(f"data.path {cfg.path!r}: train has {len(train)} and test {len(test)} pairs; both need some")
    held = dev_speeches(train["ID"], cfg.dev_fraction, seed)
    dev = _subset(train.filter(lambda ex: ex["ID"] in held, desc="Dev split"), cfg.max_dev_pairs, seed)
    train = _subset(train.filter(lambda ex: ex["ID"] not in held, desc="Train split"), cfg.max_train_pairs, seed)
    if cfg.helpsteer2 is not None:
        from datasets import concatenate_datasets

        extra = helpsteer2_pairs(cfg.helpsteer2, len(train), seed)
        train = concatenate_datasets([train, extra]).shuffle(seed=seed).flatten_indices()
    if not len(train):
        raise DataError("data.helpsteer2: no usable HelpSteer2 pairs, and max_train_pairs 0 keeps no PsyCoPref ones")
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
    for i, ex in _helpsteer2_rows(path):
        prompt, one, two, strength = ex["prompt"], ex["response_1"], ex["response_2"], ex["preference_strength"]
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
    want = len(rows) if cfg.count == "all" else cfg.count if cfg.count is not None else round(cfg.ratio * n_psycopref)
    if want > len(rows):
        raise DataError(f"data.helpsteer2 asks for {want} pairs but {path} has {len(rows)} usable ones "
                        f"(dropped: {dropped})")
    picked = sorted(random.Random(seed).sample(range(len(rows)), want))
    log.info("helpsteer2: %d of %d usable pairs (dropped %s)", want, len(rows), dropped)
    return Dataset.from_list([rows[i] for i in picked], features=FEATURES)


HELPSTEER2_KEYS = {"prompt": str, "response_1": str, "response_2": str, "preference_strength": int}


def _helpsteer2_rows(path: Path):
    """(line, row) of a HelpSteer2 preference file (JSON lines, gzipped when it ends in .gz); a row that is not
    one (bad JSON, a missing key, a value of the wrong type, a strength outside -3..3) or a file that cannot be
    read is an error naming the file and line."""
    opener = gzip.open if path.suffix == ".gz" else open
    i = 0
    try:
        with opener(path, "rb") as fh:
            for i, raw in enumerate(fh, start=1):
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError as err:
                    raise DataError(f"{path}, line {i}: not valid UTF-8 at byte {err.start} of the line") from None
                if line.strip():
                    yield i, _helpsteer2_row(path, i, line)
    except (OSError, EOFError) as err:  # gzip.BadGzipFile, a truncated .gz
        raise DataError(f"{path}, line {i + 1}: cannot be read: {err}") from None


def _helpsteer2_row(path: Path, i: int, line: str) -> dict:
    where = f"{path}, line {i}: not a HelpSteer2 preference row"
    try:
        ex = json.loads(line)
    except (ValueError, RecursionError) as err:  # bad JSON, nesting or a number too long to read
        raise DataError(f"{where} ({' '.join(str(err).split()) or type(err).__name__})") from None
    if not isinstance(ex, dict):
        raise DataError(f"{where} (expected a JSON object, got {type(ex).__name__})")
    for key, kind in HELPSTEER2_KEYS.items():
        if key not in ex:
            raise DataError(f"{where} (missing key {key!r})")
        if not isinstance(ex[key], kind) or isinstance(ex[key], bool):
            raise DataError(f"{where} (key {key!r}: expected {kind.__name__}, got {type(ex[key]).__name__})")
    if not -3 <= ex["preference_strength"] <= 3:
        raise DataError(f"{where} (key 'preference_strength': expected -3..3, got {ex['preference_strength']})")
    return ex


def response_text(messages: list[dict]) -> str:
    """The answer being scored: the last assistant message."""
    return messages[-1]["content"] if messages else ""
