"""Speech loaders: each source's real file format, its quirks, and clear errors for bad input."""

from __future__ import annotations

import json
import re

import pytest
from speech_files import load, write_csv

from hub_tools.speeches.config import SourceSpec
from hub_tools.speeches.sources import SourceError, load_source
from hub_tools.speeches.transcripts import holds_answer, human_turn

COUNSEL_HEADER = ["questionID", "questionTitle", "questionText", "questionLink", "topic", "therapistInfo",
                  "therapistURL", "answerText", "upvotes", "views", "split"]


def counsel_rows() -> list[list]:
    q1 = "I feel sad every morning.\nHow can I get out of bed?"  # multi-line field, as in the real file
    q2 = "My mother and I argue about everything."
    return [
        [0, "Sad mornings", q1, "l0", "depression", "A, LPC", "u", "answer 1", 3, 10, "train"],
        [0, "Sad mornings", q1, "l0", "depression", "B, LMFT", "u", "answer 2", 1, 10, "train"],
        [0, "Sad mornings", q1, "l0", "depression", "C, PhD", "u", "answer 3", 0, 10, "train"],
        [1, "Arguing", q2, "l1", "family-conflict", "A, LPC", "u", "answer", 2, 5, "val"],
        [2, "Only a title here", "", "l2", "anxiety", "A, LPC", "u", "answer", 2, 5, "test"],
    ]


def test_counsel_chat_dedupes_repeated_questions_and_reads_topic(tmp_path):
    path = write_csv(tmp_path / "20200325_counsel_chat.csv", COUNSEL_HEADER, counsel_rows())
    recs = load("counsel_chat", path)
    assert [r.text for r in recs] == [counsel_rows()[0][2], counsel_rows()[3][2], "Only a title here"]
    assert [r.raw_topic for r in recs] == ["depression", "family-conflict", "anxiety"]
    assert {r.source for r in recs} == {"counsel_chat"}
    # origin = file:line where the record starts; the first question's text spans two lines
    assert recs[0].origin == f"{path}:2"
    assert recs[1].origin == f"{path}:8"


def test_counsel_chat_without_question_id_dedupes_by_text(tmp_path):
    header = ["questionTitle", "questionText", "topic"]
    path = write_csv(tmp_path / "cc.csv", header, [["t", "Same  question", "stress"], ["t", "same question", "stress"],
                                                   ["t", "Other question", "trauma"]])
    assert [r.text for r in load("counsel_chat", path)] == ["Same  question", "Other question"]


def test_counsel_chat_folder_and_limit(tmp_path):
    write_csv(tmp_path / "20220401_counsel_chat.csv", COUNSEL_HEADER, counsel_rows())
    recs = load("counsel_chat", tmp_path, limit=2)
    assert len(recs) == 2 and recs[1].raw_topic == "family-conflict"


def test_amod_json_lines(tmp_path):
    path = tmp_path / "combined_dataset.json"
    rows = [{"Context": "I can't sleep at night.", "Response": "r1"}, {"Context": "I feel alone.", "Response": "r2"}]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n", encoding="utf-8")
    recs = load("amod", tmp_path)  # a folder holding the file
    assert [r.text for r in recs] == ["I can't sleep at night.", "I feel alone."]
    assert recs[1].origin == f"{path}:2" and recs[0].raw_topic is None


def test_mentalchat16k_folder_reads_both_csvs_in_order(tmp_path):
    header = ["instruction", "input", "output"]
    inst = "You are a helpful mental health counselling assistant."
    write_csv(tmp_path / "Synthetic_Data_10K.csv", header, [[inst, "synthetic speech", "o"]])
    write_csv(tmp_path / "Interview_Data_6K.csv", header, [[inst, "interview speech 1", "o"], [inst, "interview speech 2", "o"]])
    write_csv(tmp_path / "unrelated_notes.csv", ["x"], [["not a speech"]])
    recs = load("mentalchat16k", tmp_path)
    assert [r.text for r in recs] == ["interview speech 1", "interview speech 2", "synthetic speech"]
    assert load("mentalchat16k", tmp_path / "Synthetic_Data_10K.csv")[0].text == "synthetic speech"


def test_psych8k_json_list(tmp_path):
    path = tmp_path / "Alexander_Street_shareGPT_2.0.json"
    items = [{"instruction": "You are a therapist.", "input": f"client says {i}", "output": "..."} for i in range(3)]
    path.write_text(json.dumps(items, indent=2), encoding="utf-8")
    recs = load("psych8k", path)
    assert [r.text for r in recs] == ["client says 0", "client says 1", "client says 2"]
    assert recs[2].origin == f"{path}:[2]"


def test_therapistqa_ignores_distortion_labels(tmp_path):
    header = ["Id_Number", "Patient Question", "Distorted part", "Dominant Distortion", "Secondary Distortion (Optional)"]
    row = [1, "Everyone hates me at work.", "Everyone", "Overgeneralization", ""]
    path = write_csv(tmp_path / "Annotated_data.csv", header, [row])
    (rec,) = load("therapistqa", path)
    assert rec.text == "Everyone hates me at work." and rec.raw_topic is None


@pytest.mark.parametrize("fmt", ["jsonl", "json", "csv", "parquet"])
def test_mentalagora_posts_in_every_format(tmp_path, fmt):
    rows = [{"post1": "first post", "post2": "second post", "post3": ""},
            {"post1": "third post", "post2": None, "post3": "fourth"}]
    path = tmp_path / f"therapytalk.{fmt}"
    if fmt == "jsonl":
        path.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    elif fmt == "json":
        path.write_text(json.dumps(rows), encoding="utf-8")
    elif fmt == "csv":
        write_csv(path, ["post1", "post2", "post3"], [[r[k] or "" for k in ("post1", "post2", "post3")] for r in rows])
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist(rows), path)
    assert [r.text for r in load("mentalagora", path)] == ["first post", "second post", "third post", "fourth"]


def test_mentalagora_from_hub_reads_every_split(monkeypatch):
    import datasets

    fake = datasets.DatasetDict({"test": datasets.Dataset.from_dict({"post1": ["hub post"], "post2": [""], "post3": ["more"]})})
    monkeypatch.setattr(datasets, "load_dataset", lambda hub_id: fake)
    recs = list(load_source(SourceSpec(name="mentalagora", hub_id="someone/TherapyTalk")))
    assert [r.text for r in recs] == ["hub post", "more"]
    assert recs[0].origin.startswith("someone/TherapyTalk/test:[0]")


def test_phi2mental_detects_named_column(tmp_path):
    path = write_csv(tmp_path / "phi2-data.csv", ["Context", "Response"], [["My anxiety is bad.", "r"]])
    assert load("phi2mental", path)[0].text == "My anxiety is bad."


@pytest.mark.parametrize("text", [
    "### Human: I keep crying at work. ### Assistant: That sounds hard.",
    "<HUMAN>: I keep crying at work.\n<ASSISTANT>: That sounds hard.",
    "<s>[INST] I keep crying at work. [/INST] That sounds hard.</s>",
    "User: I keep crying at work.\nAssistant: That sounds hard.",
    "Instruct: I keep crying at work.\nOutput: That sounds hard.",  # Phi-2's own format
    "### Instruction:\nI keep crying at work.\n\n### Response:\nThat sounds hard.",  # Alpaca
    "### Instruction\nI keep crying at work.\n### Response\nThat sounds hard.",  # Alpaca without colons
    "### Instruction:\nYou are a counsellor. Reply kindly.\n\n### Input:\nI keep crying at work.\n\n### Response:\nThat sounds hard.",
    "### Instruction:\nI keep crying at work.\n\n### Input:\n\n### Response:\nThat sounds hard.",  # empty Input
])
def test_phi2mental_extracts_human_turn_from_text_column(tmp_path, text):
    path = write_csv(tmp_path / "phi2-data.csv", ["text"], [[text]])
    (rec,) = load("phi2mental", path)
    assert (rec.text, rec.reject) == ("I keep crying at work.", None)


@pytest.mark.parametrize("text", [
    "Instruct: I keep crying at work. Output: That sounds hard.",  # markers on one line: not split
    "I keep crying at work. Assistant: That sounds hard.",
    "<s>[INST] I keep crying at work. <ASSISTANT> That sounds hard. [/INST]</s>",
    "### Human: I keep crying at work. [/INST] That sounds hard.",
])
def test_phi2mental_rejects_a_row_that_still_holds_an_answer(tmp_path, text):
    path = write_csv(tmp_path / "phi2-data.csv", ["text"], [[text], ["Instruct: I sleep badly.\nOutput: Try this."]])
    recs = load("phi2mental", path)
    assert [(r.reject, r.origin) for r in recs] == [("answer_marker", f"{path}:2"), (None, f"{path}:3")]
    assert holds_answer(recs[0].text) and recs[1].text == "I sleep badly."


def test_phi2mental_limit_counts_kept_speeches_only(tmp_path):
    rows = [["Instruct: a. Output: b."], ["Instruct: first\nOutput: x"], ["Instruct: second\nOutput: y"]]
    path = write_csv(tmp_path / "phi2-data.csv", ["text"], rows)
    assert [r.text for r in load("phi2mental", path, limit=1)] == ["a. Output: b.", "first"]


def test_human_turn_leaves_plain_speech_alone():
    plain = "I told my therapist: I am scared. Then I left.\nThe output: nothing changed."
    assert human_turn(plain) == plain and not holds_answer(plain)


def test_phi2mental_unknown_header_lists_columns(tmp_path):
    path = write_csv(tmp_path / "phi2-data.csv", ["foo", "bar"], [["a", "b"]])
    with pytest.raises(SourceError, match=r"phi2-data\.csv:2.*columns found: \['foo', 'bar'\]"):
        load("phi2mental", path)


def test_bundled_reads_text_and_topic(tmp_path):
    path = tmp_path / "sample.jsonl"
    path.write_text(json.dumps({"text": "a speech", "topic_fine": "Anxiety"}) + "\n", encoding="utf-8")
    (rec,) = load("bundled", path)
    assert (rec.text, rec.source, rec.raw_topic) == ("a speech", "bundled", "Anxiety")


def test_bundled_package_corpus_when_present():
    from hub_tools.speeches.sources import bundled_path

    if not bundled_path().is_file():
        pytest.skip("sample_speeches.jsonl not written yet")
    recs = list(load_source(SourceSpec(name="bundled")))
    assert recs and all(r.text and r.raw_topic for r in recs)


# ------------------------------------------------------------------ bad input


def test_missing_file(tmp_path):
    with pytest.raises(SourceError, match=r"nope\.csv.*not found"):
        load("counsel_chat", tmp_path / "nope.csv")


def test_csv_missing_column_names_file_line_and_column(tmp_path):
    path = write_csv(tmp_path / "cc.csv", ["questionID", "question_text"], [[1, "x"]])
    with pytest.raises(SourceError) as err:
        load("counsel_chat", path)
    msg = str(err.value)
    assert str(path) in msg and "line 1" in msg and "questionText" in msg and "question_text" in msg


def test_json_line_missing_key_names_line_and_key(tmp_path):
    path = tmp_path / "combined_dataset.json"
    path.write_text('{"Context": "ok"}\n{"context": "wrong case"}\n', encoding="utf-8")
    with pytest.raises(SourceError, match=rf"{re.escape(str(path))}:2: missing key 'Context'"):
        load("amod", path)


def test_non_utf8_names_file_line_and_byte_offset(tmp_path):
    path = tmp_path / "cc.csv"
    good = b"questionID,questionText,topic\n1,fine text,stress\n"
    path.write_bytes(good + b"2,caf\xe9 latin-1,stress\n")
    offset = len(good) + len(b"2,caf")
    with pytest.raises(SourceError, match=rf"{re.escape(str(path))}: line 3: not valid UTF-8 at byte offset {offset}"):
        load("counsel_chat", path)


def test_invalid_json_line_names_file_and_line(tmp_path):
    path = tmp_path / "combined_dataset.json"
    path.write_text('{"Context": "ok"}\n\n{"Context": "broken"\n', encoding="utf-8")
    with pytest.raises(SourceError, match=rf"{re.escape(str(path))}: line 3 column \d+: invalid JSON"):
        load("amod", path)


def test_invalid_json_list_names_line(tmp_path):
    path = tmp_path / "psych.json"
    path.write_text('[\n {"input": "a"},\n {"input": }\n]', encoding="utf-8")
    with pytest.raises(SourceError, match=rf"{re.escape(str(path))}: line 3 column"):
        load("psych8k", path)


def test_csv_row_with_extra_fields_names_line(tmp_path):
    path = tmp_path / "cc.csv"
    path.write_text("questionID,questionText,topic\n1,ok,stress\n2,too,many,fields\n", encoding="utf-8")
    with pytest.raises(SourceError, match=rf"{re.escape(str(path))}: line 3: 4 fields but the header has 3"):
        load("counsel_chat", path)


def test_unknown_source_and_no_location():
    with pytest.raises(SourceError, match="unknown source 'reddit'"):
        list(load_source(SourceSpec(name="reddit", path="x")))
    with pytest.raises(SourceError, match="set `path`"):
        list(load_source(SourceSpec(name="amod")))


def test_source_error_is_value_error():
    assert issubclass(SourceError, ValueError)


def test_gaps_are_empty_text_and_other_values_are_errors_naming_row_and_key():
    from hub_tools.speeches.readers import text_value

    assert text_value("f.parquet:[3]", "post1", None) == "" == text_value("f.parquet:[3]", "post1", float("nan"))
    for value, kind in ((["a", "b"], "list"), ({"a": 1}, "dict"), (1.5, "float"), (7, "int"), (False, "bool"), (b"x", "bytes")):
        with pytest.raises(SourceError, match=rf"^f\.parquet:\[3\]: key 'post1': expected text, got {kind}"):
            text_value("f.parquet:[3]", "post1", value)
