"""The test speeches a win-rate evaluation answers: one row per speech with its id, text and coarse topic.

Reads the `speeches` config of a dataset (columns id, text, topic_coarse) or a pairs config (`pairs`, or
the public release's `default`: ID, question, topic_coarse where present), which holds one row per pair
and is reduced to one speech per ID. Sources: a dataset repo folder, a `save_to_disk` folder or a Hub id.
"""

from __future__ import annotations

import logging

from datasets import Dataset, DatasetDict, Features, Value

from ...errors import PsycoprefError
from ...generate.stage import select_speeches
from ...io import read_dataset
from .config import EvalSpeeches

log = logging.getLogger("psycopref")

UNLABELLED = "Unlabelled"  # the topic of a speech no source or classifier labelled
FEATURES = Features({"id": Value("string"), "text": Value("string"), "topic_coarse": Value("string")})


class SpeechesError(PsycoprefError, ValueError):
    """Test speeches that cannot be read; the message names the path, config, split or column."""


def read_split(path: str, config: str, split: str) -> Dataset:
    """One split of a `save_to_disk` folder (a Dataset is taken whole), else of `config` in a repo folder or Hub id."""
    where = f"speeches.path {path!r}"
    data = read_dataset(path, config, where, SpeechesError)
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
    for i, (sid, text, topic) in enumerate(zip(ids, texts, topics)):
        if text is not None and not isinstance(text, str):
            raise SpeechesError(f"{source}: row {i}: expected text, got {type(text).__name__} {str(text)[:40]!r}")
        if str(sid) in seen:  # a pairs table repeats its speech once per pair
            continue
        seen.add(str(sid))
        rows.append({"id": str(sid), "text": text or "", "topic_coarse": topic or UNLABELLED})
    return Dataset.from_dict({k: [r[k] for r in rows] for k in FEATURES}, features=FEATURES)  # rows may be none


def load_test_speeches(cfg: EvalSpeeches, seed: int = 42) -> Dataset:
    """The speeches to evaluate on: id, text, topic_coarse; a seeded subset of `cfg.limit` when set."""
    source = f"speeches.path {cfg.path!r} (config {cfg.config!r}, split {cfg.split!r})"
    speeches = select_speeches(normalise(read_split(cfg.path, cfg.config, cfg.split), source), cfg.limit, seed)
    if not len(speeches):
        raise SpeechesError(f"{source} holds no speeches")
    log.info("eval: %d test speeches from %s", len(speeches), source)
    return speeches
