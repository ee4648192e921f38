"""Preference pairs from rated responses (paper §3.3).

Speeches are split into train/test first (by speech, so no speech is in both), then paired:
train keeps every pair of one speech's responses whose overall scores differ by at least
`min_gap` (chosen = higher); test keeps only the (highest, lowest) pair of each speech, and only
if its gap reaches `min_gap`. The result is the "pairs" config (messages, margins, safety-veto
flag, topics); `to_release` narrows it to the public release's columns (RELEASE_COLUMNS).

The split covers the speeches that have at least one ratings row (those that went through the
pipeline); each speech is ranked by a seeded hash of its id, so the split does not depend on row
order and a speech keeps its side when others are added. Incomplete ratings (a quarantined
principle) still place their speech in a split but never enter a pair.
"""

from __future__ import annotations

import hashlib
from itertools import combinations
from typing import Any

from datasets import Dataset, DatasetDict, Features, List, Value

from ..errors import PsycoprefError
from ..paper.principles import PRINCIPLE_NAMES
from ..paper.public_release import RATING_COLUMNS, RELEASE_COLUMNS, RELEASE_FEATURES, SPLITS
from .config import PairsConfig

GAP_TOLERANCE = 1e-9  # overall is a mean of 7 ints: 7/7 - 0 must count as a gap of exactly 1


class PairsError(PsycoprefError, ValueError):
    """Ratings or speeches that cannot be paired; the message names the row, column or split."""


# ---- schemas -------------------------------------------------------------------------------

_MESSAGES = List({"role": Value("string"), "content": Value("string")})
PAIRS_FEATURES = Features(
    {
        "ID": Value("string"),
        "prefID": Value("int64"),
        "question": Value("string"),
        "prompt": _MESSAGES,
        "chosen": _MESSAGES,
        "rejected": _MESSAGES,
        "chosen_model": Value("string"),
        "rejected_model": Value("string"),
        **{c: Value("int64") for c in RATING_COLUMNS},
        "overall_chosen": Value("float64"),
        "overall_rejected": Value("float64"),
        **{f"margin_{p}": Value("int64") for p in PRINCIPLE_NAMES},
        "margin_overall": Value("float64"),
        "safety_veto": Value("bool"),
        "topic_coarse": Value("string"),
        "topic_fine": Value("string"),
        "source": Value("string"),
    }
)

_SPEECH_COLUMNS = ["id", "text", "source", "topic_fine", "topic_coarse"]
_RATING_INPUT = ["speech_id", "response_id", "member", "response", "overall", "complete", *[f"{p}_rating" for p in PRINCIPLE_NAMES]]


# ---- split ---------------------------------------------------------------------------------

def _rank_key(seed: int, speech_id: str) -> str:
    # A keyed hash ranks each id independently of the others, so the split ignores input order
    # and a speech keeps its side when other speeches are added (up to the size cut-off).
    return hashlib.sha256(f"{seed}:{speech_id}".encode()).hexdigest()


def n_test_speeches(n: int, cfg: PairsConfig) -> int:
    """How many of n speeches go to test: test_size if set, else round(n * test_fraction)."""
    if cfg.test_size is not None:
        if cfg.test_size > n:
            raise PairsError(f"test_size={cfg.test_size} but only {n} speeches have ratings")
        return cfg.test_size
    k = round(n * cfg.test_fraction)
    if cfg.test_fraction > 0 and n >= 2:
        k = min(max(k, 1), n - 1)  # a non-zero fraction always leaves both splits a speech
    return k


def split_speeches(speech_ids, cfg: PairsConfig | None = None, seed: int = 42) -> dict[str, str]:
    """Map each speech id to "train" or "test"; seeded (cfg.seed wins over `seed`), order-independent."""
    cfg = cfg or PairsConfig()
    seed = cfg.seed if cfg.seed is not None else seed
    ids = sorted(set(speech_ids))
    k = n_test_speeches(len(ids), cfg)
    ranked = sorted(ids, key=lambda sid: (_rank_key(seed, sid), sid))
    test = set(ranked[:k])
    return {sid: ("test" if sid in test else "train") for sid in ids}


# ---- pairing -------------------------------------------------------------------------------

def _require(ds: Dataset, columns: list[str], name: str) -> None:
    missing = [c for c in columns if c not in ds.column_names]
    if missing:
        raise PairsError(f"{name} dataset lacks column(s) {', '.join(missing)}; has {', '.join(ds.column_names)}")


def _usable_ratings(ratings: Dataset) -> tuple[dict[str, list[dict]], int]:
    """Group complete rating rows by speech; return them and the number of incomplete rows skipped."""
    rows = ratings.select_columns(_RATING_INPUT).to_list()
    by_speech: dict[str, list[dict]] = {}
    seen: set[str] = set()
    incomplete = 0
    for i, row in enumerate(rows):
        rid = row["response_id"]
        if rid in seen:
            raise PairsError(f"ratings row {i}: response_id {rid!r} is rated twice")
        seen.add(rid)
        usable = by_speech.setdefault(row["speech_id"], [])  # every rated speech joins the split
        if not row["complete"]:
            incomplete += 1
            continue
        scores = [row[f"{p}_rating"] for p in PRINCIPLE_NAMES]
        missing = [p for p, s in zip(PRINCIPLE_NAMES, scores) if s is None]
        if missing:
            empty = ", ".join(f"{p}_rating" for p in missing)
            raise PairsError(f"ratings row {i} ({rid}): complete=True but {empty} is empty")
        mean = sum(scores) / len(scores)
        if row["overall"] is not None and abs(row["overall"] - mean) > 1e-6:
            raise PairsError(f"ratings row {i} ({rid}): overall={row['overall']} is not the mean of its 7 ratings ({mean})")
        row["overall"] = mean
        usable.append(row)
    return by_speech, incomplete


def _pair_row(speech: dict, chosen: dict, rejected: dict, pref_id: int) -> dict[str, Any]:
    row: dict[str, Any] = {
        "ID": speech["id"],
        "prefID": pref_id,
        "question": speech["text"],
        "prompt": [{"role": "user", "content": speech["text"]}],
        "chosen": [{"role": "assistant", "content": chosen["response"]}],
        "rejected": [{"role": "assistant", "content": rejected["response"]}],
        "chosen_model": chosen["member"],
        "rejected_model": rejected["member"],
    }
    for side, r in (("chosen", chosen), ("rejected", rejected)):
        for p in PRINCIPLE_NAMES:
            row[f"{side}_{p}_rating"] = r[f"{p}_rating"]
    row["overall_chosen"] = chosen["overall"]
    row["overall_rejected"] = rejected["overall"]
    for p in PRINCIPLE_NAMES:
        row[f"margin_{p}"] = chosen[f"{p}_rating"] - rejected[f"{p}_rating"]
    row["margin_overall"] = chosen["overall"] - rejected["overall"]
    row["safety_veto"] = rejected["safety_rating"] > chosen["safety_rating"]
    for key in ("topic_coarse", "topic_fine", "source"):
        row[key] = speech[key]
    return row


def best_and_worst(responses: list[dict], score: str = "overall") -> tuple[dict, dict]:
    """The highest- and the lowest-scored of one speech's responses (by `score`: the judge's overall
    rating, or a reward model's reward in an iterative-DPO round). Ties resolve to the smallest and the
    largest response_id respectively."""
    ordered = sorted(responses, key=lambda r: (-r[score], r["response_id"]))
    return ordered[0], ordered[-1]


def _candidates(responses: list[dict], split: str) -> list[tuple[dict, dict]]:
    """(higher, lower) candidates: all pairs for train, (highest, lowest) for test."""
    if split == "test":
        return [best_and_worst(responses)]
    return list(combinations(sorted(responses, key=lambda r: (-r["overall"], r["response_id"])), 2))


def build_pairs(speeches: Dataset, ratings: Dataset, cfg: PairsConfig | None = None, seed: int = 42) -> tuple[DatasetDict, dict]:
    """Split rated speeches, pair their responses, and return (DatasetDict train/test, report)."""
    cfg = cfg or PairsConfig()
    _require(speeches, _SPEECH_COLUMNS, "speeches")
    _require(ratings, _RATING_INPUT, "ratings")
    speech_rows = {}
    for i, s in enumerate(speeches.select_columns(_SPEECH_COLUMNS).to_list()):
        if s["id"] in speech_rows:
            raise PairsError(f"speeches row {i}: duplicate id {s['id']!r}")
        speech_rows[s["id"]] = s
    by_speech, incomplete = _usable_ratings(ratings)
    unknown = sorted(set(by_speech) - set(speech_rows))
    if unknown:
        raise PairsError(f"ratings name {len(unknown)} speech id(s) not in the speeches dataset, e.g. {unknown[0]!r}")
    split_of = split_speeches(by_speech, cfg, seed)

    zero = lambda: {s: 0 for s in SPLITS}  # noqa: E731
    report: dict[str, Any] = {
        "seed": cfg.seed if cfg.seed is not None else seed,
        "min_gap": cfg.min_gap,
        "speeches": zero(),
        "speeches_unrated": len(speech_rows) - len(by_speech),
        "excluded_incomplete_ratings": incomplete,
        "speeches_lt2_responses": zero(),
        "candidate_pairs": zero(),
        "pairs_dropped_gap": zero(),
        "safety_veto_flagged": zero(),
        "safety_veto_dropped": zero(),
        "pairs": zero(),
        "mean_gap": {s: None for s in SPLITS},
    }
    rows: dict[str, list[dict]] = {s: [] for s in SPLITS}
    for sid in sorted(by_speech):
        split = split_of[sid]
        report["speeches"][split] += 1
        responses = by_speech[sid]
        if len(responses) < 2:
            report["speeches_lt2_responses"][split] += 1
            continue
        pref_id = 0
        for hi, lo in _candidates(responses, split):
            report["candidate_pairs"][split] += 1
            if hi["overall"] - lo["overall"] < cfg.min_gap - GAP_TOLERANCE:
                report["pairs_dropped_gap"][split] += 1
                continue
            row = _pair_row(speech_rows[sid], hi, lo, pref_id)
            if row["safety_veto"]:
                report["safety_veto_flagged"][split] += 1
                if cfg.drop_safety_veto:
                    report["safety_veto_dropped"][split] += 1
                    continue
            rows[split].append(row)
            pref_id += 1
    for split in SPLITS:
        report["pairs"][split] = len(rows[split])
        if rows[split]:
            report["mean_gap"][split] = sum(r["margin_overall"] for r in rows[split]) / len(rows[split])
        else:
            raise PairsError(_empty_reason(split, report, cfg))
    out = DatasetDict({s: Dataset.from_list(rows[s], features=PAIRS_FEATURES) for s in SPLITS})
    return out, report


def _empty_reason(split: str, report: dict, cfg: PairsConfig) -> str:
    n = report["speeches"][split]
    if n == 0:
        return (f"{split} split has no pairs: no speeches were assigned to it "
                f"({sum(report['speeches'].values())} rated speeches; raise test_size/test_fraction or rate more)")
    vetoed = report["safety_veto_dropped"][split]
    return (f"{split} split has no pairs: {n} {split} speeches, "
            f"{report['speeches_lt2_responses'][split]} with < 2 complete ratings "
            f"({report['excluded_incomplete_ratings']} incomplete rating rows excluded overall), "
            f"{report['pairs_dropped_gap'][split]} of {report['candidate_pairs'][split]} candidate pairs "
            f"with gap < {cfg.min_gap}" + (f", {vetoed} dropped by the safety veto" if vetoed else "")
            + "; lower min_gap or rate more speeches")


# ---- public release ------------------------------------------------------------------------

def _release_batch(batch: dict[str, list]) -> dict[str, list]:
    out = {c: batch[c] for c in RELEASE_COLUMNS}
    for side in ("chosen", "rejected"):
        out[side] = [msgs[-1]["content"] if isinstance(msgs, list) else msgs for msgs in batch[side]]
    return out


def to_release(pairs_ds: Dataset | DatasetDict) -> Dataset | DatasetDict:
    """The public release's columns in order (chosen/rejected as plain assistant text)."""
    if isinstance(pairs_ds, DatasetDict):
        return DatasetDict({k: to_release(v) for k, v in pairs_ds.items()})
    missing = [c for c in RELEASE_COLUMNS if c not in pairs_ds.column_names]
    if missing:
        raise PairsError(f"pairs dataset lacks release column(s) {', '.join(missing)}")
    drop = [c for c in pairs_ds.column_names if c not in RELEASE_COLUMNS]
    out = pairs_ds.map(_release_batch, batched=True, remove_columns=drop, features=RELEASE_FEATURES)
    return out.select_columns(RELEASE_COLUMNS)
