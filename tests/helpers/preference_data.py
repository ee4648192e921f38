"""Separable preference pairs for training tests (warm answers chosen, curt answers rejected), and a
dataset repo folder holding them like the dataset stage's (configs `pairs` and `default`)."""

from __future__ import annotations

import random
from pathlib import Path

import yaml

SPEECH_WORDS = "i feel sad alone tired anxious lost at work home school with my family friends partner today".split()
WARM = "that sounds really hard i hear you what feels heaviest right now you are not alone tell me more".split()
CURT = "just stop it get over yourself whatever fine ok no".split()
TOPICS = ["Mental Issues", "Relationships"]


def _sentence(rng: random.Random, words: list[str], n: int) -> str:
    return " ".join(rng.choice(words) for _ in range(n))


def make_pairs(n_speeches: int, seed: int) -> list[dict]:
    """Two pairs per speech: a warm answer beats a curt one. Lengths overlap, so length alone cannot tell."""
    rng = random.Random(seed)
    rows = []
    for s in range(n_speeches):
        speech = _sentence(rng, SPEECH_WORDS, rng.randint(4, 12))
        for pref in range(2):
            warm, curt = _sentence(rng, WARM, rng.randint(3, 10)), _sentence(rng, CURT, rng.randint(3, 10))
            rows.append({"ID": f"s{seed}-{s:03d}", "prefID": pref, "question": speech,
                         "prompt": [{"role": "user", "content": speech}],
                         "chosen": [{"role": "assistant", "content": warm}],
                         "rejected": [{"role": "assistant", "content": curt}],
                         "topic_coarse": TOPICS[s % 2]})
    return rows


def write_pairs_repo(root: Path, n_train: int = 24, n_test: int = 10, flip: set[str] = frozenset()) -> Path:
    """A dataset repo folder at `root`: configs `pairs` (message lists) and `default` (release strings);
    the train pairs of the speech IDs in `flip` prefer the curt answer instead."""
    from datasets import Dataset

    train = [{**r, "chosen": r["rejected"], "rejected": r["chosen"]} if r["ID"] in flip else r
             for r in make_pairs(n_train, seed=1)]
    splits = {"train": train, "test": make_pairs(n_test, seed=2)}
    configs = []
    for name, folder in (("default", "data"), ("pairs", "pairs")):
        files = []
        for split, rows in splits.items():
            if name == "default":
                rows = [{"ID": r["ID"], "prefID": r["prefID"], "question": r["question"], "chosen": r["chosen"][0]["content"],
                         "rejected": r["rejected"][0]["content"]} for r in rows]
            path = root / folder / f"{split}-00000-of-00001.parquet"
            path.parent.mkdir(parents=True, exist_ok=True)
            Dataset.from_list(rows).to_parquet(str(path))
            files.append({"split": split, "path": f"{folder}/{split}-00000-of-00001.parquet"})
        configs.append({"config_name": name, "data_files": files})
    meta = {"license": "cc-by-nc-4.0", "configs": configs}  # the licence the models trained on it inherit
    (root / "README.md").write_text("---\n" + yaml.safe_dump(meta) + "---\n# TinyPref\n")
    return root
