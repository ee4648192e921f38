"""Checks the bundled offline corpus `hub_tools/data/sample_speeches.jsonl` (the demo's default source)."""

from __future__ import annotations

import itertools
import json
import re
from collections import Counter
from importlib import resources

import pytest

from hub_tools.paper import taxonomy
from hub_tools.speeches.config import SpeechesConfig

# Things that look like contact details or links; the corpus is about fictional people only.
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+")
_URL = re.compile(r"https?://|www\.|\b[\w-]+\.(?:com|org|net|io|edu|gov)\b", re.IGNORECASE)
_PHONE = re.compile(r"\+?\(?\d[\d\s().-]{6,}\d")  # 8+ digits/separators in a row
_PII = {"email": _EMAIL, "url": _URL, "phone": _PHONE}


def _rows() -> list[dict]:
    text = resources.files("hub_tools.speeches").joinpath("data/sample_speeches.jsonl").read_text(encoding="utf-8")
    rows = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:  # pragma: no cover - names the bad line
                pytest.fail(f"sample_speeches.jsonl line {lineno}: invalid JSON ({exc})")
    return rows


@pytest.fixture(scope="module")
def rows() -> list[dict]:
    return _rows()


def _shingles(text: str, size: int) -> set[tuple[str, ...]]:
    words = re.findall(r"\w+", text.lower())
    return {tuple(words[i : i + size]) for i in range(max(1, len(words) - size + 1))}


def test_row_count_fields_and_ids(rows):
    assert len(rows) >= 48
    for row in rows:
        assert isinstance(row.get("text"), str) and isinstance(row.get("topic_fine"), str), row.get("id")
        assert re.fullmatch(r"bundled-\d{3}", row.get("id", "")), row
    ids = [row["id"] for row in rows]
    assert len(set(ids)) == len(ids), [i for i, n in Counter(ids).items() if n > 1]


def test_texts_unique_and_within_paper_length_filter(rows):
    normalized = [" ".join(row["text"].lower().split()) for row in rows]
    assert len(set(normalized)) == len(normalized)
    bad = [(row["id"], len(row["text"])) for row in rows if not 100 <= len(row["text"]) <= 1000]
    assert not bad, f"texts outside 100-1000 chars: {bad}"
    assert all(row["text"] == row["text"].strip() for row in rows)
    # Paper mean is 366 chars; the sample should have a similar spread, not all short or all long.
    lengths = [len(row["text"]) for row in rows]
    assert 300 <= sum(lengths) / len(lengths) <= 450
    assert min(lengths) < 200 and max(lengths) > 700


def test_no_near_duplicates_under_default_dedup(rows):
    """The whole corpus must survive the pipeline's default near-duplicate filter."""
    cfg = SpeechesConfig()
    shingles = {row["id"]: _shingles(row["text"], cfg.shingle_size) for row in rows}
    worst = max(
        (len(shingles[a] & shingles[b]) / len(shingles[a] | shingles[b]), a, b)
        for a, b in itertools.combinations(shingles, 2)
    )
    assert worst[0] < cfg.near_dup_threshold / 2, worst


def test_topics_are_exact_taxonomy_names_and_cover_all_coarse(rows):
    fine = set(taxonomy.fine_topics())
    unknown = [(row["id"], row["topic_fine"]) for row in rows if row["topic_fine"] not in fine]
    assert not unknown, f"topic_fine not in taxonomy.yaml: {unknown}"
    to_coarse = taxonomy.fine_to_coarse()
    covered = Counter(to_coarse[row["topic_fine"]] for row in rows)
    assert set(covered) == set(taxonomy.coarse_topics()), covered
    assert min(covered.values()) >= 2, covered


@pytest.mark.parametrize(
    "kind,sample",
    [("email", "write me at someone@example.org"), ("url", "see www.example.com"),
     ("url", "https://x.y/z"), ("phone", "call 555-123-4567"), ("phone", "+44 20 7946 0000")],
)
def test_pii_patterns_detect_examples(kind, sample):
    assert _PII[kind].search(sample)


@pytest.mark.parametrize("sample", ["my 13-year-old son", "I'm 41 and", "in March, after 9 years"])
def test_pii_patterns_ignore_ages_and_counts(sample):
    assert not any(p.search(sample) for p in _PII.values())


def test_no_contact_details_or_links(rows):
    hits = [(row["id"], kind, m.group()) for row in rows for kind, p in _PII.items() if (m := p.search(row["text"]))]
    assert not hits, hits
