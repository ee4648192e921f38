"""Stage 1: collect client speeches from the recipe's sources, clean them, label topics, save a Dataset.

Output (under `work_dir`): `speeches/` (`Dataset.save_to_disk`, written to a temp folder and renamed
into place, so a crash never leaves a half-written output) and `speeches_report.json` (counts per
cleaning step and per source, the files each source read and skipped, source topic labels that map to
no fine topic). When no speech survives, the report is written, the previous `speeches/` is left as it
was and the stage stops with a `StageError` pointing at the report. The output
records a hash of the resolved speeches config plus the input files' size/mtime; a rerun with the
same hash returns the saved dataset without redoing anything, and topic calls are cached in
`cache.sqlite` through the Runtime, so an interrupted classification resumes without paying twice.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter
from pathlib import Path
from typing import Any

import datasets
from tqdm.auto import tqdm

from ..config import Endpoint
from ..errors import StageError
from ..io import MARKER, SPEECHES, save_atomic, write_json
from ..paper.taxonomy import fine_to_coarse
from ..serving.runtime import Runtime
from .clean import STEPS, clean_speeches
from .config import SourceSpec, SpeechesConfig
from .sources import SpeechRecord, bundled_path, load_source, source_files
from .topics import label_topics, unknown_topic_labels

log = logging.getLogger("psycopref")

STAGE_VERSION = 3  # bump when the stage's output for a given config changes (2: repeats by ID + text, phi2 formats; 3: invisible characters removed)
REPORT_FILE = "speeches_report.json"

FEATURES = datasets.Features({
    "id": datasets.Value("string"),
    "text": datasets.Value("string"),
    "source": datasets.Value("string"),
    "topic_fine": datasets.Value("string"),
    "topic_coarse": datasets.Value("string"),
    "topic_method": datasets.Value("string"),
    "n_chars": datasets.Value("int64"),
})


def speech_id(source: str, text: str) -> str:
    """Stable id: source plus the first 12 hex digits of the SHA-1 of the normalised text."""
    return f"{source}-{hashlib.sha1(text.encode('utf-8')).hexdigest()[:12]}"


def _fingerprint(spec: SourceSpec) -> Any:
    """Size and mtime of a source's local input files, so edited inputs invalidate the output."""
    if not spec.path and spec.hub_id:
        return spec.hub_id
    path = Path(spec.path) if spec.path else bundled_path()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    return [[str(p), p.stat().st_size, p.stat().st_mtime_ns] for p in files if p.exists()]


def config_hash(cfg: SpeechesConfig) -> str:
    blob = {"version": STAGE_VERSION, "speeches": cfg.model_dump(mode="json", exclude={"classifier_concurrency"}),
            "inputs": [_fingerprint(s) for s in cfg.sources]}
    return hashlib.sha256(json.dumps(blob, sort_keys=True).encode("utf-8")).hexdigest()


def load_all(sources: list[SourceSpec]) -> list[SpeechRecord]:
    """Records of every source, in recipe order (earlier sources win duplicates)."""
    records: list[SpeechRecord] = []
    for spec in sources:
        records += tqdm(load_source(spec), desc=f"loading {spec.name}", unit="speech", disable=None)
    return records


def _existing(out: Path, digest: str) -> datasets.Dataset | None:
    marker = out / MARKER  # the config hash the output was built from
    try:
        if json.loads(marker.read_text(encoding="utf-8")).get("config_hash") == digest:
            return datasets.load_from_disk(str(out))
    except (OSError, ValueError):
        return None  # missing or unreadable marker/output: rebuild
    return None


def _label(kept: list[SpeechRecord], classifier: Endpoint | None, work: Path,
           rt: Runtime | None, concurrency: int = 1) -> tuple[list, list]:
    raw, texts = [r.raw_topic for r in kept], [r.text for r in kept]
    if classifier is None or rt is not None:
        return label_topics(raw, texts, rt, classifier, concurrency)
    with Runtime(work, [classifier]) as own:
        return label_topics(raw, texts, own, classifier, concurrency)


def _inputs(sources: list[SourceSpec]) -> dict[str, dict[str, list[str]]]:
    """Per source name: what it read (files or a Hub id) and the files of its folder it skipped."""
    found: dict[str, dict[str, list[str]]] = {}
    for spec in sources:
        entry = found.setdefault(spec.name, {"read": [], "skipped_files": []})
        if not spec.path and spec.hub_id:
            entry["read"].append(spec.hub_id)
            continue
        read, skipped = source_files(spec)
        entry["read"] += map(str, read)
        entry["skipped_files"] += map(str, skipped)
    return found


def _removed(report: dict) -> str:
    """The cleaning steps that removed speeches, with their counts."""
    return ", ".join(f"{k} {report['steps'][k]}" for k in STEPS if report["steps"][k]) or "none"


def _log_report(report: dict, out: Path) -> None:
    log.info("speeches: %d loaded -> %d kept (removed: %s)", report["steps"]["input"], report["steps"]["kept"],
             _removed(report))
    log.info("speeches: per source (kept/loaded): %s",
             ", ".join(f"{s} {v['kept']}/{v['input']}" for s, v in report["per_source"].items()))
    log.info("speeches: topics by %s; mean length %.0f chars",
             ", ".join(f"{m} {n}" for m, n in report["topic_method"].items()), report["mean_chars"])
    log.info("speeches: wrote %s and %s", out, out.parent / REPORT_FILE)


def run_speeches(cfg: SpeechesConfig, work_dir: str | Path, rt: Runtime | None = None) -> datasets.Dataset:
    """Build (or reuse) `<work_dir>/speeches` for `cfg`; return it as a Dataset.

    `rt` serves the topic classifier (`cfg.classifier`); without one a Runtime is opened for it."""
    work = Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    out = work / SPEECHES
    digest = config_hash(cfg)
    reused = _existing(out, digest)
    if reused is not None:
        log.info("speeches: %s is up to date (config %s), reusing %d speeches", out, digest[:12], len(reused))
        return reused
    records = load_all(cfg.sources)
    kept, cleaned = clean_speeches(records, min_chars=cfg.min_chars, max_chars=cfg.max_chars,
                                   min_letter_fraction=cfg.min_letter_fraction, near_dedup=cfg.near_dedup, near_dup_threshold=cfg.near_dup_threshold,
                                   num_perm=cfg.num_perm, shingle_size=cfg.shingle_size)
    fine, methods = _label(kept, cfg.classifier, work, rt, cfg.classifier_concurrency) if kept else ([], [])
    report = _report(digest, cleaned, kept, fine, methods, _inputs(cfg.sources))
    if not kept:  # the report says which step removed what; the previous output stays as it was
        write_json(work / REPORT_FILE, report)
        raise StageError(f"speeches: no speech survived: {report['steps']['input']} loaded, removed {_removed(report)}; "
                         f"counts per source and step in {work / REPORT_FILE}; check the sources and "
                         f"speeches.min_chars/max_chars ({cfg.min_chars}/{cfg.max_chars})")
    coarse_of = fine_to_coarse()
    ds = datasets.Dataset.from_dict({
        "id": [speech_id(r.source, r.text) for r in kept],
        "text": [r.text for r in kept],
        "source": [r.source for r in kept],
        "topic_fine": fine,
        "topic_coarse": [coarse_of.get(f) if f else None for f in fine],
        "topic_method": methods,
        "n_chars": [len(r.text) for r in kept],
    }, features=FEATURES)
    save_atomic(ds, out, marker={"config_hash": digest, "rows": len(ds)})
    write_json(work / REPORT_FILE, report)
    _log_report(report, out)
    return datasets.load_from_disk(str(out))


def _report(digest: str, cleaned: dict, kept: list[SpeechRecord], fine: list, methods: list,
            inputs: dict[str, dict[str, list[str]]]) -> dict:
    """speeches_report.json: counts per step and per source (with its inputs), topic methods and labels."""
    per_source = cleaned.pop("per_source")
    for src, counts in per_source.items():
        counts["topic_method"] = dict(Counter(m for r, m in zip(kept, methods) if r.source == src))
        counts |= inputs.get(src, {})
    unknown = unknown_topic_labels(r.raw_topic for r in kept)
    if unknown:
        log.warning("speeches: %d source topic label(s) match none of the fine topics (those speeches go to the "
                    "classifier, or stay unlabelled): %s", len(unknown),
                    ", ".join(f"{label!r} x{n}" for label, n in unknown.most_common()))
    return {
        "config_hash": digest,
        "steps": cleaned,
        "per_source": per_source,
        "topic_method": {m: methods.count(m) for m in ("source", "llm", "unlabelled")},
        "topic_fine": dict(Counter(f for f in fine if f).most_common()),
        "unknown_topic_labels": dict(unknown.most_common()),
        "mean_chars": sum(len(r.text) for r in kept) / len(kept) if kept else 0.0,
    }
