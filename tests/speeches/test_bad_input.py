"""Bad input, tried as a new user would: every loader x every broken file its format can have.

Each case runs `psycopref dataset speeches RECIPE` in-process and must exit 2 with one line on stderr that names
the file and, where there is one, the line or row, and must write no stage output. A few cases run the
real console script in a subprocess. Tiny files only: the whole matrix takes seconds.
"""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from hub_tools.cli import main

SPEECH = "I have felt low for months and I cannot explain it to anyone in my family, which only makes it worse."
# loader: (format, file name, speech key)
LOADERS = {
    "bundled": ("jsonl", "sample_speeches.jsonl", "text"),
    "counsel_chat": ("csv", "20200325_counsel_chat.csv", "questionText"),
    "amod": ("jsonl", "combined_dataset.json", "Context"),
    "mentalchat16k": ("csv", "Interview_Data_6K.csv", "input"),
    "psych8k": ("json", "Alexander_Street_shareGPT_2.0.json", "input"),
    "therapistqa": ("csv", "Annotated_data.csv", "Patient Question"),
    "mentalagora": ("parquet", "therapytalk_test.parquet", "post1"),
    "phi2mental": ("csv", "phi2-data.csv", "text"),
}


def _csv(*rows: list) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue().encode()


def _jsonl(*items) -> bytes:
    return "".join(json.dumps(i) + "\n" for i in items).encode()


def _json(*items) -> bytes:  # one item a line, so item [i] sits on line i + 2
    return ("[\n" + ",\n".join(json.dumps(i) for i in items) + "\n]\n").encode()


def _parquet(rows: list[dict]) -> bytes:
    sink = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows), sink)
    return sink.getvalue()


TEXT_ROW2 = {"jsonl": ":2", "json": r":\[1\]"}  # origin of the second record
WRONG_VALUES = {"list": ["I feel", "sad"], "object": {"text": "I feel sad"}, "number": 42, "bool": True}

Case = Callable[[str, str, str], "tuple[bytes | None, str] | None"]  # (format, loader, key) -> (content, expected)


def case_empty(fmt, name, key):
    return b"", r": the file is empty"


def case_binary(fmt, name, key):
    if fmt == "parquet":
        return None
    return b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00", r": line 3: a NUL byte at byte offset 8"  # after the header's two line feeds


def case_non_utf8(fmt, name, key):
    latin1 = SPEECH.replace("months", "mois d\xe9j\xe0").encode("latin-1")
    if fmt == "csv":
        return _csv([key, "other"], [SPEECH, "x"]) + b'"' + latin1 + b'",x\n', r": line 3: not valid UTF-8 at byte offset \d+"
    if fmt == "jsonl":
        return _jsonl({key: SPEECH}, {key: SPEECH}) + b'{"' + key.encode() + b'": "' + latin1 + b'"}\n', r": line 3: not valid UTF-8"
    if fmt == "json":
        return b'[\n{"' + key.encode() + b'": "ok"},\n{"' + key.encode() + b'": "' + latin1 + b'"}\n]', r": line 3: not valid UTF-8"
    return None


def case_missing_column(fmt, name, key):
    if name == "phi2mental":  # the speech column is detected from the header
        return _csv(["foo", "bar"], [SPEECH, "x"]), r":2: no speech column found; columns found: \['foo', 'bar'\]"
    if fmt == "csv":
        return _csv([key.lower() + "_", "other"], [SPEECH, "x"]), rf": line 1 \(header\): missing column\(s\) \['{key}'\]"
    if fmt in TEXT_ROW2:
        body = (_jsonl if fmt == "jsonl" else _json)({key: SPEECH}, {key.upper(): SPEECH})
        return body, rf"{TEXT_ROW2[fmt]}: missing key '{key}'"
    return _parquet([{"question": SPEECH}]), r":\[0\]: none of the keys \['post1', 'post2', 'post3'\]"


def case_ragged_more(fmt, name, key):
    if fmt != "csv":
        return None
    return _csv([key, "other"], [SPEECH, "x"], ["too", "many", "fields"]), r": line 3: 3 fields but the header has 2"


def case_ragged_fewer(fmt, name, key):
    if fmt != "csv":
        return None
    return _csv([key, "other"], [SPEECH, "x"], [SPEECH]), r": line 3: 1 field\(s\) but the header has 2"


def case_unterminated_quote(fmt, name, key):
    if fmt != "csv":  # the speech that once crashed near de-duplication came from this
        return None
    broken = f'"{SPEECH[:30]},x\n{SPEECH[30:]},y\n'.encode()
    return _csv([key, "other"], [SPEECH, "x"]) + broken, r": line 3: malformed CSV: unexpected end of data"


def case_truncated(fmt, name, key):
    if fmt == "jsonl":
        return _jsonl({key: SPEECH}, {key: SPEECH}) + f'{{"{key}": "{SPEECH[:20]}'.encode(), r": line 3 column \d+: invalid JSON"
    if fmt == "json":
        return _json({key: SPEECH})[:-4] + f',\n{{"{key}": "{SPEECH[:20]}'.encode(), r": line 3 column \d+: invalid JSON"
    return None


def case_non_object(fmt, name, key):
    if fmt == "jsonl":
        return _jsonl({key: SPEECH}, [SPEECH]), r": line 2: expected a JSON object, got list"
    if fmt == "json":
        return _json({key: SPEECH}, SPEECH), r": item \[1\]: expected a JSON object, got str"
    return None


def _wrong(kind: str) -> Case:
    def case(fmt, name, key):
        value = WRONG_VALUES[kind]
        if fmt in TEXT_ROW2:
            body = (_jsonl if fmt == "jsonl" else _json)({key: SPEECH}, {key: value})
            return body, rf"{TEXT_ROW2[fmt]}: key '{key}': expected text, got {type(value).__name__}"
        if fmt == "parquet":
            return _parquet([{key: value}]), rf":\[0\]: key '{key}': expected text, got {type(value).__name__}"
        return None

    return case


def _second_row(fmt: str, key: str, raw: str) -> bytes | None:
    """A JSON source whose second record's `key` is the raw JSON text `raw` (line 2, or item [1] on line 3)."""
    if fmt == "jsonl":
        return _jsonl({key: SPEECH}) + f'{{"{key}": {raw}}}\n'.encode()
    if fmt == "json":
        return f'[\n{json.dumps({key: SPEECH})},\n{{"{key}": {raw}}}\n]\n'.encode()
    return None


JSON_LINE2 = {"jsonl": ": line 2", "json": ": line 3"}  # where the second record's text is


def _not_json(constant: str) -> Case:
    """NaN / Infinity: Python's json writes and reads them, JSON has no such value: an error, never empty text."""
    def case(fmt, name, key):
        body = _second_row(fmt, key, constant)
        return body and (body, rf"{TEXT_ROW2[fmt]}: key '{key}': expected text, got {constant}, which is not a JSON "
                               rf"value; write null for a missing value")

    return case


def case_deeply_nested(fmt, name, key):
    body = _second_row(fmt, key, "[" * 50_000 + "]" * 50_000)  # RecursionError inside json
    return body and (body, rf"{JSON_LINE2[fmt] if fmt == 'jsonl' else ': line 1'}: JSON nested too deeply to read")


def case_long_number(fmt, name, key):
    body = _second_row(fmt, key, "9" * 5_000)  # ValueError: exceeds int()'s 4,300-digit limit
    return body and (body, rf"{JSON_LINE2[fmt]}: a JSON number of more than 4,300 digits")


def case_repeated_key(fmt, name, key):
    body = _second_row(fmt, key, f'"{SPEECH}", "{key}": "{SPEECH[::-1]}"')
    where = {"jsonl": ": line 2", "json": r": item \[1\]"}.get(fmt)
    return body and (body, rf"{where}: key '{key}' appears more than once in the object")


def case_repeated_column(fmt, name, key):
    if fmt != "csv":
        return None
    return _csv([key, "other", key], [SPEECH, "x", SPEECH]), rf": line 1 \(header\): column '{key}' appears more than once"


def case_one_object_of_records(fmt, name, key):
    if fmt not in TEXT_ROW2:
        return None
    body = json.dumps({"data": [{key: SPEECH}, {key: SPEECH}]}, indent=2).encode()
    return body, r": one JSON object over several lines, with lists or objects under \['data'\].*under key 'data'"


def case_pandas_columns(fmt, name, key):
    if fmt not in TEXT_ROW2:  # DataFrame.to_json()'s default layout, pretty-printed
        return None
    body = json.dumps({key: {"0": SPEECH, "1": SPEECH}, "other": {"0": 1, "1": 2}}, indent=1).encode()
    return body, r": one JSON object over several lines.*pandas' to_json default layout"


def case_objects_over_lines(fmt, name, key):
    if fmt not in TEXT_ROW2:  # pretty-printed objects one after another: neither JSON lines nor a list
        return None
    body = (json.dumps({key: SPEECH}, indent=2) + "\n" + json.dumps({key: SPEECH}, indent=2)).encode()
    return body, r": line 3: objects spread over several lines one after another"


def case_no_rows(fmt, name, key):
    if fmt == "jsonl":
        return None  # blank lines only: the empty-file case
    if fmt == "parquet":
        sink = io.BytesIO()
        pq.write_table(pa.table({key: pa.array([], pa.string())}), sink)
        content = sink.getvalue()
    else:
        content = _csv([key, "other"]) if fmt == "csv" else b"[\n]\n"
    return content, rf": source '{name}': no speech found: the input holds no data rows"


def case_corrupt_parquet(fmt, name, key):
    if fmt != "parquet":
        return None
    return b"PAR1" + b"\x07" * 64 + b"PAR1", r": not a readable parquet file"


def case_missing_path(fmt, name, key):
    return None, rf": source '{name}': file or folder not found"


CASES: dict[str, Case] = {
    "empty": case_empty, "binary": case_binary, "non_utf8": case_non_utf8, "missing_column": case_missing_column,
    "ragged_more": case_ragged_more, "ragged_fewer": case_ragged_fewer, "unterminated_quote": case_unterminated_quote,
    "truncated": case_truncated, "non_object": case_non_object, "corrupt_parquet": case_corrupt_parquet,
    **{f"wrong_type_{kind}": _wrong(kind) for kind in WRONG_VALUES}, "missing_path": case_missing_path,
    "nan": _not_json("NaN"), "infinity": _not_json("-Infinity"), "deeply_nested": case_deeply_nested,
    "long_number": case_long_number, "repeated_key": case_repeated_key, "repeated_column": case_repeated_column,
    "one_object_of_records": case_one_object_of_records, "pandas_columns": case_pandas_columns,
    "objects_over_lines": case_objects_over_lines, "no_rows": case_no_rows,
}
MATRIX = [(name, case) for name in LOADERS for case in CASES if CASES[case](LOADERS[name][0], name, LOADERS[name][2])]
MATRIX_IDS = [f"file{i:03d}-{name}-{case}" for i, (name, case) in enumerate(MATRIX, start=1)]  # the count shows


def write_case(tmp_path: Path, name: str, case: str) -> tuple[Path, Path, str]:
    """The broken file, a recipe reading it, and the regex the error must match."""
    fmt, file_name, key = LOADERS[name]
    content, expected = CASES[case](fmt, name, key)
    path = tmp_path / "data" / file_name
    if content is not None:
        path.parent.mkdir()
        path.write_bytes(content)
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump({"work_dir": str(tmp_path / "work"),
                                      "speeches": {"sources": [{"name": name, "path": str(path)}]}}))
    return path, recipe, re.escape(str(path)) + expected


def test_the_matrix_covers_every_loader_and_case():
    assert {name for name, _ in MATRIX} == set(LOADERS)
    assert {case for _, case in MATRIX} == set(CASES)
    assert len(MATRIX) >= 100


@pytest.mark.parametrize(("name", "case"), MATRIX, ids=MATRIX_IDS)
def test_bad_input_is_one_line_naming_file_and_row_and_writes_nothing(tmp_path, capsys, name, case):
    _, recipe, expected = write_case(tmp_path, name, case)
    assert main(["dataset", "speeches", str(recipe)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Traceback" not in err, err
    assert re.match(rf"psycopref: error: {expected}", err), err
    assert not (tmp_path / "work" / "speeches").exists() and not (tmp_path / "work" / "speeches_report.json").exists()


@pytest.mark.parametrize(("name", "case"), [("counsel_chat", "unterminated_quote"), ("amod", "wrong_type_list"),
                                            ("mentalagora", "corrupt_parquet")])
def test_the_console_script_prints_one_error_line(tmp_path, name, case):
    _, recipe, expected = write_case(tmp_path, name, case)
    out = subprocess.run([sys.executable, "-m", "hub_tools.cli", "dataset", "speeches", str(recipe)], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    errors = [line for line in out.stderr.splitlines() if line.startswith("psycopref: error:")]
    assert len(errors) == 1 and re.match(rf"psycopref: error: {expected}", errors[0]), out.stderr


def test_no_surviving_speech_is_an_error_and_keeps_the_previous_output(tmp_path, capsys):
    data = tmp_path / "combined_dataset.json"
    data.write_bytes(_jsonl({"Context": SPEECH}, {"Context": None}, {"Context": "Too short."}))
    recipe = tmp_path / "recipe.yaml"

    def run(**speeches) -> int:
        recipe.write_text(yaml.safe_dump({"work_dir": str(tmp_path / "work"), "speeches": {
            "sources": [{"name": "amod", "path": str(data)}], **speeches}}))
        return main(["dataset", "speeches", str(recipe)])

    assert run() == 0
    out = tmp_path / "work" / "speeches"
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    capsys.readouterr()
    assert run(min_chars=500) == 2
    err = capsys.readouterr().err.strip()
    report = tmp_path / "work" / "speeches_report.json"
    assert err.count("\n") == 0 and "no speech survived: 3 loaded, removed empty 1, too_short 2" in err
    assert str(report) in err
    assert json.loads(report.read_text())["per_source"]["amod"]["empty"] == 1  # null is empty, not "None"
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_a_corpus_with_fewer_words_than_a_shingle_builds(tmp_path):
    """What an unterminated quote used to produce: one 150-character, two-word speech."""
    data = tmp_path / "combined_dataset.json"
    two_words = "a" * 75 + " " + "b" * 74
    data.write_bytes(_jsonl({"Context": two_words}))
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump({"work_dir": str(tmp_path / "work"),
                                      "speeches": {"sources": [{"name": "amod", "path": str(data)}]}}))
    assert main(["dataset", "speeches", str(recipe)]) == 0
    report = json.loads((tmp_path / "work" / "speeches_report.json").read_text())
    assert report["steps"]["kept"] == 1


def test_invisible_text_is_no_speech_and_the_report_says_why(tmp_path, capsys):
    """Issue 16: 150 zero-width spaces, bidi marks + BOM + word joiners, punctuation only and escaped NULs
    were kept as 100-1000-character speeches. Each is dropped with its reason in speeches_report.json."""
    invisible = {"zero_width": "\u200b" * 150, "bidi_bom_joiners": "\u200e\u202e\ufeff\u2060\u2066\u2069" * 25,
                 "nul": "\x00" * 150}
    data = tmp_path / "combined_dataset.json"
    data.write_text("".join(json.dumps({"Context": t}) + "\n" for t in [*invisible.values(), ". " * 75])
                    + json.dumps({"Context": "\u200b" + SPEECH + "\x00\u202e"}) + "\n")
    assert "\\u0000" in data.read_text()  # the NUL is escaped, as a JSON writer writes it
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump({"work_dir": str(tmp_path / "work"),
                                      "speeches": {"sources": [{"name": "amod", "path": str(data)}]}}))
    assert main(["dataset", "speeches", str(recipe)]) == 0, capsys.readouterr().err
    report = json.loads((tmp_path / "work" / "speeches_report.json").read_text())
    assert report["per_source"]["amod"] | {"read": None, "skipped_files": None, "topic_method": None} == {
        "input": 5, "answer_marker": 0, "empty": 3, "too_short": 0, "too_long": 0, "too_few_letters": 1,
        "exact_dup": 0, "near_dup": 0, "kept": 1, "read": None, "skipped_files": None, "topic_method": None}
    from datasets import load_from_disk

    assert load_from_disk(str(tmp_path / "work" / "speeches"))["text"] == [SPEECH]  # what a reader sees


def test_one_pretty_printed_record_and_a_list_over_many_lines_are_read(tmp_path, capsys):
    """A JSON source file holding one object over several lines was reported as 'line 1 column 2: invalid JSON'."""
    one = tmp_path / "one" / "combined_dataset.json"
    one.parent.mkdir()
    one.write_text(json.dumps({"Context": SPEECH, "Response": "..."}, indent=2))
    many = tmp_path / "many" / "Alexander_Street_shareGPT_2.0.json"
    many.parent.mkdir()
    other = SPEECH.replace("family", "friends at school and at work")
    many.write_text(json.dumps([{"input": other, "output": "..."}, {"input": SPEECH + " Again.", "output": ""}], indent=4))
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump({"work_dir": str(tmp_path / "work"), "speeches": {
        "near_dedup": False, "sources": [{"name": "amod", "path": str(one)}, {"name": "psych8k", "path": str(many)}]}}))
    assert main(["dataset", "speeches", str(recipe)]) == 0, capsys.readouterr().err
    report = json.loads((tmp_path / "work" / "speeches_report.json").read_text())
    assert (report["per_source"]["amod"]["kept"], report["per_source"]["psych8k"]["kept"]) == (1, 2)

