"""Fixtures for the reward-model tests: a tiny random Llama with a word-level tokenizer trained on the fly,
and a dataset repo folder of separable preference pairs (configs `pairs` and `default`)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from reward_helpers import CURT, SPEECH_WORDS, WARM, make_pairs
from tiny_models import save_tiny_llama


@pytest.fixture(scope="session")
def tiny_base(tmp_path_factory) -> Path:
    """A 2-layer, hidden-32 random Llama (a causal LM, as a real base) whose word-level tokenizer is trained
    on the fixture corpus, with a chat template and a pad token."""
    pytest.importorskip("torch")
    return save_tiny_llama(tmp_path_factory.mktemp("tiny-llama"),
                           corpus=[" ".join(SPEECH_WORDS), " ".join(WARM), " ".join(CURT)])


@pytest.fixture(scope="session")
def pairs_repo(tmp_path_factory) -> Path:
    """A dataset repo folder like the dataset stage's: configs `pairs` and `default` (release strings)."""
    from datasets import Dataset

    root = tmp_path_factory.mktemp("datasets") / "datasets" / "test-org" / "TinyPref"
    splits = {"train": make_pairs(24, seed=1), "test": make_pairs(10, seed=2)}
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
    (root / "README.md").write_text("---\n" + yaml.safe_dump({"configs": configs}) + "---\n# TinyPref\n")
    return root
