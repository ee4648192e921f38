"""Broken input files for every loader besides the speech sources (tests/speeches/test_bad_input.py): the
preference pairs reward models and DPO train on, HelpSteer2's preference file, the test speeches of a
win-rate evaluation, and expert-validation sheets and keys.

Each case builds its broken file, runs the command that reads it in-process and must exit 2 with exactly
one error line naming the file (or data path) and the line, split, row or column, no traceback, and no
output beyond the run's log and resolved recipe. The ids count the cases (file001, file002, ...).
"""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from datasets import Dataset, DatasetDict

from hub_tools.annotate.pair_sheets import QUESTIONS
from hub_tools.cli import main

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "recipes" / "smollm2-135m-instruct"
UNREACHABLE = "http://127.0.0.1:9/v1"  # never called: the input fails first


def _msgs(role: str, text: str) -> list[dict]:
    return [{"role": role, "content": text}]


def pairs(n: int, **columns) -> Dataset:
    """`n` pairs in the pairs config's columns; `columns` replace or add columns."""
    data = {"ID": [f"s{i}" for i in range(n)], "prompt": [_msgs("user", f"question {i}") for i in range(n)],
            "chosen": [_msgs("assistant", "a kind answer") for _ in range(n)],
            "rejected": [_msgs("assistant", "a curt answer") for _ in range(n)], "topic_coarse": ["Anxiety"] * n}
    return Dataset.from_dict({**data, **columns})


def saved(path: Path, **splits: Dataset) -> Path:
    DatasetDict(splits).save_to_disk(str(path), num_shards=dict.fromkeys(splits, 1))  # an empty split too
    return path


def repo(path: Path, readme: str = "", **files: bytes) -> Path:
    """A dataset repo folder: `files` under it, a README.md card (`readme`, else none)."""
    for name, content in files.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_bytes(content)
    if readme:
        (path / "README.md").write_text(readme)
    return path


CORRUPT = b"PAR1" + b"\x07" * 64 + b"PAR1"
ROW = {"prompt": "How do I tell my sister?", "response_1": "You could...", "response_2": "Try saying...",
       "preference_strength": 2}


def jsonl(*rows) -> bytes:
    return "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows).encode()


@dataclass
class Case:
    """`build(folder)` writes the broken input and returns the CLI arguments after the command's recipe (or the
    whole argv for annotate); stderr's error line must match `error` ({dir} is the case's folder)."""

    id: str
    command: str  # reward train, policy dpo, policy eval, annotate
    build: Callable[[Path], list[str]]
    error: str


def data_path(make: Callable[[Path], Path]) -> Callable[[Path], list[str]]:
    return lambda d: ["--data.path", str(make(d)), "--data.dataset_id", "Org/Pairs"]


def helpsteer2(content: bytes, name: str = "preference.jsonl") -> Callable[[Path], list[str]]:
    def build(d: Path) -> list[str]:
        good = saved(d / "pairs", train=pairs(8), test=pairs(2))
        (d / name).write_bytes(content)
        return ["--data.path", str(good), "--data.dataset_id", "Org/Pairs",
                "--data.helpsteer2", json.dumps({"path": str(d / name), "count": 1})]
    return build


def eval_speeches(make: Callable[[Path], Path]) -> Callable[[Path], list[str]]:
    return lambda d: ["--speeches.path", str(make(d))]


def sheet(content: bytes | None, name: str = "sheet.csv", key: bytes | None = None) -> Callable[[Path], list[str]]:
    def build(d: Path) -> list[str]:
        if content is not None:
            (d / name).write_bytes(content)
        good_key = jsonl({"item_id": "i1", "chosen": "A", "labels": dict.fromkeys(QUESTIONS, "chosen")})
        if key is not False:
            (d / "key.jsonl").write_bytes(key if key is not None else good_key)
        return ["annotate", "score", str(d / name), "--key", str(d / "key.jsonl")]
    return build


HEADER = ",".join(["item_id", *(f"pref_{q}" for q in QUESTIONS), "annotator"])
FILLED = ",".join(["i1", *("A" for _ in QUESTIONS), "Dr Lee"])
D = r"{dir}"

CASES = [
    # --- preference pairs (data.path) of a reward model or a DPO policy
    Case("pairs-missing-path", "reward train", data_path(lambda d: d / "nope"), rf"data.path '{D}/nope' \(config 'pairs'\) cannot be read"),
    Case("pairs-empty-folder", "reward train", data_path(lambda d: repo(d / "empty", "", **{".keep": b""})),
         rf"data.path '{D}/empty' \(config 'pairs'\) cannot be read"),
    Case("pairs-corrupt-parquet", "reward train", data_path(lambda d: repo(d / "r", "", **{
        "pairs/train-00000.parquet": CORRUPT, "pairs/test-00000.parquet": CORRUPT})),
         rf"data.path '{D}/r' \(config 'pairs'\) cannot be read: .*"),
    Case("pairs-broken-card", "reward train", data_path(lambda d: repo(d / "r", "---\nconfigs: [\n---\n", **{
        "pairs/train-00000.parquet": b""})), rf"data.path '{D}/r' \(config 'pairs'\) cannot be read: .*"),
    Case("pairs-unknown-config", "reward train", lambda d: [*data_path(lambda d: repo(d / "r", "", **{
        "data/train-0.csv": b"a,b\n1,2\n"}))(d), "--data.config", "nope"], rf"data.path '{D}/r' \(config 'nope'\) cannot be read"),
    Case("pairs-corrupt-dataset-dict", "reward train", data_path(lambda d: repo(d / "r", "", **{
        "dataset_dict.json": b"{splits: [train"})), rf"data.path '{D}/r' \(config 'pairs'\) cannot be read"),
    Case("pairs-one-table", "reward train", data_path(lambda d: pairs(3).save_to_disk(str(d / "one")) or d / "one"),
         rf"data.path '{D}/one' holds one table, not splits"),
    Case("pairs-no-test-split", "reward train", data_path(lambda d: saved(d / "p", train=pairs(5))),
         rf"data.path '{D}/p' has no split 'test' \(has train\)"),
    Case("pairs-wrong-columns", "reward train", data_path(lambda d: saved(d / "p", train=Dataset.from_dict({"x": [1]}),
                                                                          test=Dataset.from_dict({"x": [1]}))),
         r"split 'train' has columns \['x'\]; expected prompt or question, chosen, rejected"),
    Case("pairs-number-answer", "reward train", data_path(lambda d: saved(d / "p", train=pairs(4, chosen=[1, 2, 3, 4]),
                                                                          test=pairs(2))),
         rf"data.path '{D}/p', split 'train', row 0, column 'chosen': expected a text or a non-empty list of "
         r"\{role, content\} messages, got int 1"),
    Case("pairs-message-without-role", "reward train", data_path(lambda d: saved(
        d / "p", train=pairs(4), test=pairs(2, prompt=[[{"text": "q"}]] * 2))),
         rf"data.path '{D}/p', split 'test', row 0, column 'prompt': expected a text or a non-empty list"),
    Case("pairs-empty-conversation", "reward train", data_path(lambda d: saved(
        d / "p", train=pairs(3, rejected=[_msgs("assistant", "x"), [], _msgs("assistant", "y")]), test=pairs(2))),
         rf"data.path '{D}/p', split 'train', row 1, column 'rejected': expected .* got list \[\]"),
    Case("pairs-null-question", "reward train", data_path(lambda d: saved(d / "p", train=Dataset.from_dict({
        "question": ["q", None], "chosen": ["a", "b"], "rejected": ["c", "d"]}), test=pairs(2))),
         rf"data.path '{D}/p', split 'train', row 1, column 'question': expected .* got NoneType null"),
    Case("pairs-empty-train", "reward train", data_path(lambda d: saved(d / "p", train=pairs(0), test=pairs(2))),
         rf"data.path '{D}/p': train has 0 and test 2 pairs; both need some"),
    Case("dpo-pairs-wrong-columns", "policy dpo", data_path(lambda d: saved(d / "p", train=Dataset.from_dict({"y": [1]}),
                                                                           test=pairs(1))),
         r"split 'train' has columns \['y'\]"),
    Case("dpo-pairs-corrupt-parquet", "policy dpo", data_path(lambda d: repo(d / "r", "", **{
        "pairs/train-00000.parquet": CORRUPT})), rf"data.path '{D}/r' \(config 'pairs'\) cannot be read"),
    # --- HelpSteer2's preference file (data.helpsteer2.path)
    Case("helpsteer2-missing", "reward train", lambda d: [*helpsteer2(b"")(d)[:-1], json.dumps(
        {"path": str(d / "nope.jsonl.gz"), "count": 1})], rf"data.helpsteer2.path: {D}/nope.jsonl.gz not found"),
    Case("helpsteer2-empty", "reward train", helpsteer2(b""),
         rf"data.helpsteer2 asks for 1 pairs but {D}/preference.jsonl has 0 usable ones"),
    Case("helpsteer2-only-ties", "reward train", helpsteer2(jsonl(ROW | {"preference_strength": 0}) * 2),
         rf"data.helpsteer2 asks for 1 pairs but {D}/preference.jsonl has 0 usable ones "
         r"\(dropped: \{'tie': 2, 'multi_turn': 0, 'not_train': 0\}\)"),
    Case("helpsteer2-invalid-json", "reward train", helpsteer2(jsonl(ROW, '{"prompt": "x",')),
         rf"{D}/preference.jsonl, line 2: not a HelpSteer2 preference row \(Expecting property name"),
    Case("helpsteer2-list-row", "reward train", helpsteer2(jsonl(ROW, [1, 2])),
         rf"{D}/preference.jsonl, line 2: not a HelpSteer2 preference row \(expected a JSON object, got list\)"),
    Case("helpsteer2-missing-key", "reward train", helpsteer2(jsonl({k: v for k, v in ROW.items() if k != "response_2"})),
         rf"{D}/preference.jsonl, line 1: not a HelpSteer2 preference row \(missing key 'response_2'\)"),
    Case("helpsteer2-list-prompt", "reward train", helpsteer2(jsonl(ROW | {"prompt": ["a", "b"]})),
         rf"{D}/preference.jsonl, line 1: not a HelpSteer2 preference row \(key 'prompt': expected str, got list\)"),
    Case("helpsteer2-null-response", "reward train", helpsteer2(jsonl(ROW, ROW | {"response_1": None})),
         rf"{D}/preference.jsonl, line 2: not a HelpSteer2 preference row \(key 'response_1': expected str, got NoneType\)"),
    Case("helpsteer2-float-strength", "reward train", helpsteer2(jsonl(ROW | {"preference_strength": 1.5})),
         rf"{D}/preference.jsonl, line 1: .* \(key 'preference_strength': expected int, got float\)"),
    Case("helpsteer2-text-strength", "reward train", helpsteer2(jsonl(ROW | {"preference_strength": "2"})),
         rf"{D}/preference.jsonl, line 1: .* \(key 'preference_strength': expected int, got str\)"),
    Case("helpsteer2-bool-strength", "reward train", helpsteer2(jsonl(ROW | {"preference_strength": True})),
         rf"{D}/preference.jsonl, line 1: .* \(key 'preference_strength': expected int, got bool\)"),
    Case("helpsteer2-strength-out-of-range", "reward train", helpsteer2(jsonl(ROW | {"preference_strength": 7})),
         rf"{D}/preference.jsonl, line 1: .* \(key 'preference_strength': expected -3..3, got 7\)"),
    Case("helpsteer2-nan-strength", "reward train", helpsteer2(b'{"prompt": "p", "response_1": "a", "response_2": "b", '
                                                               b'"preference_strength": NaN}\n'),
         rf"{D}/preference.jsonl, line 1: .* \(key 'preference_strength': expected int, got float\)"),
    Case("helpsteer2-deeply-nested", "reward train", helpsteer2(jsonl(ROW, "[" * 50_000 + "]" * 50_000)),
         rf"{D}/preference.jsonl, line 2: not a HelpSteer2 preference row \(maximum recursion depth exceeded"),
    Case("helpsteer2-long-number", "reward train", helpsteer2(jsonl(ROW, '{"preference_strength": ' + "9" * 5000 + "}")),
         rf"{D}/preference.jsonl, line 2: not a HelpSteer2 preference row \(Exceeds the limit \(4300 digits\)"),
    Case("helpsteer2-not-gzip", "reward train", helpsteer2(jsonl(ROW), "preference.jsonl.gz"),
         rf"{D}/preference.jsonl.gz, line 1: cannot be read: Not a gzipped file"),
    Case("helpsteer2-truncated-gzip", "reward train", helpsteer2(gzip.compress(jsonl(ROW) * 50)[:60], "preference.jsonl.gz"),
         rf"{D}/preference.jsonl.gz, line \d+: cannot be read: Compressed file ended before the end-of-stream marker"),
    Case("helpsteer2-not-utf8", "reward train", helpsteer2(jsonl(ROW) + b'{"prompt": "caf\xe9"}\n'),
         rf"{D}/preference.jsonl, line 2: not valid UTF-8 at byte 15 of the line"),
    # --- the test speeches of a win-rate evaluation (speeches.path)
    Case("eval-missing-path", "policy eval", eval_speeches(lambda d: d / "nope"),
         rf"speeches.path '{D}/nope' \(config 'speeches'\) cannot be read"),
    Case("eval-corrupt-parquet", "policy eval", eval_speeches(lambda d: repo(d / "r", "", **{"speeches/test-0.parquet": CORRUPT})),
         rf"speeches.path '{D}/r' \(config 'speeches'\) cannot be read"),
    Case("eval-no-split", "policy eval", eval_speeches(lambda d: saved(d / "s", train=Dataset.from_dict({"id": ["a"], "text": ["t"]}))),
         rf"speeches.path '{D}/s' \(config 'speeches'\) has no split 'test' \(has train\)"),
    Case("eval-wrong-columns", "policy eval", eval_speeches(lambda d: saved(d / "s", test=Dataset.from_dict({"x": [1]}))),
         rf"speeches.path '{D}/s' .*: columns \['x'\]; expected id and text \(speeches\) or ID and question \(pairs\)"),
    Case("eval-number-text", "policy eval", eval_speeches(lambda d: saved(d / "s", test=Dataset.from_dict(
        {"id": ["a", "b"], "text": [1.5, 2.5]}))), rf"speeches.path '{D}/s' \(config 'speeches', split 'test'\): row 0: expected text, got float '1.5'"),
    Case("eval-no-speech", "policy eval", eval_speeches(lambda d: saved(
        d / "s", test=Dataset.from_dict({"id": ["x"], "text": ["t"]}).select([]))),
         rf"speeches.path '{D}/s' \(config 'speeches', split 'test'\) holds no speeches"),
    # --- expert-validation sheets and keys (annotate)
    Case("sheet-missing", "annotate", sheet(None), rf"{D}/sheet.csv: file not found"),
    Case("sheet-empty", "annotate", sheet(b"\n\n"), rf"{D}/sheet.csv: the file is empty"),
    Case("sheet-not-utf8", "annotate", sheet(f"{HEADER}\n{FILLED}\n".replace("Dr Lee", "Dr L\xe9e").encode("latin-1")),
         rf"{D}/sheet.csv: line 2: not valid UTF-8; save it as UTF-8"),
    Case("sheet-binary", "annotate", sheet(b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00\xb2"),
         rf"{D}/sheet.csv: line 1: not valid UTF-8"),
    Case("sheet-nul-byte", "annotate", sheet(f"{HEADER}\n".encode() + b"i1,\x00A\n"),
         rf"{D}/sheet.csv: row 2 \(item_id 'i1'\), column pref_empathy: unknown value '\\x00A'"),
    Case("sheet-missing-columns", "annotate", sheet(b"item_id,pref_overall\ni1,A\n"), rf"{D}/sheet.csv: row 2: missing column\(s\) pref_"),
    Case("sheet-empty-item-id", "annotate", sheet(f"{HEADER}\n{FILLED.replace('i1', '')}\n".encode()),
         rf"{D}/sheet.csv: row 2: empty item_id"),
    Case("sheet-item-twice", "annotate", sheet(f"{HEADER}\n{FILLED}\n{FILLED}\n".encode()),
         rf"{D}/sheet.csv: row 3: item_id 'i1' appears twice"),
    Case("sheet-unknown-answer", "annotate", sheet(f"{HEADER}\n{FILLED.replace('A', 'maybe', 1)}\n".encode()),
         rf"{D}/sheet.csv: row 2 \(item_id 'i1'\), column pref_empathy: unknown value 'maybe'; expected A, B, tie or empty"),
    Case("sheet-format", "annotate", sheet(b"PK\x03\x04", "sheet.xlsx"), rf"{D}/sheet.xlsx: unsupported sheet format '.xlsx'"),
    Case("sheet-jsonl-list", "annotate", sheet(jsonl(["i1", "A"]), "sheet.jsonl"),
         rf"{D}/sheet.jsonl: line 1: expected a JSON object, got list"),
    Case("sheet-jsonl-invalid", "annotate", sheet(jsonl({"item_id": "i1"}, "{item_id: i2}"), "sheet.jsonl"),
         rf"{D}/sheet.jsonl: line 2 is not JSON \(Expecting property name"),
    Case("sheet-jsonl-nested", "annotate", sheet(jsonl("[" * 50_000 + "]" * 50_000), "sheet.jsonl"),
         rf"{D}/sheet.jsonl: line 1 is not JSON \(maximum recursion depth exceeded"),
    Case("key-missing", "annotate", sheet(f"{HEADER}\n{FILLED}\n".encode(), key=False), rf"{D}/key.jsonl: file not found"),
    Case("key-not-a-record", "annotate", sheet(f"{HEADER}\n{FILLED}\n".encode(), key=jsonl({"item_id": "i1", "chosen": "C"})),
         rf"{D}/key.jsonl: line 1: not a key record \(bad or missing 'labels'\)"),
    Case("export-missing-pairs", "annotate", lambda d: ["annotate", "export", "--pairs", str(d / "nope"), "--out", str(d / "out")],
         rf"--pairs {D}/nope \(config 'pairs'\) cannot be read"),
    Case("export-no-split", "annotate", lambda d: ["annotate", "export", "--pairs", str(saved(d / "p", test=pairs(2))),
                                                   "--out", str(d / "out")], rf"{D}/p: no split 'train'; splits: test"),
]
IDS = [f"file{i:03d}-{c.id}" for i, c in enumerate(CASES, start=1)]  # the count shows in every id
RECIPE = {"reward train": DEMO / "reward" / "config_demo.yaml", "policy dpo": DEMO / "dpo" / "config_demo.yaml",
          "policy eval": DEMO / "eval" / "config_demo.yaml"}


def _argv(case: Case, folder: Path) -> list[str]:
    extra = case.build(folder)
    if case.command == "annotate":
        return extra
    recipe = yaml.safe_load(RECIPE[case.command].read_text())
    recipe["work_dir"] = str(folder / "work")
    if case.command == "policy eval":  # endpoints nobody calls: the input fails before any server starts
        for member in [*recipe["policies"], recipe["reference"], recipe["judge"]["endpoint"]]:
            member["base_url"] = UNREACHABLE
    path = folder / "recipe" / case.command.replace(" ", "-") / "config.yaml"
    path.parent.mkdir(parents=True)
    path.write_text(yaml.safe_dump(recipe))
    return [*case.command.split(), str(path), *extra]


def test_the_matrix_covers_every_loader():
    assert len(CASES) >= 50 and len({c.id for c in CASES}) == len(CASES)
    assert {c.command for c in CASES} == {"reward train", "policy dpo", "policy eval", "annotate"}


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_a_broken_file_is_one_error_line_naming_it_and_nothing_is_built(tmp_path, capsys, case):
    argv = _argv(case, tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("psycopref: error:")]
    assert len(errors) == 1 and "Traceback" not in err, err
    assert re.match(rf"psycopref: error: {case.error.replace(D, re.escape(str(tmp_path)))}", errors[0]), errors[0]
    work = tmp_path / "work"
    assert not work.exists() or {p.name for p in work.iterdir()} <= {"logs", "recipe.resolved.yaml"}
    assert not (tmp_path / "out").exists()
