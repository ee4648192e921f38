"""The test speeches a win-rate evaluation answers: one row per speech with its id, text and coarse topic.

Reads the `speeches` config of a dataset (columns id, text, topic_coarse) or a pairs config (`pairs`, or
the public release's `default`: ID, question, topic_coarse where present), which holds one row per pair
and is reduced to one speech per ID. Sources: a dataset repo folder, a `save_to_disk` folder or a Hub id.
"""

from __future__ import annotations

import logging
from pathlib import Path

from datasets import Dataset, DatasetDict, Features, Value

from ...errors import PsycoprefError
from ...generate.stage import select_speeches
from ...io import load_repo_dataset
from .config import EvalSpeeches

log = logging.getLogger("psycopref")

UNLABELLED = "Unlabelled"  # the topic of a speech no source or classifier labelled
FEATURES = Features({"id": Value("string"), "text": Value("string"), "topic_coarse": Value("string")})


class SpeechesError(PsycoprefError, ValueError):
    """Test speeches that cannot be read; the message names the path, config, split or column."""


def read_split(path: str, config: str, split: str) -> Dataset:
    """One split of a `save_to_disk` folder (a Dataset is taken whole), else of `config` in a repo folder or Hub id."""
    from datasets import load_from_disk

    where = f"speeches.path {path!r}"
    local = Path(path).expanduser()
    try:
        if (local / "dataset_dict.json").is_file() or (local / "state.json").is_file():
            data = load_from_disk(str(local))
        else:
            data = load_repo_dataset(local if local.exists() else path, config)
    except (FileNotFoundError, ValueError, ConnectionError, OSError) as err:
        raise SpeechesError(f"{where} (config {config!r}) cannot be read: {err}") from None
    if isinstance(data, DatasetDict):
        if split not in data:
            raise SpeechesError(f"{where} (config {config!r}) has no split {split!r} (has {', '.join(data)})")
        return data[split]
    return data


def normalise(ds: Dataset, source: str) -> Dataset:
    """id, text, topic_coarse from a speeches table (id, text) or a pairs table (ID, question: first row per ID)."""
    cols = set(ds.column_names)
    if {"id", "text"} <= cols:
        ids, texts = ds["id"], ds["text"]
    elif {"ID", "question"} <= cols:
        ids, texts = ds["ID"], ds["question"]
    else:
        raise SpeechesError(f"{source}: columns {sorted(cols)}; expected id and text (speeches) or ID and question (pairs)")
    topics = ds["topic_coarse"] if "topic_coarse" in cols else [None] * len(ds)
    rows, seen = [], set()
    for sid, text, topic in zip(ids, texts, topics):
        if str(sid) in seen:  # a pairs table repeats its speech once per pair
            continue
        seen.add(str(sid))
        rows.append({"id": str(sid), "text": text or "", "topic_coarse": topic or UNLABELLED})
    return Dataset.from_list(rows, features=FEATURES)


def load_test_speeches(cfg: EvalSpeeches, seed: int = 42) -> Dataset:
    """The speeches to evaluate on: id, text, topic_coarse; a seeded subset of `cfg.limit` when set."""
    source = f"speeches.path {cfg.path!r} (config {cfg.config!r}, split {cfg.split!r})"
    speeches = select_speeches(normalise(read_split(cfg.path, cfg.config, cfg.split), source), cfg.limit, seed)
    if not len(speeches):
        raise SpeechesError(f"{source} holds no speeches")
    log.info("eval: %d test speeches from %s", len(speeches), source)
    return speeches
