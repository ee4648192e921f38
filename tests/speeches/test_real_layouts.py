"""The real sources as they are published: counsel-chat's three CSV layouts and its Hub file, the gated
Psych8k, TherapistQA's two-file Kaggle folder, and what the speeches report says about them."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from types import SimpleNamespace

import datasets
import pytest
from huggingface_hub.errors import GatedRepoError, HfHubHTTPError
from speech_files import load, write_csv

from hub_tools.speeches.config import SourceSpec, SpeechesConfig
from hub_tools.speeches.sources import SourceError, load_source
from hub_tools.speeches.stage import run_speeches

DEPRESSION = "I barely sleep and I keep thinking about how worthless I am. How can I change this feeling for good?"
SUICIDE = "How can I help my husband after a suicide attempt? He came home from hospital last week and barely speaks to me."
ARGUE = "My mother and I argue about everything, even small things like dinner plans, and I am exhausted by it."
# 20200325_counsel_chat.csv: a leading index column with an empty header cell, and a `split` column
HEADER_2020 = ["", "questionID", "questionTitle", "questionText", "questionLink", "topic", "therapistInfo",
               "therapistURL", "answerText", "upvotes", "views", "split"]


def rows_2020() -> list[list]:
    """ID 2 is shared by two different questions (as 18 IDs are in the real file), each repeated per answer."""
    rows = [
        [2, "Worthless", DEPRESSION, "l", "depression", "A, LPC", "u", "answer 1", 1, 10, "train"],
        [2, "Worthless", DEPRESSION, "l", "depression", "B, LMFT", "u", "answer 2", 0, 10, "train"],
        [2, "Suicide attempt", SUICIDE, "l", "self-harm", "C, PhD", "u", "answer 1", 3, 20, "val"],
        [2, "Suicide attempt", SUICIDE, "l", "self-harm", "D, LPC", "u", "answer 2", 0, 20, "val"],
        [3, "Arguing", ARGUE, "l", "family-conflict", "A, LPC", "u", "answer", 2, 5, "test"],
    ]
    return [[i, *row] for i, row in enumerate(rows)]


@pytest.mark.parametrize("index_header", ["", "Unnamed: 0"])
def test_counsel_chat_2020_keeps_different_questions_that_share_an_id(tmp_path, index_header):
    path = write_csv(tmp_path / "20200325_counsel_chat.csv", [index_header, *HEADER_2020[1:]], rows_2020())
    recs = load("counsel_chat", path)
    assert [(r.text, r.raw_topic) for r in recs] == [(DEPRESSION, "depression"), (SUICIDE, "self-harm"),
                                                      (ARGUE, "family-conflict")]
    assert [r.origin for r in recs] == [f"{path}:2", f"{path}:4", f"{path}:6"]  # every split is read


def test_counsel_chat_from_the_hub_2022_file(monkeypatch):
    cols = ["questionID", "questionTitle", "questionText", "questionLink", "topic", "therapistInfo", "therapistURL",
            "answerText", "upvotes", "views"]
    table = {c: [row[HEADER_2020.index(c)] for row in rows_2020()] for c in cols}  # integer IDs on the Hub
    fake = datasets.DatasetDict({"train": datasets.Dataset.from_dict(table)})
    monkeypatch.setattr(datasets, "load_dataset", lambda hub_id: fake)
    recs = list(load_source(SourceSpec(name="counsel_chat", hub_id="nbertagnolli/counsel-chat")))
    assert [r.text for r in recs] == [DEPRESSION, SUICIDE, ARGUE]
    assert recs[1].origin == "nbertagnolli/counsel-chat/train:[2]"


def write_counselchat_data(path: Path) -> Path:
    """counselchat-data.csv: `topics` holds comma-separated labels; some answers run to ~224k characters."""
    header = ["questionID", "questionTitle", "questionText", "questionUrl", "topics", "therapistName", "therapistUrl",
              "answerText", "upvotes"]
    huge = "<p>" + "Breathe slowly and notice the thought. " * 7700 + "</p>"  # ~300k characters
    assert len(huge) > 300_000 > 131_072  # far past the csv module's default field limit
    return write_csv(path, header, [
        ["5566f94f", "Smoking", DEPRESSION, "u", "Substance Abuse,Addiction", "R D", "u", huge, 0],
        ["5566f94f", "Smoking", DEPRESSION, "u", "Substance Abuse,Addiction", "K M", "u", "short", 1],
        ["556bed15", "Jobs", ARGUE, "u", "Career Counseling", "R D", "u", huge, 0],
        ["556ba115", "Work", SUICIDE, "u", "Career Counseling,Anxiety", "R D", "u", "ok", 0],
    ])


def test_counselchat_data_csv_reads_huge_fields_and_multi_label_topics(tmp_path):
    path = write_counselchat_data(tmp_path / "counselchat-data.csv")
    recs = load("counsel_chat", path)
    assert [(r.text, r.raw_topic) for r in recs] == [
        (DEPRESSION, "Substance Abuse,Addiction"), (ARGUE, "Career Counseling"), (SUICIDE, "Career Counseling,Anxiety")]


def test_unknown_topic_labels_are_reported_and_logged(tmp_path, caplog):
    path = write_counselchat_data(tmp_path / "counselchat-data.csv")
    with caplog.at_level(logging.INFO, logger="psycopref"):
        ds = run_speeches(SpeechesConfig(sources=[SourceSpec(name="counsel_chat", path=str(path))]), tmp_path / "w")
    assert ds["topic_fine"] == ["Substance-abuse", None, "Anxiety"]
    report = json.loads((tmp_path / "w" / "speeches_report.json").read_text())
    assert report["unknown_topic_labels"] == {"Career Counseling": 2}
    assert any(r.levelno == logging.WARNING and "'Career Counseling' x2" in r.getMessage() for r in caplog.records)


# ------------------------------------------------------------------ gated Hub datasets


def _http_error(cls, status: int):
    """huggingface_hub's own error class, around the little of an HTTP response it reads."""
    url = "https://huggingface.co/api/datasets/EmoCareAI/Psych8k"
    response = SimpleNamespace(status_code=status, headers={}, request=SimpleNamespace(url=url))
    return cls(f"{status} Client Error. Cannot access gated repo for url {url}.", response=response)


def _not_found(cause: BaseException | None):
    err = datasets.exceptions.DatasetNotFoundError(
        "Dataset 'EmoCareAI/Psych8k' is a gated dataset on the Hub. You must be authenticated to access it.")
    err.__cause__ = cause  # datasets re-raises it `from None` after trying its cache: the chain may be gone
    return err


@pytest.mark.parametrize("error", [
    lambda: _http_error(GatedRepoError, 401),
    lambda: _http_error(GatedRepoError, 403),
    lambda: _not_found(None),
    lambda: _not_found(_http_error(GatedRepoError, 403)),
    lambda: _not_found(_http_error(HfHubHTTPError, 401)),
])
def test_gated_hub_dataset_says_how_to_get_access(monkeypatch, error):
    def refuse(hub_id):
        raise error()

    monkeypatch.setattr(datasets, "load_dataset", refuse)
    with pytest.raises(SourceError) as err:
        list(load_source(SourceSpec(name="psych8k", hub_id="EmoCareAI/Psych8k")))
    msg = str(err.value)
    assert msg.startswith("EmoCareAI/Psych8k: the dataset is gated on the Hub") and "\n" not in msg
    assert "/datasets/EmoCareAI/Psych8k" in msg and "hf auth login" in msg and "HF_TOKEN" in msg and "`path`" in msg
    assert "cannot load" not in msg


def test_other_hub_failures_are_not_called_gated(monkeypatch):
    def offline(hub_id):
        raise ConnectionError("Couldn't reach 'EmoCareAI/Psych8k' on the Hub (ConnectError)")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(SourceError, match=r"EmoCareAI/Psych8k: cannot load from the Hub: Couldn't reach"):
        list(load_source(SourceSpec(name="psych8k", hub_id="EmoCareAI/Psych8k")))


# ------------------------------------------------------------------ TherapistQA's Kaggle folder


def write_therapistqa(folder: Path) -> Path:
    folder.mkdir()
    write_csv(folder / "Annotated_data.csv",
              ["Id_Number", "Patient Question", "Distorted part", "Dominant Distortion", "Secondary Distortion (Optional)"],
              [[1, ARGUE, "everything", "Overgeneralization", ""], [2, DEPRESSION, "worthless", "Labeling", ""]])
    write_csv(folder / "Therapist_responses.csv", ["Question", "Answer"], [[SUICIDE, "Please call someone."]])
    return folder


def test_therapistqa_folder_reads_the_annotated_file_and_names_the_skipped_one(tmp_path, caplog):
    folder = write_therapistqa(tmp_path / "therapistqa")
    with caplog.at_level(logging.INFO, logger="psycopref"):
        assert [r.text for r in load("therapistqa", folder)] == [ARGUE, DEPRESSION]
    assert any("Therapist_responses.csv" in r.getMessage() and "skipping" in r.getMessage() for r in caplog.records)
    run_speeches(SpeechesConfig(sources=[SourceSpec(name="therapistqa", path=str(folder))]), tmp_path / "w")
    entry = json.loads((tmp_path / "w" / "speeches_report.json").read_text())["per_source"]["therapistqa"]
    assert entry["read"] == [str(folder / "Annotated_data.csv")]
    assert entry["skipped_files"] == [str(folder / "Therapist_responses.csv")]


def test_therapistqa_responses_file_alone_is_an_error_naming_the_column(tmp_path):
    write_csv(tmp_path / "Therapist_responses.csv", ["Question", "Answer"], [[SUICIDE, "a"]])
    with pytest.raises(SourceError, match=r"Therapist_responses\.csv: line 1 \(header\): missing column\(s\) \['Patient Question'\]"):
        load("therapistqa", tmp_path)


def test_phi2mental_rejections_are_counted_per_source_in_the_report(tmp_path):
    rows = [[f"Instruct: {DEPRESSION}\nOutput: Try this."], [f"{ARGUE} Assistant: I hear you."], [f"### Instruction\n{SUICIDE}"]]
    path = write_csv(tmp_path / "phi2-data.csv", ["text"], rows)
    ds = run_speeches(SpeechesConfig(sources=[SourceSpec(name="phi2mental", path=str(path))]), tmp_path / "w")
    assert ds["text"] == [DEPRESSION, SUICIDE]
    report = json.loads((tmp_path / "w" / "speeches_report.json").read_text())
    assert report["steps"]["answer_marker"] == report["per_source"]["phi2mental"]["answer_marker"] == 1
    assert report["steps"]["input"] == 3 and report["steps"]["kept"] == 2
