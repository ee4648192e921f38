"""Speech sources: one loader per public dataset, each reading that dataset's own file format.

A loader turns a `SourceSpec` (local `path`, or `hub_id` when online) into `SpeechRecord`s. Reading
is split in two: format readers (CSV, JSON / JSON lines, parquet, a Hub dataset) yield row dicts with
an origin ("file:line" for CSV/JSONL, "file:[index]" for JSON lists and parquet, "hub_id/split:[index]"
for the Hub), and per-source adapters pick the speech and topic fields (the README's source table). Bad input raises
`SourceError` naming the file, the row and the column or key.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import re
from collections.abc import Callable, Iterable, Iterator
from importlib import resources
from pathlib import Path
from typing import Any, NamedTuple

from ..errors import PsycoprefError
from ..registry import Registry
from .config import SourceSpec

log = logging.getLogger("psycopref")

Row = tuple[str, dict[str, Any]]  # (origin, row)


class SourceError(PsycoprefError, ValueError):
    """Unreadable source input; the message names the file, the row and the column or key."""


class SpeechRecord(NamedTuple):
    text: str  # the speech as read (normalised later by clean.py)
    source: str  # loader name, e.g. "counsel_chat"
    raw_topic: str | None  # the source's own topic label, if it has one
    origin: str  # where it came from, for error messages: "file:row"


Loader = Callable[[SourceSpec], Iterator[SpeechRecord]]
SOURCES: Registry[Loader] = Registry("source", SourceError)  # recipe `speeches.sources[].name` -> loader


# --------------------------------------------------------------------------- format readers


def _decode(path: Path) -> str:
    """Read a whole file as UTF-8 (BOM tolerated); a bad byte is reported with its offset and line."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise SourceError(
            f"{path}: line {line}: not valid UTF-8 at byte offset {err.start} "
            f"(byte 0x{data[err.start]:02x}); re-encode the file as UTF-8"
        ) from None


def read_csv(path: Path, required: Iterable[str] = ()) -> Iterator[Row]:
    """Rows of a CSV file with a header; origin = file:line where the record starts."""
    text = _decode(path)
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        header = reader.fieldnames or []
    except csv.Error as err:
        raise SourceError(f"{path}: line 1 (header): malformed CSV: {err}") from None
    missing = [c for c in required if c not in header]
    if missing:
        raise SourceError(f"{path}: line 1 (header): missing column(s) {missing}; columns found: {header}")
    start = reader.line_num + 1
    try:
        for row in reader:
            if None in row:  # more fields than the header has
                raise SourceError(f"{path}: line {start}: {len(header) + len(row[None])} fields but the header has {len(header)}")
            yield f"{path}:{start}", row
            start = reader.line_num + 1
    except csv.Error as err:
        raise SourceError(f"{path}: line {start}: malformed CSV: {err}") from None


def read_json_records(path: Path) -> Iterator[Row]:
    """Objects from a JSON list (origin file:[i]) or a JSON-lines file (origin file:line)."""
    text = _decode(path)
    if text.lstrip().startswith("["):
        try:
            items = json.loads(text)
        except json.JSONDecodeError as err:
            raise SourceError(f"{path}: line {err.lineno} column {err.colno}: invalid JSON: {err.msg}") from None
        for i, item in enumerate(items):
            if not isinstance(item, dict):
                raise SourceError(f"{path}: item [{i}]: expected a JSON object, got {type(item).__name__}")
            yield f"{path}:[{i}]", item
        return
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as err:
            raise SourceError(f"{path}: line {n} column {err.colno}: invalid JSON: {err.msg}") from None
        if not isinstance(item, dict):
            raise SourceError(f"{path}: line {n}: expected a JSON object, got {type(item).__name__}")
        yield f"{path}:{n}", item


def read_parquet(path: Path) -> Iterator[Row]:
    import pyarrow.parquet as pq  # ships with datasets

    try:
        table = pq.read_table(path)
    except Exception as err:  # pyarrow raises several types for a broken file
        raise SourceError(f"{path}: not a readable parquet file: {err}") from None
    for i, row in enumerate(table.to_pylist()):
        yield f"{path}:[{i}]", row


def read_hub(hub_id: str) -> Iterator[Row]:
    """Every split of a Hub dataset, in the order the Hub lists them (needs network or a warm cache)."""
    import datasets

    try:
        dsd = datasets.load_dataset(hub_id)
    except Exception as err:  # offline, missing repo, auth: all end here
        raise SourceError(f"{hub_id}: cannot load from the Hub: {err}") from None
    for split, ds in dsd.items():
        for i, row in enumerate(ds):
            yield f"{hub_id}/{split}:[{i}]", row


def read_any(path: Path, required: Iterable[str] = ()) -> Iterator[Row]:
    """Dispatch on the file extension (csv, json, jsonl, parquet)."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return read_csv(path, required)
    if suffix in (".json", ".jsonl"):
        return read_json_records(path)
    if suffix == ".parquet":
        return read_parquet(path)
    raise SourceError(f"{path}: unsupported file type {suffix!r} (expected .csv, .json, .jsonl or .parquet)")


# --------------------------------------------------------------------------- helpers


def _files(spec: SourceSpec, groups: tuple[tuple[str, ...], ...]) -> list[Path]:
    """The spec's file, or, for a folder, the files of the first glob group that matches anything."""
    path = Path(spec.path)
    if path.is_file():
        return [path]
    if not path.exists():
        raise SourceError(f"{path}: source {spec.name!r}: file or folder not found")
    for group in groups:
        found = [p for pattern in group for p in sorted(path.glob(pattern)) if p.is_file()]
        if found:
            return list(dict.fromkeys(found))
    raise SourceError(f"{path}: source {spec.name!r}: folder holds no file matching {[g for grp in groups for g in grp]}")


def _rows(spec: SourceSpec, groups: tuple[tuple[str, ...], ...], required: tuple[str, ...] = ()) -> Iterator[Row]:
    if spec.path:
        for f in _files(spec, groups):
            yield from read_any(f, required)
    elif spec.hub_id:
        yield from read_hub(spec.hub_id)
    else:
        raise SourceError(f"source {spec.name!r}: set `path` (local file) or `hub_id`")


def _str(value: Any) -> str:
    """Field value as text: None and NaN (pandas/parquet gaps) become ''."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value)


def _field(origin: str, row: dict, key: str) -> str:
    if key not in row:
        raise SourceError(f"{origin}: missing key {key!r}; keys found: {sorted(row)}")
    return _str(row[key])


# --------------------------------------------------------------------------- adapters


@SOURCES.register("counsel_chat")
def load_counsel_chat(spec: SourceSpec) -> Iterator[SpeechRecord]:
    """counsel-chat CSV: `questionText` (falling back to `questionTitle` when empty), topic `topic`.

    The file repeats each question once per therapist answer; repeats are dropped here by `questionID`
    (or by the text when there is no ID). The title is not prepended: it paraphrases the text, and the
    text alone is what Amod's `Context` holds, so cross-source de-duplication can match them.
    """
    seen: set[str] = set()
    for origin, row in _rows(spec, (("*counsel_chat*.csv",), ("*.csv",)), ("questionText",)):
        text = _field(origin, row, "questionText").strip() or _str(row.get("questionTitle")).strip()
        qid = _str(row.get("questionID")).strip()
        key = f"id:{qid}" if qid else f"text:{' '.join(text.split()).lower()}"
        if key in seen:
            continue
        seen.add(key)
        topic = _str(row.get("topic", row.get("topics"))).strip() or None
        yield SpeechRecord(text, spec.name, topic, origin)


def _simple(name: str, field: str, groups: tuple[tuple[str, ...], ...]) -> Loader:
    """Register a loader for a source with one speech field and no topic field."""

    def load(spec: SourceSpec) -> Iterator[SpeechRecord]:
        for origin, row in _rows(spec, groups, (field,)):
            yield SpeechRecord(_field(origin, row, field), spec.name, None, origin)

    load.__doc__ = f"Speech = `{field}`; the source has no topic field."
    return SOURCES.register(name)(load)


load_amod = _simple("amod", "Context", (("combined_dataset.json",), ("*.jsonl", "*.json")))
# MentalChat16K: both CSVs (instruction/input/output); the constant `instruction` is not read.
load_mentalchat16k = _simple("mentalchat16k", "input", (("Interview_Data_6K.csv", "Synthetic_Data_10K.csv"), ("*.csv",)))
load_psych8k = _simple("psych8k", "input", (("Alexander_Street_shareGPT_2.0.json",), ("*.json",)))
# TherapistQA's distortion labels ("Dominant Distortion") are not counselling topics: not read.
load_therapistqa = _simple("therapistqa", "Patient Question", (("*.csv",),))


def bundled_path() -> Path:
    return Path(str(resources.files("hub_tools.speeches").joinpath("data/sample_speeches.jsonl")))


@SOURCES.register("bundled")
def load_bundled(spec: SourceSpec) -> Iterator[SpeechRecord]:
    """The package's sample corpus (JSON lines with `text`, `topic_fine`); `path` overrides the file."""
    path = Path(spec.path) if spec.path else bundled_path()
    if not path.is_file():
        raise SourceError(f"{path}: source 'bundled': file not found")
    for origin, row in read_json_records(path):
        yield SpeechRecord(_field(origin, row, "text"), spec.name, _str(row.get("topic_fine")).strip() or None, origin)


_POSTS = ("post1", "post2", "post3")


@SOURCES.register("mentalagora")
def load_mentalagora(spec: SourceSpec) -> Iterator[SpeechRecord]:
    """MentalAgora TherapyTalk (field names unverified): every non-empty `post1..3` is one speech."""
    for origin, row in _rows(spec, (("*.parquet", "*.jsonl", "*.json", "*.csv"),)):
        present = [k for k in _POSTS if k in row]
        if not present:
            raise SourceError(f"{origin}: none of the keys {list(_POSTS)}; keys found: {sorted(row)}")
        for key in present:
            text = _str(row[key]).strip()
            if text:
                yield SpeechRecord(text, spec.name, None, f"{origin}:{key}")


# phi2Mental's header is not documented: the first of these columns (case-insensitive) is the speech.
PHI2_CANDIDATES = ("input", "context", "question", "questiontext", "patient question", "human", "user",
                   "query", "prompt", "instruction", "text")


def _marker(names: str) -> re.Pattern:
    """A turn marker: '### Name:', '<NAME>:' or 'Name:' at the start of a line."""
    return re.compile(rf"###[ \t]*(?:{names})[ \t]*:|<[ \t]*(?:{names})[ \t]*>[ \t]*:?|^[ \t]*(?:{names})[ \t]*:",
                      re.IGNORECASE | re.MULTILINE)


_HUMAN = _marker("human|user|patient|client")
_BOT = _marker("assistant|bot|therapist|counsell?or|gpt")
_INST = re.compile(r"\[INST\](.*?)\[/INST\]", re.DOTALL)


def human_turn(text: str) -> str:
    """First human turn of a chat transcript ('### Human: .. ### Assistant: ..', '<HUMAN>: .. <ASSISTANT>: ..',
    '[INST] .. [/INST]'); text without such markers is returned unchanged."""
    inst = _INST.search(text)
    if inst:
        return inst.group(1).strip()
    human = _HUMAN.search(text)
    start = human.end() if human else 0
    bot = _BOT.search(text, start)
    if not human and not bot:
        return text
    end = bot.start() if bot else len(text)
    nxt = _HUMAN.search(text, start)  # a second human turn also ends the first
    if nxt and nxt.start() < end:
        end = nxt.start()
    return text[start:end].strip()


def _phi2_column(origin: str, row: dict) -> str:
    by_lower = {str(k).strip().lower(): k for k in row}
    for cand in PHI2_CANDIDATES:
        if cand in by_lower:
            return by_lower[cand]
    raise SourceError(
        f"{origin}: no speech column found; columns found: {list(row)}; expected one of {list(PHI2_CANDIDATES)}"
    )


@SOURCES.register("phi2mental")
def load_phi2mental(spec: SourceSpec) -> Iterator[SpeechRecord]:
    """phi2Mental (`phi2-data.csv`): detect the speech column; extract the human turn from transcripts."""
    column = None
    for origin, row in _rows(spec, (("phi2-data.csv",), ("*.csv", "*.jsonl", "*.json", "*.parquet"))):
        if column is None:
            column = _phi2_column(origin, row)
            log.info("phi2mental: speech column %r (columns: %s)", column, list(row))
        yield SpeechRecord(human_turn(_field(origin, row, column)), spec.name, None, origin)


def load_source(spec: SourceSpec) -> Iterator[SpeechRecord]:
    """Records of one source, at most `spec.limit` of them (counted after counsel-chat's repeats)."""
    loader = SOURCES.get(spec.name)
    for n, record in enumerate(loader(spec)):
        if spec.limit is not None and n >= spec.limit:
            return
        yield record
