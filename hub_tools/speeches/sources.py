"""Speech sources: one loader per public dataset, each reading that dataset's own file format.

A loader turns a `SourceSpec` (local `path`, or `hub_id` when online) into `SpeechRecord`s. The format
readers (readers.py) yield row dicts with an origin ("file:line", "file:[index]", "hub_id/split:[index]");
the per-source adapters below pick the speech and topic fields (the README's source table). Each source
is registered with what a dataset card must say about it: its licence and where it is published.
Bad input raises `SourceError` naming the file, the row and the column or key.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import NamedTuple

from ..registry import Registry
from .config import SourceSpec
from .readers import Row, SourceError, field, is_gap, optional_field, read_any, read_hub, read_json_records
from .transcripts import holds_answer, human_turn

log = logging.getLogger("psycopref")

class SpeechRecord(NamedTuple):
    text: str  # the speech as read (normalised later by clean.py)
    source: str  # loader name, e.g. "counsel_chat"
    raw_topic: str | None  # the source's own topic label, if it has one
    origin: str  # where it came from, for error messages: "file:row"
    reject: str | None = None  # a cleaning step name when the loader rejects the row (counted, never kept)


Loader = Callable[[SourceSpec], Iterator[SpeechRecord]]
Globs = tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class Source:
    """A registered speech source: its loader, and what a dataset card built from it must say."""

    load: Loader
    license: str  # Hub licence id of the source's data; "unknown" where its publisher states none
    homepage: str  # where the data is published: a Hub page, repository or paper URL, or a few words
    files: Globs = ()  # for a folder `path`: read the files of the first glob group that matches any


SOURCES: Registry[Source] = Registry("source", SourceError)  # recipe `speeches.sources[].name` -> Source


def source(name: str, *, license: str, homepage: str, files: Globs = ()) -> Callable[[Loader], Loader]:
    """Decorator: register a loader as source `name` with its licence, homepage and folder globs."""

    def wrap(load: Loader) -> Loader:
        SOURCES.register(name)(Source(load, license, homepage, files))
        return load

    return wrap


# --------------------------------------------------------------------------- files and rows


def source_files(spec: SourceSpec) -> tuple[list[Path], list[Path]]:
    """The local files a source reads and, when `path` is a folder, the files there it skips."""
    path = Path(spec.path or bundled_path())
    if path.is_file():
        return [path], []
    if not path.exists():
        raise SourceError(f"{path}: source {spec.name!r}: file or folder not found")
    groups = SOURCES.get(spec.name).files
    present = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
    for group in groups:
        found = list(dict.fromkeys(p for pattern in group for p in sorted(path.glob(pattern)) if p.is_file()))
        if found:
            return found, [p for p in present if p not in found]
    raise SourceError(f"{path}: source {spec.name!r}: folder holds no file matching {[g for grp in groups for g in grp]}")


def source_rows(spec: SourceSpec, required: tuple[str, ...] = ()) -> Iterator[Row]:
    """The rows of a source's files (or of its Hub dataset); files a folder holds but the source does
    not read are logged."""
    if spec.path:
        read, skipped = source_files(spec)
        if skipped:
            log.info("%s: reading %s from %s; skipping %s", spec.name, [p.name for p in read], spec.path,
                     [p.name for p in skipped])
        for f in read:
            yield from read_any(f, required)
    elif spec.hub_id:
        yield from read_hub(spec.hub_id)
    else:
        raise SourceError(f"source {spec.name!r}: set `path` (local file) or `hub_id`")


def _plain(value) -> str:
    """An id as text (a number on the Hub, a string in CSV); a gap is ''."""
    return "" if is_gap(value) else str(value).strip()


# --------------------------------------------------------------------------- adapters


@source("counsel_chat", license="mit", homepage="https://github.com/nbertagnolli/counsel-chat",
        files=(("*counsel_chat*.csv",), ("*.csv",)))
def load_counsel_chat(spec: SourceSpec) -> Iterator[SpeechRecord]:
    """counsel-chat CSV: `questionText` (falling back to `questionTitle` when empty), topic `topic`, or
    `topics` (comma-separated labels) in the repository's counselchat-data.csv.

    The files repeat each question once per therapist answer; repeats are dropped here by the pair
    (`questionID`, text): in 20200325_counsel_chat.csv some IDs are shared by two different questions,
    which an ID alone would merge. The title is not prepended: it paraphrases the text, and the text
    alone is what Amod's `Context` holds, so cross-source de-duplication can match them.
    """
    seen: set[tuple[str, str]] = set()
    for origin, row in source_rows(spec, ("questionText",)):
        text = field(origin, row, "questionText").strip() or optional_field(origin, row, "questionTitle").strip()
        key = (_plain(row.get("questionID")), " ".join(text.split()).casefold())
        if key in seen:
            continue
        seen.add(key)
        topic = optional_field(origin, row, "topic" if "topic" in row else "topics").strip() or None
        yield SpeechRecord(text, spec.name, topic, origin)


def _simple(name: str, key: str, files: Globs, license: str, homepage: str) -> Loader:
    """Register a loader for a source with one speech field and no topic field."""

    def load(spec: SourceSpec) -> Iterator[SpeechRecord]:
        for origin, row in source_rows(spec, (key,)):
            yield SpeechRecord(field(origin, row, key), spec.name, None, origin)

    load.__doc__ = f"Speech = `{key}`; the source has no topic field."
    return source(name, license=license, homepage=homepage, files=files)(load)


# Amod's dataset card now says `other` (the RAIL-D licence) where it once said openrail.
load_amod = _simple("amod", "Context", (("combined_dataset.json",), ("*.jsonl", "*.json")),
                    "other", "https://huggingface.co/datasets/Amod/mental_health_counseling_conversations")
# MentalChat16K: both CSVs (instruction/input/output); the constant `instruction` is not read.
load_mentalchat16k = _simple("mentalchat16k", "input", (("Interview_Data_6K.csv", "Synthetic_Data_10K.csv"), ("*.csv",)),
                             "mit", "https://huggingface.co/datasets/ShenLab/MentalChat16K")
# Psych8k is gated on the Hub: accept its conditions there, or download the file and set `path`.
load_psych8k = _simple("psych8k", "input", (("Alexander_Street_shareGPT_2.0.json",), ("*.json",)),
                       "cc-by-nc-sa-4.0", "https://huggingface.co/datasets/EmoCareAI/Psych8k")
# TherapistQA (Kaggle) ships Annotated_data.csv (`Patient Question`) next to Therapist_responses.csv
# (`Question`, `Answer`): a folder reads the first. Its distortion labels are not topics: not read.
# No licence is stated for it.
load_therapistqa = _simple("therapistqa", "Patient Question", (("Annotated_data.csv",), ("*.csv",)),
                           "unknown", "https://aclanthology.org/2021.clpsych-1.17")


def bundled_path() -> Path:
    return Path(str(resources.files("hub_tools.speeches").joinpath("data/sample_speeches.jsonl")))


@source("bundled", license="apache-2.0", homepage="the psycopref package (hub_tools/speeches/data)",
        files=(("*.jsonl",),))
def load_bundled(spec: SourceSpec) -> Iterator[SpeechRecord]:
    """The package's own 64 speeches (JSON lines with `text`, `topic_fine`), under the package's
    licence; `path` overrides the file."""
    for path in source_files(spec)[0]:
        for origin, row in read_json_records(path):
            topic = optional_field(origin, row, "topic_fine").strip() or None
            yield SpeechRecord(field(origin, row, "text"), spec.name, topic, origin)


_POSTS = ("post1", "post2", "post3")


@source("mentalagora", license="cc-by-4.0", homepage="https://huggingface.co/datasets/MentalAgora/TherapyTalk",
        files=(("*.parquet", "*.jsonl", "*.json", "*.csv"),))
def load_mentalagora(spec: SourceSpec) -> Iterator[SpeechRecord]:
    """MentalAgora TherapyTalk (field names unverified): every non-empty `post1..3` is one speech."""
    for origin, row in source_rows(spec):
        present = [k for k in _POSTS if k in row]
        if not present:
            raise SourceError(f"{origin}: none of the keys {list(_POSTS)}; keys found: {sorted(row)}")
        for key in present:
            text = optional_field(origin, row, key).strip()
            if text:
                yield SpeechRecord(text, spec.name, None, f"{origin}:{key}")


# phi2Mental's header is not documented: the first of these columns (case-insensitive) is the speech.
PHI2_CANDIDATES = ("input", "context", "question", "questiontext", "patient question", "human", "user",
                   "query", "prompt", "instruction", "text")


def _phi2_column(origin: str, row: dict) -> str:
    by_lower = {str(k).strip().lower(): k for k in row}
    for cand in PHI2_CANDIDATES:
        if cand in by_lower:
            return by_lower[cand]
    raise SourceError(
        f"{origin}: no speech column found; columns found: {list(row)}; expected one of {list(PHI2_CANDIDATES)}"
    )


@source("phi2mental", license="openrail", homepage="https://huggingface.co/datasets/saxenaindresh681/microsoft-phi2-mental-health",
        files=(("phi2-data.csv",), ("*.csv", "*.jsonl", "*.json", "*.parquet")))
def load_phi2mental(spec: SourceSpec) -> Iterator[SpeechRecord]:
    """phi2Mental (`phi2-data.csv`): detect the speech column; take the human turn of transcripts
    (transcripts.py). A row whose turn still holds an answer marker is rejected (`answer_marker`)."""
    column = None
    for origin, row in source_rows(spec):
        if column is None:
            column = _phi2_column(origin, row)
            log.info("phi2mental: speech column %r (columns: %s)", column, list(row))
        text = human_turn(field(origin, row, column))
        yield SpeechRecord(text, spec.name, None, origin, "answer_marker" if holds_answer(text) else None)


def load_source(spec: SourceSpec) -> Iterator[SpeechRecord]:
    """Records of one source, at most `spec.limit` kept ones (counted after counsel-chat's repeats).

    A source that yields no row at all is an error: its file holds a header or an empty list only."""
    loader = SOURCES.get(spec.name).load
    rows = speeches = 0
    for record in loader(spec):
        if spec.limit is not None and speeches >= spec.limit:
            return
        rows += 1
        speeches += record.reject is None
        yield record
    if rows == 0:
        where = spec.path or spec.hub_id or bundled_path()
        raise SourceError(f"{where}: source {spec.name!r}: no speech found: the input holds no data rows")
