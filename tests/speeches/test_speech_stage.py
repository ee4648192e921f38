"""Stage 1 end to end on small files: dataset schema, ids, report, resumability, atomic output."""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import datasets
import pytest

from hub_tools.config import Endpoint
from hub_tools.errors import StageError
from hub_tools.serving import Backend, Completion, register_backend
from hub_tools.serving.runtime import Runtime
from hub_tools.speeches import stage as stage_mod
from hub_tools.speeches.config import SourceSpec, SpeechesConfig
from hub_tools.speeches.stage import run_speeches

SHARED = ("My husband and I have been fighting about money for months and it is wearing us both down. "
          "I don't know how to start the conversation without it becoming another fight.")
CC_ONLY = ("Ever since my father died last spring I cannot concentrate at work. People keep telling me it "
           "should be getting easier by now, and I feel like something is wrong with me.")
AMOD_ONLY = ("I have panic attacks before every exam. My heart races, my hands shake and I forget everything I "
             "studied, even though I knew the material the night before.")


@pytest.fixture
def sources(tmp_path):
    cc = tmp_path / "20200325_counsel_chat.csv"
    with cc.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["questionID", "questionTitle", "questionText", "topic", "answerText"])
        w.writerow([1, "Money fights", SHARED, "marriage", "a1"])
        w.writerow([1, "Money fights", SHARED, "marriage", "a2"])  # repeated once per answer
        w.writerow([2, "Grief", CC_ONLY, "grief-and-loss", "a1"])
        w.writerow([3, "Short", "Too short to keep.", "stress", "a1"])
        w.writerow([4, "Odd", "x " * 80, "not-a-topic", "a1"])
    amod = tmp_path / "combined_dataset.json"
    rows = [{"Context": SHARED.upper(), "Response": "r"}, {"Context": AMOD_ONLY, "Response": "r"}]
    amod.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    return [SourceSpec(name="counsel_chat", path=str(cc)), SourceSpec(name="amod", path=str(amod))]


def recipe(tmp_path, sources, **speeches) -> tuple[SpeechesConfig, Path]:
    return SpeechesConfig(sources=sources, **speeches), tmp_path / "work"


def test_end_to_end_columns_types_ids_and_report(tmp_path, sources):
    ds = run_speeches(*recipe(tmp_path, sources))
    assert ds.column_names == ["id", "text", "source", "topic_fine", "topic_coarse", "topic_method", "n_chars"]
    assert ds.features["n_chars"] == datasets.Value("int64")
    assert all(ds.features[c] == datasets.Value("string") for c in ds.column_names if c != "n_chars")
    rows = ds.to_list()
    assert [r["text"] for r in rows] == [SHARED, CC_ONLY, "x " * 79 + "x", AMOD_ONLY]  # counsel-chat wins the dup
    assert [r["source"] for r in rows] == ["counsel_chat", "counsel_chat", "counsel_chat", "amod"]
    assert rows[0]["id"] == "counsel_chat-" + hashlib.sha1(SHARED.encode()).hexdigest()[:12]
    assert (rows[0]["topic_fine"], rows[0]["topic_coarse"], rows[0]["topic_method"]) == (
        "Marriage", "Relationships and Interpersonal Dynamics", "source")
    assert rows[1]["topic_fine"] == "Grief-and-loss"
    assert (rows[2]["topic_fine"], rows[2]["topic_method"]) == (None, "unlabelled")
    assert (rows[3]["topic_fine"], rows[3]["topic_method"]) == (None, "unlabelled")
    assert [r["n_chars"] for r in rows] == [len(r["text"]) for r in rows]

    report = json.loads((tmp_path / "work" / "speeches_report.json").read_text())
    assert report["steps"]["input"] == 6 and report["steps"]["kept"] == 4
    assert report["steps"]["too_short"] == 1 and report["steps"]["exact_dup"] == 1
    assert report["per_source"]["amod"]["exact_dup"] == 1 and report["per_source"]["amod"]["kept"] == 1
    assert report["per_source"]["counsel_chat"]["input"] == 4  # the repeated question counted once
    assert report["topic_method"] == {"source": 2, "llm": 0, "unlabelled": 2}
    assert report["unknown_topic_labels"] == {"not-a-topic": 1}  # reported, not silently dropped
    assert report["per_source"]["amod"]["read"] == [sources[1].path]
    assert report["per_source"]["counsel_chat"]["skipped_files"] == []
    assert not list((tmp_path / "work").glob(".speeches.*"))  # no temp folders left


def test_rerun_reuses_output_and_config_change_rebuilds(tmp_path, sources, monkeypatch):
    first = run_speeches(*recipe(tmp_path, sources))

    def boom(*a, **k):
        raise AssertionError("sources were read again")

    monkeypatch.setattr(stage_mod, "load_source", boom)
    again = run_speeches(*recipe(tmp_path, sources))
    assert again.to_list() == first.to_list()
    with pytest.raises(AssertionError, match="read again"):
        run_speeches(*recipe(tmp_path, sources, min_chars=169))  # a different config is not reused
    monkeypatch.undo()
    rebuilt = run_speeches(*recipe(tmp_path, sources, min_chars=169))
    assert rebuilt["text"] == [CC_ONLY]


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_no_surviving_speech_stops_with_one_line_and_keeps_the_previous_output(tmp_path, sources):
    run_speeches(*recipe(tmp_path, sources))
    out, report_path = tmp_path / "work" / "speeches", tmp_path / "work" / "speeches_report.json"
    before = _tree(out)
    with pytest.raises(StageError) as err:
        run_speeches(*recipe(tmp_path, sources, min_chars=500))
    msg = str(err.value)
    assert "\n" not in msg and "no speech survived" in msg and str(report_path) in msg
    report = json.loads(report_path.read_text())  # written first, so the message's counts can be read there
    assert report["steps"]["kept"] == 0 and report["steps"]["too_short"] == report["steps"]["input"] == 6
    assert f"too_short {report['steps']['too_short']}" in msg and "min_chars" in msg
    assert report["per_source"]["amod"]["too_short"] == 2
    assert _tree(out) == before  # the previous output is untouched
    assert not list((tmp_path / "work").glob(".speeches.*"))


def test_edited_input_file_invalidates_output(tmp_path, sources):
    run_speeches(*recipe(tmp_path, sources))
    amod = tmp_path / "combined_dataset.json"
    amod.write_text(amod.read_text() + "\n" + json.dumps({"Context": CC_ONLY.replace("spring", "winter")}))
    ds = run_speeches(*recipe(tmp_path, sources, near_dedup=False))
    assert len(ds) == 5


def test_crash_while_saving_keeps_previous_output(tmp_path, sources, monkeypatch):
    first = run_speeches(*recipe(tmp_path, sources))

    def crash(self, path, *a, **k):
        Path(path).mkdir(parents=True)  # half-written output
        raise RuntimeError("disk full")

    monkeypatch.setattr(datasets.Dataset, "save_to_disk", crash)
    with pytest.raises(RuntimeError, match="disk full"):
        run_speeches(*recipe(tmp_path, sources, min_chars=150))
    monkeypatch.undo()
    still = datasets.load_from_disk(str(tmp_path / "work" / "speeches"))
    assert still.to_list() == first.to_list()
    run_speeches(*recipe(tmp_path, sources, min_chars=150))  # the next run cleans the crash's temp folder
    assert not list((tmp_path / "work").glob(".speeches.*"))


class FakeBackend(Backend):
    name = "fake"
    supports_json_schema = True

    def __init__(self):
        self.calls = 0
        self.closed = False

    def chat(self, messages, params, json_schema=None):
        self.calls += 1
        text = messages[0]["content"]
        return Completion(json.dumps({"topic": "Anxiety" if "panic" in text else "Loneliness"}))

    def close(self):
        self.closed = True


def test_classifier_labels_speeches_without_usable_topic(tmp_path, sources):
    backends: list[FakeBackend] = []

    @register_backend("fake-topic-stage")
    def factory(endpoint, managed_url=None):
        assert endpoint.model == "topic-model"
        backends.append(FakeBackend())
        return backends[-1]

    cfg, work = recipe(tmp_path, sources, classifier=Endpoint(backend="fake-topic-stage", model="topic-model",
                                                             params={"temperature": 0}))
    with Runtime(work, [cfg.classifier]) as rt:
        rows = run_speeches(cfg, work, rt).to_list()
    by_text = {row["text"]: row for row in rows}
    assert (by_text[AMOD_ONLY]["topic_fine"], by_text[AMOD_ONLY]["topic_method"]) == ("Anxiety", "llm")
    assert by_text[AMOD_ONLY]["topic_coarse"] == "Core Mental Health Issues"
    odd = by_text["x " * 79 + "x"]
    assert (odd["topic_fine"], odd["topic_method"]) == (None, "unlabelled")  # invalid twice: not guessed
    assert by_text[SHARED]["topic_method"] == "source"
    assert backends[0].calls == 3 and backends[0].closed  # 1 valid + 2 invalid attempts
    assert (tmp_path / "work" / "cache.sqlite").is_file()

    (tmp_path / "work" / "speeches" / stage_mod.MARKER).unlink()  # force a rebuild: the cache answers
    run_speeches(cfg, work)  # opens a Runtime of its own for the classifier
    assert backends[1].calls == 0
