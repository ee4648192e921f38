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
        if fmt == "parquet" and kind == "list":
            return _parquet([{key: value}]), rf":\[0\]: key '{key}': expected text, got list"
        return None

    return case


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
}
MATRIX = [(name, case) for name in LOADERS for case in CASES if CASES[case](LOADERS[name][0], name, LOADERS[name][2])]


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
    assert len(MATRIX) >= 60


@pytest.mark.parametrize(("name", "case"), MATRIX)
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
