"""Mask structured personal data in speeches and responses before a dataset is published.

Each hit becomes a typed placeholder and nothing else in the text changes:

- ``[EMAIL]``   addresses like ``jane.doe+work@mail.example.org``.
- ``[URL]``     ``http(s)://...``, ``www....``, and bare domains on a common TLD with or without a
                path (``reddit.com/r/anxiety``); the TLD must be lower-case so ``ASP.NET`` stays, and
                a country TLD needs two dots or a path so ``fine.it was`` (a missing space) stays.
- ``[PHONE]``   found by Google's libphonenumber (the ``phonenumbers`` package), region US, leniency
                POSSIBLE: international ``+44 20 7946 0958``, ``(555) 123-4567``, ``555.123.4567``,
                ``1-212-555-0187``. Its matcher already skips dates, times and money. Numbers
                without a ``+`` are read as US ones (a UK ``020 7946 0958`` is not found). Toll-free
                numbers (``1-800-273-8255``, crisis and service lines, not personal) are kept unless
                ``keep_toll_free=False``.
- ``[ADDRESS]`` a house number, 1-4 capitalised name words and a street suffix (``221B Baker
                Street``, ``1600 Pennsylvania Ave NW``, ``42 Elm St., Apt 3``), with an optional unit
                and ``, City, ST 12345`` tail; ``P.O. Box 12``. "Dr" counts only before a unit (it is mostly "Doctor").
- ``[ID]``      SSNs ``123-45-6789``; card numbers in 4-digit groups (``4111 1111 1111 1111``,
                Amex 4-6-5); bare digit runs of 7+ (account, record, card numbers; compact dates like
                ``20190504``, round numbers like ``1000000`` and amounts like ``$1500000`` are kept); passport-like codes of 1-3 capitals + 6-9 digits + optional
                capital (``AB1234567``, ``QQ123456C``). A bare 10-digit run is an ID, not a phone.

Not masked (by design): names, cities on their own, dates, times, years, ages, money, percentages,
durations, short numbers, hyphenated IDs of other shapes. Overlapping hits resolve to the earliest
start, then the longest span, then the order of TYPES.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

import phonenumbers
import pyarrow.compute as pc
from datasets import Dataset, DatasetDict, Features, Value

TYPES = ("EMAIL", "URL", "ID", "PHONE", "ADDRESS")  # tie-break order for spans with the same extent

_EMAIL = re.compile(r"(?<![\w.%+-])[A-Za-z0-9][A-Za-z0-9._%+-]*@(?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,}\b")

_GTLDS = "com|org|net|edu|gov|info|biz|io|app|dev|health|online|site|blog"
# Country TLDs read as words after a missing space ("fine.it was"), so a bare domain on one needs
# two dots (bbc.co.uk) or a path (about.me/jane).
_CCTLDS = "us|uk|ca|au|nz|ie|in|de|fr|es|it|nl|eu|me|ly|co|ai|tv"
_LABEL = r"[A-Za-z0-9-]+\."
_URL = re.compile(
    rf"""(?:\b(?:https?|ftp)://|\bwww\.)[^\s<>"']+                      # scheme or www.
       | (?<![\w@.-])
         (?:(?:{_LABEL})+(?-i:{_GTLDS})\b(?![-@])(?:/[^\s<>"']*)?         # reddit.com(/r/x)
          | (?:{_LABEL}){{2,}}(?-i:{_CCTLDS})\b(?![-@])(?:/[^\s<>"']*)?   # bbc.co.uk(/news)
          | {_LABEL}(?-i:{_CCTLDS})/[^\s<>"']*)                          # about.me/jane
    """,
    re.X | re.I,
)
_URL_TRAIL = ".,;:!?'\"”’"  # sentence punctuation after a URL is not part of it

_IDS = [
    re.compile(r"\b\d{3}-\d{2}-\d{4}\b"),  # US SSN
    re.compile(r"\b\d{4}(?:([ -])\d{4}){3}\b"),  # 16-digit card in 4-groups
    re.compile(r"\b\d{4}[ -]\d{6}[ -]\d{5}\b"),  # 15-digit Amex 4-6-5
    # 7+ digit run, not part of a decimal/thousands number or money, not a compact date
    # YYYYMMDD, not a round number like 1000000
    re.compile(r"(?<![\d$£€+.,])(?!(?:19|20)\d\d(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])(?!\d))"
               r"(?![1-9]\d{0,2}0{4,}(?!\d))\d{7,}(?!\d)(?![.,]\d)"),
    re.compile(r"\b[A-Z]{1,3}\d{6,9}[A-Z]?\b"),  # passport / national-ID-like codes
]

_SUFFIXES = ["Street", "Avenue", "Road", "Boulevard", "Lane", "Drive", "Court", "Place", "Terrace", "Way",
             "Circle", "Parkway", "Highway", "Square", "Crescent", "Close", "Trail", "Row", "Alley", "Plaza"]
_ABBREVS = ["St", "Ave", "Rd", "Blvd", "Ln", "Ct", "Pl", "Ter", "Cir", "Pkwy", "Hwy", "Sq", "Trl"]
_UNITS = r"(?:Apt|Apartment|Suite|Ste|Unit|Flat|Floor|Fl|Room|Rm)\b\.?\s*\#?|\#\s*"  # escaped for re.X
# "Dr" is far more often "Doctor" ("on 14 May Dr Lee") than "Drive": it counts only before a unit.
_SUFFIX = "|".join([f"[{w[0]}{w[0].lower()}]{w[1:]}" for w in _SUFFIXES] + _ABBREVS
                   + [rf"Dr\b(?=\.?,?\s+(?:{_UNITS}))"])
_NAME = r"(?:[A-Z][A-Za-z'’-]*\.?|\d+(?:st|nd|rd|th))"
_ADDRESS = re.compile(
    rf"""\b\d{{1,6}}[A-Za-z]?\s+                              # house number: 42, 221B
         (?:(?:{_NAME})\s+){{0,3}}(?:{_NAME})\s+(?:{_SUFFIX})\b   # Baker Street, W 42nd St
         (?:\s+(?:N|S|E|W|NE|NW|SE|SW)\b)?                     # 1600 Pennsylvania Ave NW
         (?:\.?,?\s+(?:{_UNITS})[A-Za-z0-9-]+\b)?              # , Apt 3 / Suite 400 / #12
         (?:,\s*[A-Z][a-z]+(?:\s[A-Z][a-z]+)*,\s*[A-Z]{{2}}\s+\d{{5}}(?:-\d{{4}})?\b)?  # , City, ST 12345
      | \bP\.?\s?O\.?\s+Box\s+\d+\b                            # P.O. Box 12
    """,
    re.X,
)

_DIGIT = re.compile(r"\d")
# Where a phone could be: 7+ chars of digits and separators. The (slow) phone matcher only reads
# these stretches plus a margin of context, which keeps 100k texts in seconds.
_PHONE_HINT = re.compile(r"[+(]?\d[\d \t().\-/–—]{5,}\d")
_PHONE_MARGIN = 16  # characters of context around a stretch (neighbours, "ext. 12" tails)
_URL_HINT = re.compile(rf"://|(?i:www\.)|\.(?:{_GTLDS}|{_CCTLDS})\b")


def _url_spans(text: str):
    if not _URL_HINT.search(text):
        return
    for m in _URL.finditer(text):
        start, end = m.span()
        while end > start and (text[end - 1] in _URL_TRAIL or (text[end - 1] == ")" and text.count("(", start, end) < text.count(")", start, end))):
            end -= 1
        yield start, end


def _is_toll_free(number: phonenumbers.PhoneNumber) -> bool:
    # number_type is slow (it resolves the region); toll-free ranges start with 8 in the NANP and
    # most European plans, so other numbers skip the call (an unusual toll-free one gets masked).
    return str(number.national_number).startswith("8") and (
        phonenumbers.number_type(number) == phonenumbers.PhoneNumberType.TOLL_FREE)


def _phone_spans(text: str, keep_toll_free: bool):
    found = set()
    for hint in _PHONE_HINT.finditer(text):
        offset = max(0, hint.start() - _PHONE_MARGIN)
        window = text[offset:hint.end() + _PHONE_MARGIN]
        for m in phonenumbers.PhoneNumberMatcher(window, "US", leniency=phonenumbers.Leniency.POSSIBLE):
            if not hint.start() <= offset + m.start < hint.end():
                continue  # belongs to another stretch (the window may cut it short)
            if m.raw_string.isdigit():  # a bare digit run is an [ID] (or a decimal/amount), not a phone
                continue
            if keep_toll_free and _is_toll_free(m.number):
                continue
            found.add((offset + m.start, offset + m.end))
    return sorted(found)


def find_spans(text: str, keep_toll_free: bool = True) -> list[tuple[int, int, str]]:
    """Non-overlapping (start, end, TYPE) hits in text order."""
    hits: list[tuple[int, int, str]] = []
    if "@" in text:
        hits += [(*m.span(), "EMAIL") for m in _EMAIL.finditer(text)]
    hits += [(s, e, "URL") for s, e in _url_spans(text)]
    n_digits = len(_DIGIT.findall(text))
    if n_digits >= 6:  # every ID shape has 6+ digits
        hits += [(*m.span(), "ID") for pat in _IDS for m in pat.finditer(text)]
    if n_digits >= 7:  # so does every phone number worth masking
        hits += [(s, e, "PHONE") for s, e in _phone_spans(text, keep_toll_free)]
    if n_digits:
        hits += [(*m.span(), "ADDRESS") for m in _ADDRESS.finditer(text)]
    hits.sort(key=lambda h: (h[0], h[0] - h[1], TYPES.index(h[2])))
    kept: list[tuple[int, int, str]] = []
    for start, end, kind in hits:
        if end > start and (not kept or start >= kept[-1][1]):
            kept.append((start, end, kind))
    return kept


def scrub(text: str, keep_toll_free: bool = True) -> tuple[str, Counter]:
    """Replace personal data in `text` with [TYPE] placeholders; return the text and counts by type."""
    spans = find_spans(text, keep_toll_free)
    if not spans:
        return text, Counter()
    parts, pos = [], 0
    for start, end, kind in spans:
        parts += [text[pos:start], f"[{kind}]"]
        pos = end
    parts.append(text[pos:])
    return "".join(parts), Counter(kind for _, _, kind in spans)


def _scrub_value(value: Any, column: str, counts: Counter, keep_toll_free: bool) -> Any:
    if value is None:
        return None
    if isinstance(value, str):
        new, c = scrub(value, keep_toll_free)
        counts.update(c)
        return new
    if isinstance(value, list):  # message list: scrub each message's content
        out = []
        for msg in value:
            if not isinstance(msg, dict) or "content" not in msg:
                raise TypeError(f"column {column!r}: expected messages with a 'content' key, got {msg!r:.80}")
            out.append({**msg, "content": _scrub_value(msg["content"], column, counts, keep_toll_free)})
        return out
    raise TypeError(f"column {column!r}: expected a string or a message list, got {type(value).__name__}")


def _scrub_batch(batch: dict[str, list], columns: list[str], keep_toll_free: bool) -> dict[str, list]:
    n = len(batch[columns[0]])
    per_row = [Counter() for _ in range(n)]
    for col in columns:
        batch[col] = [_scrub_value(v, col, per_row[i], keep_toll_free) for i, v in enumerate(batch[col])]
    for kind in TYPES:
        batch[f"__scrubbed_{kind}"] = [c[kind] for c in per_row]
    return batch


def scrub_dataset(ds: Dataset | DatasetDict, columns: list[str], keep_toll_free: bool = True,
                  num_proc: int | None = None) -> tuple[Dataset | DatasetDict, dict[str, int]]:
    """Scrub string or message-list `columns` of a dataset (or every split); return it and totals by type."""
    if isinstance(ds, DatasetDict):
        totals = dict.fromkeys(TYPES, 0)
        out = {}
        for split, part in ds.items():
            out[split], t = scrub_dataset(part, columns, keep_toll_free, num_proc)
            totals = {k: totals[k] + t[k] for k in TYPES}
        return DatasetDict(out), totals
    if not columns:
        raise ValueError("scrub_dataset: no columns given")
    missing = [c for c in columns if c not in ds.column_names]
    if missing:
        raise KeyError(f"scrub_dataset: column(s) {', '.join(missing)} not in dataset (has {', '.join(ds.column_names)})")
    if len(ds) == 0:
        return ds, dict.fromkeys(TYPES, 0)
    count_cols = [f"__scrubbed_{kind}" for kind in TYPES]
    features = Features({**ds.features, **{c: Value("int64") for c in count_cols}})
    out = ds.map(_scrub_batch, batched=True, features=features, num_proc=num_proc, desc="scrub personal data",
                 fn_kwargs={"columns": list(columns), "keep_toll_free": keep_toll_free})
    counts = out.select_columns(count_cols).with_format("arrow")[:]  # one Arrow table, no Python rows
    totals = {kind: int(pc.sum(counts[col]).as_py() or 0) for kind, col in zip(TYPES, count_cols)}
    return out.remove_columns(count_cols), totals
