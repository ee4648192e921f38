"""Expert validation (paper §3.4): export a blinded annotation sheet, then score the filled sheets.

`export_sheet` samples pairs stratified by coarse topic and shows each pair's responses as A/B in a seeded
random order, so therapists cannot tell which one the dataset chose; the answer key is a separate file.
`score_sheets` measures percent agreement and Cohen's kappa of each annotator with the dataset labels and
between annotators, in the A/B space the annotators saw: positions are balanced, so kappa stays defined
even for the overall preference, where the dataset label is always "chosen".
"""

from __future__ import annotations

import csv
import io
import json
import logging
import random
import re
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from itertools import combinations
from pathlib import Path

from datasets import Dataset, DatasetDict
from sklearn.metrics import cohen_kappa_score

from ..errors import PsycoprefError
from ..hub.cards import CardError, update_section
from ..io import read_dataset, write_jsonl
from ..paper.principles import PRINCIPLE_NAMES, principles

log = logging.getLogger("psycopref")

QUESTIONS: tuple[str, ...] = (*PRINCIPLE_NAMES, "overall")  # one preference column per question
SHEET_COLUMNS: tuple[str, ...] = (
    "item_id", "speech", "response_a", "response_b", *(f"pref_{q}" for q in QUESTIONS), "annotator", "notes"
)
CARD_SECTION = "expert-validation"  # the card section between these markers is ours to replace
CARD_START, CARD_END = f"<!-- {CARD_SECTION}:start -->", f"<!-- {CARD_SECTION}:end -->"
DATASET = "dataset labels"  # rater name used for the dataset's own preferences
_ANSWERS = {"a": "A", "b": "B"} | dict.fromkeys(("tie", "=", "equal", "same"), "tie")  # accepted spellings


class AnnotationError(PsycoprefError, ValueError):
    """A sheet or key cannot be used; the message names the file, row/item and column."""


def allocate(sizes: dict[str, int], n: int) -> dict[str, int]:
    """Split n over strata proportionally (largest remainder), at least 1 per stratum when n allows."""
    total = sum(sizes.values())
    if n >= total:
        return dict(sizes)
    quota = {s: n * k / total for s, k in sizes.items()}
    alloc = {s: int(q) for s, q in quota.items()}
    by_remainder = sorted(sizes, key=lambda s: (-(quota[s] - alloc[s]), s))  # name breaks ties: seed-free
    for s in by_remainder[: n - sum(alloc.values())]:
        alloc[s] += 1
    if n >= sum(1 for k in sizes.values() if k):
        for s in sorted(s for s, k in sizes.items() if k and not alloc[s]):
            donor = max((d for d in alloc if alloc[d] > 1), key=lambda d: (alloc[d] - quota[d], d))
            alloc[donor] -= 1
            alloc[s] = 1
    return alloc


def sample_indices(strata: list[str], n: int, seed: int) -> list[int]:
    """Row indices of a stratified sample of size min(n, len(strata)), in a seeded shuffled order."""
    groups: dict[str, list[int]] = defaultdict(list)
    for i, s in enumerate(strata):
        groups[s].append(i)
    rng = random.Random(seed)
    alloc = allocate({s: len(ix) for s, ix in groups.items()}, n)
    picked = [i for s in sorted(groups) for i in rng.sample(groups[s], alloc[s])]
    rng.shuffle(picked)  # mix topics so the sheet order reveals nothing
    return picked


def _text(value, role: str) -> str:
    """Plain text of a column holding either a string or a chat message list."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        contents = [m["content"] for m in value if isinstance(m, dict) and m.get("role") == role]
        if contents:
            return contents[-1]
    raise AnnotationError(f"expected a string or a list of {role!r} messages, got {value!r:.80}")


def _label(chosen, rejected) -> str:
    if chosen is None or rejected is None:
        return "tie"  # an unrated principle states no preference
    return "chosen" if chosen > rejected else "rejected" if chosen < rejected else "tie"


def export_sheet(pairs: Dataset, out_dir, n: int = 200, seed: int = 42,
                 stratify: str | None = "topic_coarse") -> dict[str, Path]:
    """Write `sheet.csv`, `sheet.jsonl` (blinded, for annotators), `key.jsonl` and `INSTRUCTIONS.md`.

    n=200 and one seed are the paper's setting (200 pairs, 2 therapists); returns {kind: Path}.
    """
    if n < 1:
        raise AnnotationError(f"n must be at least 1, got {n}")
    if stratify and stratify not in pairs.column_names:
        log.warning("pairs have no %r column: sampling without stratification", stratify)
        stratify = None
    strata = [str(s) for s in pairs[stratify]] if stratify else [""] * len(pairs)  # None is its own stratum
    rows = sample_indices(strata, n, seed)
    rng = random.Random(f"{seed}-letters")  # own stream: the A/B draw never changes which pairs are sampled
    letters = ["A", "B"] * (len(rows) // 2) + ["A"] * (len(rows) % 2)
    rng.shuffle(letters)  # balanced positions, so "always A" scores about 50% and kappa stays defined
    sheet, key = [], []
    for k, (row, letter) in enumerate(zip(rows, letters), start=1):
        pair = pairs[row]
        item_id = f"item-{k:0{max(3, len(str(len(rows))))}d}"
        speech = pair["question"] if "question" in pair else _text(pair["prompt"], "user")
        chosen, rejected = _text(pair["chosen"], "assistant"), _text(pair["rejected"], "assistant")
        a, b = (chosen, rejected) if letter == "A" else (rejected, chosen)
        sheet.append({"item_id": item_id, "speech": speech, "response_a": a, "response_b": b}
                     | {c: "" for c in SHEET_COLUMNS[4:]})
        labels = {p: _label(pair.get(f"chosen_{p}_rating"), pair.get(f"rejected_{p}_rating"))
                  for p in PRINCIPLE_NAMES}
        key.append({"item_id": item_id, "ID": pair.get("ID"), "prefID": pair.get("prefID"), "row": row,
                    "chosen": letter, "topic_coarse": pair.get("topic_coarse"),
                    "labels": labels | {"overall": "chosen"}})  # the pair's label: chosen is better overall
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"csv": out / "sheet.csv", "jsonl": out / "sheet.jsonl", "key": out / "key.jsonl",
             "instructions": out / "INSTRUCTIONS.md"}
    with paths["csv"].open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, SHEET_COLUMNS, quoting=csv.QUOTE_ALL)  # quoted: newlines and commas survive
        writer.writeheader()
        writer.writerows(sheet)
    write_jsonl(paths["jsonl"], sheet)
    write_jsonl(paths["key"], key)
    paths["instructions"].write_text(instructions(len(rows)), encoding="utf-8")
    return paths


def instructions(n_items: int) -> str:
    """The annotators' guide: the seven principles (Box B) and how to fill the sheet."""
    lines = ["# Annotation instructions", "", f"The sheet holds {n_items} items. Each item is a client's message "
             "(`speech`) and two counsellor responses, `response_a` and `response_b`, in random order. For each "
             "principle below, write in its column which response follows it better: `A` or `B` (`tie` if they "
             "are truly equal, typed as the word; leave the cell empty if you cannot judge). In `pref_overall` give your overall "
             "preference. Put your name in `annotator` on every row and use `notes` freely. Do not edit `item_id` "
             "or the responses. Save as CSV (UTF-8) when done.", ""]
    return "\n".join(lines + principles_guide(("pref",)))


def principles_guide(columns: tuple[str, ...]) -> list[str]:
    """The seven principles (Box B) as Markdown lines, each naming its sheet column(s) `<column>_<principle>`."""
    lines = ["## The seven principles", ""]
    for p in principles():
        lines += [f"### {p.name} ({', '.join(f'`{c}_{p.short}`' for c in columns)})", "", p.definition, ""]
        lines += [f"- {a}" for a in p.aspects] + [""]
    return lines


def load_pairs(path: str, split: str = "train") -> Dataset:
    """A `save_to_disk` folder (Dataset or DatasetDict), else a repo folder or Hub id with a 'pairs' config."""
    data = read_dataset(path, "pairs", f"--pairs {path}", AnnotationError)
    if isinstance(data, DatasetDict) and split not in data:
        raise AnnotationError(f"{path}: no split {split!r}; splits: {', '.join(data)}")
    return data[split] if isinstance(data, DatasetDict) else data


@dataclass(frozen=True)
class Agreement:
    """Agreement of two raters on one question, over the items where both gave A or B."""

    rater_a: str
    rater_b: str
    question: str  # a principle short name or "overall"
    n: int  # items compared
    agree: int
    ties: int  # items excluded because a rater said tie (and neither was missing)
    missing: int  # items excluded because a rater left the cell empty or skipped the item
    kappa: float | None  # None when undefined (no items, or both raters constant on one letter)

    @property
    def percent(self) -> float | None:
        return 100.0 * self.agree / self.n if self.n else None


@dataclass
class AgreementReport:
    """All pairwise agreements: each annotator vs the dataset labels, and between annotators."""

    n_items: int  # items in the key
    annotators: dict[str, int]  # name -> items in their sheet(s)
    agreements: list[Agreement] = field(default_factory=list)

    def get(self, rater_a: str, rater_b: str, question: str = "overall") -> Agreement:
        for a in self.agreements:
            if {a.rater_a, a.rater_b} == {rater_a, rater_b} and a.question == question:
                return a
        raise KeyError((rater_a, rater_b, question))

    def mean_label_agreement(self, question: str = "overall") -> float | None:
        """Mean over annotators of their percent agreement with the dataset (paper: 88.5% overall)."""
        vals = [v for n in self.annotators if (v := self.get(n, DATASET, question).percent) is not None]
        return sum(vals) / len(vals) if vals else None

    def comparisons(self) -> list[tuple[str, str]]:
        return [(n, DATASET) for n in self.annotators] + list(combinations(self.annotators, 2))

    def to_dict(self) -> dict:
        return {"n_items": self.n_items, "annotators": self.annotators,
                "mean_label_agreement_overall": self.mean_label_agreement(),
                "agreements": [asdict(a) | {"percent": a.percent} for a in self.agreements]}

    def to_markdown(self) -> str:
        names = ", ".join(f"{k} ({v} items)" for k, v in self.annotators.items())
        lines = [f"{len(self.annotators)} annotator(s) on {self.n_items} sampled pairs: {names}.", "",
                 "| Comparison | Items | Agree | % | Cohen's κ | Ties excl. | Missing excl. |",
                 "|---|---:|---:|---:|---:|---:|---:|"]
        for a, b in self.comparisons():
            g = self.get(a, b)
            lines.append(f"| {a} vs {b} | {g.n} | {g.agree} | {_fmt(g.percent, '.1f')} | "
                         f"{_fmt(g.kappa, '.2f')} | {g.ties} | {g.missing} |")
        mean = self.mean_label_agreement()
        if mean is not None:
            lines += ["", f"Mean expert–label agreement on the overall preference: {mean:.1f}%."]
        lines += ["", "Per principle, % agreement (κ):", "",
                  "| Comparison | " + " | ".join(QUESTIONS) + " |", "|---|" + "---:|" * len(QUESTIONS)]
        for a, b in self.comparisons():
            cells = [f"{_fmt(g.percent, '.1f')} ({_fmt(g.kappa, '.2f')})"
                     for g in (self.get(a, b, q) for q in QUESTIONS)]
            lines.append(f"| {a} vs {b} | " + " | ".join(cells) + " |")
        return "\n".join(lines) + "\n"


def _fmt(v: float | None, spec: str) -> str:
    return "–" if v is None else format(v, spec)


def normalise(value) -> str | None:
    """'A'/'b'/'Response A'/'tie'/'=' -> 'A'/'B'/'tie'; empty -> None; raises ValueError otherwise."""
    text = "" if value is None else str(value).strip().lower()
    if text in ("", "nan", "none", "null"):
        return None
    text = re.sub(r"^(response|resp\.?)\s*", "", text).strip(" .")
    if text not in _ANSWERS:
        raise ValueError(value)
    return _ANSWERS[text]


def _read_rows(path: Path) -> list[tuple[str, dict]]:
    """(location, record) per row of a CSV/TSV or JSONL file; 'row N' is the row number a spreadsheet shows.
    A missing, empty or non-UTF-8 file, a line that is not a JSON object, a malformed CSV are errors."""
    suffix = path.suffix.lower()
    if suffix not in (".jsonl", ".json", ".csv", ".tsv", ".txt"):
        raise AnnotationError(f"{path}: unsupported sheet format {suffix!r}; save it as CSV or JSONL")
    data = path.read_bytes() if path.is_file() else None
    if not (data or b"").strip():
        raise AnnotationError(f"{path}: {'the file is empty' if data is not None else 'file not found'}")
    try:
        text = data.decode("utf-8-sig")  # utf-8-sig: Excel adds a BOM on save
    except UnicodeDecodeError as e:
        raise AnnotationError(f"{path}: line {len(data[:e.start + 1].splitlines())}: not valid UTF-8; save it as "
                              f"UTF-8 (Excel: CSV UTF-8)") from None
    if suffix in (".jsonl", ".json"):
        out = []
        for i, line in enumerate(text.splitlines(), start=1):
            try:
                rec = json.loads(line) if line.strip() else {}
            except (ValueError, RecursionError) as e:
                raise AnnotationError(f"{path}: line {i} is not JSON ({e})") from None
            if not isinstance(rec, dict):
                raise AnnotationError(f"{path}: line {i}: expected a JSON object, got {type(rec).__name__}")
            out += [(f"line {i}", rec)] if rec else []
        return out
    delimiter = max(",;\t", key=text.split("\n", 1)[0].count)  # some locales save CSV with ';', Sheets exports TSV
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        return [(f"row {i}", r) for i, r in enumerate(reader, start=2)]
    except csv.Error as e:
        raise AnnotationError(f"{path}: row {reader.line_num}: malformed CSV ({e})") from None


def sheet_rows(path: Path, columns: set[str]) -> tuple[str, list[tuple[str, str, dict]]]:
    """A filled sheet's rows as (annotator, [(where, item_id, row)]): blank lines skipped, every row with
    `columns` and a unique item_id, one annotator per file (else the file's stem names them)."""
    rows, seen, names = [], set(), set()
    for where, rec in _read_rows(path):
        if not any(str(v or "").strip() for v in rec.values()):
            continue  # blank line left by a spreadsheet
        if missing := sorted(columns - rec.keys()):
            raise AnnotationError(f"{path}: {where}: missing column(s) {', '.join(missing)}")
        item = str(rec["item_id"] or "").strip()
        if not item:
            raise AnnotationError(f"{path}: {where}: empty item_id")
        if item in seen:
            raise AnnotationError(f"{path}: {where}: item_id {item!r} appears twice")
        seen.add(item)
        rows.append((where, item, rec))
        if name := str(rec.get("annotator") or "").strip():
            names.add(name)
    if len(names) > 1:
        raise AnnotationError(f"{path}: several annotators in one sheet ({', '.join(sorted(names))}); "
                              "use one file per annotator")
    return (names.pop() if names else path.stem), rows


def read_sheet(path) -> tuple[str, dict[str, dict[str, str | None]]]:
    """One filled sheet -> (annotator name, {item_id: {question: 'A'|'B'|'tie'|None}})."""
    path = Path(path)
    annotator, rows = sheet_rows(path, {"item_id", *(f"pref_{q}" for q in QUESTIONS)})
    answers = {}
    for where, item, rec in rows:
        answers[item] = {}
        for q in QUESTIONS:
            try:
                answers[item][q] = normalise(rec[f"pref_{q}"])
            except ValueError:
                raise AnnotationError(f"{path}: {where} (item_id {item!r}), column pref_{q}: unknown value "
                                      f"{rec[f'pref_{q}']!r}; expected A, B, tie or empty") from None
    return annotator, answers


def read_key(path) -> dict[str, dict[str, str | None]]:
    """key.jsonl -> {item_id: {question: dataset letter 'A'|'B'|'tie'}}."""
    key = {}
    for where, rec in _read_rows(Path(path)):
        try:
            chosen, labels = rec["chosen"], rec["labels"]
            letter = {"chosen": chosen, "rejected": {"A": "B", "B": "A"}[chosen], "tie": "tie"}
            key[rec["item_id"]] = {q: letter[labels[q]] for q in QUESTIONS}
        except (KeyError, TypeError) as e:
            raise AnnotationError(f"{path}: {where}: not a key record (bad or missing {e})") from None
    return key


def compare(a: str, b: str, question: str, la: dict, lb: dict, items) -> Agreement:
    """Agreement of two raters' letters on `items`; missing beats tie when counting exclusions."""
    ya, yb, ties, missing = [], [], 0, 0
    for item in items:
        x, y = la.get(item, {}).get(question), lb.get(item, {}).get(question)
        if x is None or y is None:
            missing += 1
        elif "tie" in (x, y):
            ties += 1
        else:
            ya.append(x)
            yb.append(y)
    agree = sum(x == y for x, y in zip(ya, yb))
    defined = len(set(ya) | set(yb)) == 2  # kappa is 0/0 when both raters use one letter only
    kappa = float(cohen_kappa_score(ya, yb, labels=["A", "B"])) if defined else None
    return Agreement(a, b, question, len(ya), agree, ties, missing, kappa)


def score_sheets(sheet_paths: list, key_path) -> AgreementReport:
    """Score filled sheets (one annotator each; several files of one name are merged) against the key."""
    key = read_key(key_path)
    raters: dict[str, dict] = {}
    for path in sheet_paths:
        name, answers = read_sheet(path)
        if unknown := [i for i in answers if i not in key]:
            raise AnnotationError(f"{path}: item_id {unknown[0]!r} is not in the key {key_path} "
                                  f"({len(unknown)} unknown item(s))")
        merged = raters.setdefault(name, {})
        if twice := sorted(merged.keys() & answers.keys()):
            raise AnnotationError(f"{path}: annotator {name!r} already answered item_id {twice[0]!r} in another "
                                  "sheet (put distinct names in the annotator column)")
        merged.update(answers)
    report = AgreementReport(len(key), {n: len(v) for n, v in raters.items()})
    for a, b in report.comparisons():
        la, lb = raters[a], key if b == DATASET else raters[b]
        report.agreements += [compare(a, b, q, la, lb, key) for q in QUESTIONS]
    return report


def update_card(card_path, markdown: str) -> None:
    """Insert or replace the '## Expert validation' section between the markers (idempotent)."""
    try:
        update_section(card_path, CARD_SECTION, "Expert validation", markdown)
    except CardError as err:
        raise AnnotationError(str(err)) from None
