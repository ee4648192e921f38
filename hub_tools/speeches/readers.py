"""Format readers for speech sources: CSV, JSON / JSON lines, parquet and Hub datasets, as row dicts.

Each reader yields (origin, row) pairs, the origin naming where the row came from: "file:line" for
CSV (the line the record starts on) and JSON lines, "file:[index]" for JSON lists and parquet,
"hub_id/split:[index]" for the Hub. Anything unreadable (an empty or binary file, bad UTF-8, a
malformed CSV record, invalid JSON, JSON nested too deeply or with a number too long to read, a broken
parquet file, a gated Hub dataset, a value of the wrong type) raises `SourceError` with a one-line
message naming the file, the row and the key, so the CLI can print it as is.

JSON layouts: a list of objects (over any number of lines), JSON lines (one object per line), or a
single object over several lines whose values are plain (one pretty-printed record). One object holding
lists or objects (`{"data": [...]}`, pandas' default `to_json` layout) is an error saying which layout
is expected. `NaN`, `Infinity` and `-Infinity`, which Python writes but JSON does not have, are read as
`NotJSON` values: in a text field they are an error naming the file, row and key (a missing value is
`null`), never a silent empty speech.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import math
import re
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from ..errors import PsycoprefError

Row = tuple[str, dict[str, Any]]  # (origin, row)


class SourceError(PsycoprefError, ValueError):
    """Unreadable source input; the message names the file, the row and the column or key."""


def one_line(err: BaseException | str) -> str:
    """A library's error message on one line (pyarrow and datasets messages span several)."""
    return " ".join(str(err).split())


def _decode(path: Path) -> str:
    """A whole file as UTF-8 text (BOM tolerated); empty, binary and non-UTF-8 files are errors."""
    data = path.read_bytes()
    if not data.strip():
        raise SourceError(f"{path}: the file is empty")
    nul = data.find(b"\x00")
    if nul >= 0:
        line = data.count(b"\n", 0, nul) + 1
        raise SourceError(f"{path}: line {line}: a NUL byte at byte offset {nul}: this is a binary file, not UTF-8 text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise SourceError(
            f"{path}: line {line}: not valid UTF-8 at byte offset {err.start} "
            f"(byte 0x{data[err.start]:02x}); re-encode the file as UTF-8"
        ) from None


@functools.cache
def _allow_long_fields() -> None:
    """Lift the csv module's 128 KiB field limit: counsel-chat's answers reach ~224k characters."""
    try:
        csv.field_size_limit(sys.maxsize)
    except OverflowError:  # where a C long is 32 bits
        csv.field_size_limit(2**31 - 1)


def read_csv(path: Path, required: Iterable[str] = ()) -> Iterator[Row]:
    """Rows of a CSV file with a header; origin = file:line where the record starts.

    Strict quoting: a quote that is never closed is an error at the line it opens, not a field that
    swallows the rest of the file. A row with more or fewer fields than the header is an error.
    """
    _allow_long_fields()
    reader = csv.DictReader(io.StringIO(_decode(path), newline=""), strict=True)
    try:
        header = reader.fieldnames or []
    except csv.Error as err:
        raise SourceError(f"{path}: line 1 (header): malformed CSV: {err}") from None
    twice = sorted({c for c in header if header.count(c) > 1})
    if twice:  # DictReader would keep the last column of a name silently
        cols = [i + 1 for i, c in enumerate(header) if c == twice[0]]
        raise SourceError(f"{path}: line 1 (header): column {twice[0]!r} appears more than once (columns {cols}); "
                          f"rename or remove one")
    missing = [c for c in required if c not in header]
    if missing:
        raise SourceError(f"{path}: line 1 (header): missing column(s) {missing}; columns found: {header}")
    start = reader.line_num + 1
    try:
        for row in reader:
            if None in row:  # more fields than the header has
                raise SourceError(f"{path}: line {start}: {len(header) + len(row[None])} fields but the header has {len(header)}")
            if None in row.values():  # fewer fields: DictReader fills the rest with None
                found = sum(v is not None for v in row.values())
                raise SourceError(f"{path}: line {start}: {found} field(s) but the header has {len(header)}")
            yield f"{path}:{start}", row
            start = reader.line_num + 1
    except csv.Error as err:
        hint = " (a quoted field opened on this line is never closed)" if "unexpected end of data" in str(err) else ""
        raise SourceError(f"{path}: line {start}: malformed CSV: {err}{hint}") from None


class NotJSON:
    """`NaN`, `Infinity` or `-Infinity` in a JSON file: Python's json reads them, JSON has no such value."""

    __slots__ = ("name",)

    def __init__(self, name: str):
        self.name = name

    def __repr__(self) -> str:
        return self.name

    __str__ = __repr__


class _Repeated(dict):
    """A JSON object holding a key twice (json keeps the last value silently); `key` names it."""

    key: str = ""


def _object(pairs: list[tuple[str, Any]]) -> dict:
    obj = dict(pairs)
    if len(obj) == len(pairs):
        return obj
    seen: set[str] = set()
    bad = _Repeated(obj)
    bad.key = next(k for k, _ in pairs if k in seen or seen.add(k))
    return bad


_DECODER = json.JSONDecoder(parse_constant=NotJSON, object_pairs_hook=_object)
_LAYOUTS = "a JSON list of objects, or JSON lines (one object per line)"


def _json(path: Path, text: str, line: int | None = None) -> Any:
    """`text` (the whole file, or its line `line`) parsed; any failure is one line naming the file and line."""
    try:
        return _DECODER.decode(text)
    except json.JSONDecodeError as err:
        raise SourceError(f"{path}: line {line or err.lineno} column {err.colno}: invalid JSON: {err.msg}") from None
    except RecursionError:
        raise SourceError(f"{path}: line {line or 1}: JSON nested too deeply to read") from None
    except ValueError:  # the only other failure: an integer longer than int() reads (4,300 digits)
        found = re.search(r"\d{4300,}", text)
        at = line or (text.count("\n", 0, found.start()) + 1 if found else 1)
        raise SourceError(f"{path}: line {at}: a JSON number of more than 4,300 digits, too long to read") from None


def _single_object(path: Path, text: str) -> Iterator[Row]:
    """The file when it starts with one object over several lines: that object as one record, if its values
    are plain; else an error saying which layout is expected. Nothing when it is JSON lines."""
    offset = len(text) - len(text.lstrip())
    try:
        first, end = _DECODER.raw_decode(text, offset)
    except (ValueError, RecursionError):
        return  # the line-by-line reading names the line
    if "\n" not in text[offset:end]:
        return  # one object per line: JSON lines
    if text[end:].strip():
        raise SourceError(f"{path}: line {text.count(chr(10), 0, end) + 1}: objects spread over several lines one "
                          f"after another; expected {_LAYOUTS}")
    nested = {k: v for k, v in first.items() if isinstance(v, (list, dict))}
    if nested:
        hint = ""
        if len(nested) == len(first) and all(isinstance(v, dict) for v in first.values()):
            hint = " (pandas' to_json default layout: write it with orient='records', lines=True)"
        elif any(isinstance(v, list) and v and all(isinstance(i, dict) for i in v) for v in nested.values()):
            hint = f" (the records may be the list under key {next(k for k, v in nested.items() if isinstance(v, list))!r})"
        raise SourceError(f"{path}: one JSON object over several lines, with lists or objects under "
                          f"{sorted(nested)[:8]}: not one record; expected {_LAYOUTS}{hint}")
    yield f"{path}:1", first


def _record(path: Path, where: str, origin: str, item: Any) -> Row:
    """(origin, item) for an object; an error naming the file and `where` (line n, item [i]) otherwise."""
    if not isinstance(item, dict):
        raise SourceError(f"{path}: {where}: expected a JSON object, got {type(item).__name__}")
    if isinstance(item, _Repeated):
        raise SourceError(f"{path}: {where}: key {item.key!r} appears more than once in the object; keep one")
    return origin, item


def read_json_records(path: Path) -> Iterator[Row]:
    """Objects from a JSON list (origin file:[i]), a JSON-lines file (origin file:line), or one pretty-printed
    object (origin file:1)."""
    text = _decode(path)
    head = text.lstrip()[:1]
    if head == "[":
        for i, item in enumerate(_json(path, text)):
            yield _record(path, f"item [{i}]", f"{path}:[{i}]", item)
        return
    if head == "{":
        single = [_record(path, "line 1", origin, item) for origin, item in _single_object(path, text)]
        if single:
            yield from single
            return
    for n, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            yield _record(path, f"line {n}", f"{path}:{n}", _json(path, line, n))


def read_parquet(path: Path) -> Iterator[Row]:
    import pyarrow.parquet as pq  # ships with datasets

    if path.stat().st_size == 0:
        raise SourceError(f"{path}: the file is empty")
    try:
        table = pq.read_table(path)
    except Exception as err:  # pyarrow raises several types for a broken file
        raise SourceError(f"{path}: not a readable parquet file: {one_line(err)}") from None
    for i, row in enumerate(table.to_pylist()):
        yield f"{path}:[{i}]", row


def _chain(err: BaseException | None) -> Iterator[BaseException]:
    """An exception and everything it was raised from or while handling."""
    seen: set[int] = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        yield err
        err = err.__cause__ or err.__context__


def is_gated(err: BaseException) -> bool:
    """Whether loading failed because the Hub refused access: a gated (or private) dataset.

    huggingface_hub raises `GatedRepoError` (HTTP 401/403); `datasets.load_dataset` wraps it in a
    `DatasetNotFoundError` ("... is a gated dataset on the Hub") and may drop the chain on the way.
    """
    from datasets.exceptions import DatasetNotFoundError
    from huggingface_hub.errors import GatedRepoError, HfHubHTTPError

    for e in _chain(err):
        if isinstance(e, GatedRepoError):
            return True
        if isinstance(e, HfHubHTTPError) and getattr(e.response, "status_code", None) in (401, 403):
            return True
        if isinstance(e, DatasetNotFoundError) and "gated" in str(e):
            return True
    return False


def read_hub(hub_id: str) -> Iterator[Row]:
    """Every split of a Hub dataset, in the order the Hub lists them (needs network or a warm cache)."""
    import datasets
    from huggingface_hub import constants

    try:
        dsd = datasets.load_dataset(hub_id)
    except Exception as err:  # offline, missing repo, auth: all end here
        if is_gated(err):
            raise SourceError(
                f"{hub_id}: the dataset is gated on the Hub and this machine has no access to it: accept its "
                f"conditions on {constants.ENDPOINT}/datasets/{hub_id} (logged in), then run `hf auth login` "
                f"or set HF_TOKEN; or download its files and set the source's `path` instead of `hub_id`"
            ) from None
        raise SourceError(f"{hub_id}: cannot load from the Hub: {one_line(err)}") from None
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


# --------------------------------------------------------------------------- field values


def is_gap(value: Any) -> bool:
    """None, or NaN (pandas' and parquet's empty cell)."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def text_value(origin: str, key: str, value: Any) -> str:
    """A text field's value; a gap is '' (counted as empty by the cleaning step). Anything else that is
    not a string (a list, an object, a number, a boolean, a JSON file's NaN) is an error: it is never
    stringified."""
    if is_gap(value):
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, NotJSON):
        raise SourceError(f"{origin}: key {key!r}: expected text, got {value}, which is not a JSON value; "
                          f"write null for a missing value")
    shown = json.dumps(value, default=str, ensure_ascii=False)
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    raise SourceError(f"{origin}: key {key!r}: expected text, got {type(value).__name__} {shown}")


def field(origin: str, row: dict, key: str) -> str:
    """The text of a key the row must have."""
    if key not in row:
        raise SourceError(f"{origin}: missing key {key!r}; keys found: {sorted(row)}")
    return text_value(origin, key, row[key])


def optional_field(origin: str, row: dict, key: str) -> str:
    """The text of a key the row may lack ('' when it does)."""
    return text_value(origin, key, row.get(key))
