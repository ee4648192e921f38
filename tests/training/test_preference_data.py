"""Reading pairs: the `pairs` config, the release's `default` config, a save_to_disk folder; the dev split
by speech; HelpSteer2 mixing; errors that name the path, split or line."""

from __future__ import annotations

import gzip
import json

import pytest

from hub_tools.training.preference_data import FEATURES, DataError, helpsteer2_pairs, load_pairs
from hub_tools.training.sections import DataSection, HelpSteer2Section


def test_pairs_config_and_dev_split_by_speech(pairs_repo):
    dd = load_pairs(DataSection(path=str(pairs_repo), dev_fraction=0.25), seed=42)
    assert dd["train"].features == FEATURES and len(dd["test"]) == 20
    assert len(dd["train"]) + len(dd["dev"]) == 48
    assert set(dd["train"]["ID"]).isdisjoint(dd["dev"]["ID"]) and len(set(dd["dev"]["ID"])) == 6  # 25% of 24 speeches
    row = dd["test"][0]
    assert row["prompt"][0]["role"] == "user" and row["chosen"][0]["role"] == "assistant"
    assert row["topic_coarse"] in ("Mental Issues", "Relationships") and row["source"] == "psycopref"
    again = load_pairs(DataSection(path=str(pairs_repo), dev_fraction=0.25), seed=42)
    assert list(again["dev"]["ID"]) == list(dd["dev"]["ID"])  # seeded
    assert len(load_pairs(DataSection(path=str(pairs_repo), dev_fraction=0.0))["dev"]) == 0


def test_release_default_config_gives_the_same_pairs(pairs_repo):
    pairs = load_pairs(DataSection(path=str(pairs_repo), config="pairs", dev_fraction=0))
    release = load_pairs(DataSection(path=str(pairs_repo), config="default", dev_fraction=0))
    for split in ("train", "test"):
        assert release[split].select_columns(["ID", "prompt", "chosen", "rejected"]).to_list() == \
            pairs[split].select_columns(["ID", "prompt", "chosen", "rejected"]).to_list()
    assert set(release["test"]["topic_coarse"]) == {None}


def test_work_dir_pairs_folder_and_subsets(pairs_repo, tmp_path):
    from datasets import load_dataset

    load_dataset(str(pairs_repo), "pairs").save_to_disk(str(tmp_path / "pairs"))
    dd = load_pairs(DataSection(path=str(tmp_path / "pairs"), dev_fraction=0.1, max_train_pairs=7, max_test_pairs=5))
    assert len(dd["train"]) == 7 and len(dd["test"]) == 5
    full = load_pairs(DataSection(path=str(tmp_path / "pairs"), dev_fraction=0.25))
    capped = load_pairs(DataSection(path=str(tmp_path / "pairs"), dev_fraction=0.25, max_dev_pairs=3))
    assert len(full["dev"]) > 3 and len(capped["dev"]) == 3 and set(capped["dev"]["ID"]) <= set(full["dev"]["ID"])
    assert capped["train"]["ID"] == full["train"]["ID"]  # the held-out speeches stay out of train


def test_pairs_without_speech_ids_are_grouped_by_prompt(pairs_repo, tmp_path):
    from datasets import load_dataset

    load_dataset(str(pairs_repo), "pairs").remove_columns("ID").save_to_disk(str(tmp_path / "no_ids"))
    dd = load_pairs(DataSection(path=str(tmp_path / "no_ids"), dev_fraction=0.25))
    assert len(set(dd["train"]["ID"])) + len(set(dd["dev"]["ID"])) == 24  # one id per speech, as with ID
    assert set(dd["train"]["ID"]).isdisjoint(dd["dev"]["ID"])


def test_unreadable_sources_are_named(pairs_repo, tmp_path):
    with pytest.raises(DataError, match="nowhere"):
        load_pairs(DataSection(path=str(tmp_path / "nowhere")))
    with pytest.raises(DataError, match="no split 'validation'"):
        load_pairs(DataSection(path=str(pairs_repo), test_split="validation"))


def _helpsteer2(path, rows):
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row) + "\n")
    return path


HS2 = [
    {"split": "train", "prompt": "p1", "response_1": "a1", "response_2": "b1", "preference_strength": 2},
    {"split": "train", "prompt": "p2", "response_1": "a2", "response_2": "b2", "preference_strength": -1},
    {"split": "train", "prompt": "p3", "response_1": "a3", "response_2": "b3", "preference_strength": 0},
    {"split": "train", "prompt": "hi\n<extra_id_1>Assistant\nyo\n<extra_id_1>User\nmore", "response_1": "a4",
     "response_2": "b4", "preference_strength": 3},
    {"split": "validation", "prompt": "p5", "response_1": "a5", "response_2": "b5", "preference_strength": 1},
]


def test_helpsteer2_sign_ties_and_turns(tmp_path):
    path = _helpsteer2(tmp_path / "preference.jsonl.gz", HS2)
    ds = helpsteer2_pairs(HelpSteer2Section(path=str(path), count=2), n_psycopref=100, seed=0)
    got = {r["prompt"][0]["content"]: (r["chosen"][0]["content"], r["rejected"][0]["content"]) for r in ds}
    assert got == {"p1": ("b1", "a1"), "p2": ("a2", "b2")}  # > 0: response_2 better; < 0: response_1
    assert set(ds["source"]) == {"helpsteer2"}
    assert len(helpsteer2_pairs(HelpSteer2Section(path=str(path), ratio=0.5), n_psycopref=2, seed=0)) == 1
    with pytest.raises(DataError, match="asks for 3 pairs but .* has 2 usable"):
        helpsteer2_pairs(HelpSteer2Section(path=str(path), count=3), n_psycopref=0, seed=0)


def test_helpsteer2_errors_name_the_file_and_line(tmp_path):
    bad = _helpsteer2(tmp_path / "bad.jsonl.gz", [HS2[0], {"prompt": "x"}])
    with pytest.raises(DataError, match=r"bad.jsonl.gz, line 2"):
        helpsteer2_pairs(HelpSteer2Section(path=str(bad), count=1), 10, 0)
    with pytest.raises(DataError, match="data.helpsteer2.path"):
        helpsteer2_pairs(HelpSteer2Section(path=str(tmp_path / "missing.gz"), count=1), 10, 0)


def test_helpsteer2_mixed_into_train_only(pairs_repo, tmp_path):
    path = _helpsteer2(tmp_path / "preference.jsonl.gz", HS2)
    cfg = DataSection(path=str(pairs_repo), dev_fraction=0.25, max_train_pairs=10,
                      helpsteer2=HelpSteer2Section(path=str(path), count=2))
    dd = load_pairs(cfg, seed=1)
    assert len(dd["train"]) == 12 and list(dd["train"]["source"]).count("helpsteer2") == 2
    assert "helpsteer2" not in list(dd["dev"]["source"]) + list(dd["test"]["source"])


def test_helpsteer2_alone_and_every_usable_pair(pairs_repo, tmp_path):
    """The HelpSteer2-only ablations: no PsyCoPref train pairs (dev and test stay PsyCoPref's), 'all' usable ones."""
    from pydantic import ValidationError

    path = _helpsteer2(tmp_path / "preference.jsonl.gz", HS2)
    cfg = DataSection(path=str(pairs_repo), dev_fraction=0.25, max_train_pairs=0,
                      helpsteer2=HelpSteer2Section(path=str(path), count="all"))
    dd = load_pairs(cfg, seed=1)
    assert sorted(r[0]["content"] for r in dd["train"]["prompt"]) == ["p1", "p2"]  # ties, turns, validation dropped
    assert set(dd["train"]["source"]) == {"helpsteer2"} and len(dd["dev"]) > 0 and len(dd["test"]) == 20
    with pytest.raises(ValidationError, match="needs data.helpsteer2.count"):
        DataSection(path=str(pairs_repo), max_train_pairs=0, helpsteer2=HelpSteer2Section(path=str(path), ratio=1.0))
    with pytest.raises(ValidationError, match="needs data.helpsteer2.count"):
        DataSection(path=str(pairs_repo), max_train_pairs=0)
    with pytest.raises(ValidationError, match="at least 1, or 'all'"):
        HelpSteer2Section(path=str(path), count=0)
