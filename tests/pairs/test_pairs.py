"""Pair rules (paper §3.3) on hand-made ratings in the real speeches/ratings formats."""

from __future__ import annotations

import random

import pytest
from datasets import Dataset, Features, Value, load_from_disk

from hub_tools.pairs.build import PairsError, build_pairs, split_speeches, to_release
from hub_tools.pairs.config import PairsConfig
from hub_tools.paper.principles import PRINCIPLE_NAMES

P = PRINCIPLE_NAMES
SEED = 7

RATINGS_FEATURES = Features(
    {
        "speech_id": Value("string"), "response_id": Value("string"), "member": Value("string"),
        "model": Value("string"), "response": Value("string"),
        **{f"{p}_rating": Value("int64") for p in P},
        **{f"{p}_rationale": Value("string") for p in P},
        "overall": Value("float64"), "complete": Value("bool"), "judge_model": Value("string"),
        "judge_mode": Value("string"), "judge_prompt_hash": Value("string"),
        "judge_params": Value("string"), "rated_at": Value("string"),
    }
)


def speeches_ds(ids):
    return Dataset.from_list([
        {"id": sid, "text": f"Client speech {sid}: I have been feeling low.", "source": "bundled",
         "topic_fine": "depression", "topic_coarse": "Core Mental Health Issues", "topic_method": "source",
         "n_chars": 40}
        for sid in ids
    ])


def rating(speech_id, member, scores, complete=None):
    """One ratings row; `scores` lists the 7 ints in PRINCIPLE_NAMES order (None = quarantined)."""
    complete = all(s is not None for s in scores) if complete is None else complete
    row = {"speech_id": speech_id, "response_id": f"{speech_id}:{member}", "member": member,
           "model": f"model-{member}", "response": f"answer of {member} to {speech_id}"}
    for p, s in zip(P, scores):
        row[f"{p}_rating"] = s
        row[f"{p}_rationale"] = None if s is None else "ok"
    row["overall"] = sum(scores) / 7 if None not in scores else None
    row.update(complete=complete, judge_model="judge", judge_mode="per_principle",
               judge_prompt_hash="abc", judge_params="{}", rated_at="2026-11-22T00:00:00Z")
    return row


def ratings_ds(rows):
    return Dataset.from_list(rows, features=RATINGS_FEATURES)


def flat(value):
    return [value] * 7


# sums of 7 ints (overall = sum/7): 35 -> 5.0, 29 -> 4.14, 27 -> 3.86, 22 -> 3.14, 21 -> 3.0
S35, S29, S27, S22, S21 = flat(5), [5] + [4] * 6, [4] * 6 + [3], [4] + [3] * 6, flat(3)


@pytest.fixture(scope="module")
def sides():
    """Two speech ids and the split each lands in with test_size=1 and SEED."""
    split = split_speeches(["spA", "spB"], PairsConfig(test_size=1), SEED)
    train = next(k for k, v in split.items() if v == "train")
    test = next(k for k, v in split.items() if v == "test")
    return train, test


def run(sides, train_rows, test_rows=None, **cfg):
    """Build with one train speech (train_rows) and one test speech (a clear 5-vs-3 pair by default)."""
    train, test = sides
    test_rows = test_rows if test_rows is not None else [("x", S35), ("y", S21)]
    rows = [rating(train, m, s) if isinstance(s, list) else s(train, m) for m, s in train_rows]
    rows += [rating(test, m, s) if isinstance(s, list) else s(test, m) for m, s in test_rows]
    return build_pairs(speeches_ds([train, test]), ratings_ds(rows), PairsConfig(test_size=1, **cfg), SEED)


def pairs_of(ds):
    return {(r["chosen_model"], r["rejected_model"]) for r in ds}


@pytest.mark.parametrize(
    ("hi", "lo", "expect_pair"),
    [
        (flat(4), flat(4), False),  # tie
        (S27, S21, False),  # gap 6/7, just below 1
        (S29, S22, True),  # exactly 1
        ([5] * 6 + [4], S27, True),  # exactly 1, but 34/7 - 27/7 < 1.0 in floats
        (S35, S21, True),  # above
    ],
)
def test_gap_threshold_is_inclusive(sides, hi, lo, expect_pair):
    if expect_pair:
        ds, report = run(sides, [("hi", hi), ("lo", lo)])
        assert pairs_of(ds["train"]) == {("hi", "lo")}
        assert report["pairs_dropped_gap"]["train"] == 0
    else:
        # the train split empties, which is an error that says why
        with pytest.raises(PairsError, match=r"train split has no pairs: 1 train speeches.*1 of 1 candidate pairs with gap < 1.0"):
            run(sides, [("hi", hi), ("lo", lo)])


def test_single_response_yields_no_pair_and_is_counted():
    # 3 speeches with a clear pair + one with a single response; with 2 test speeches each
    # split holds at least one pairable speech wherever the lone one lands
    ids = ["g1", "g2", "g3", "solo"]
    rows = [rating(sid, m, s) for sid in ids[:3] for m, s in (("a", S35), ("b", S21))]
    rows.append(rating("solo", "a", S35))
    cfg = PairsConfig(test_size=2)
    split = split_speeches(ids, cfg, SEED)
    ds, report = build_pairs(speeches_ds(ids), ratings_ds(rows), cfg, SEED)
    assert report["speeches_lt2_responses"] == {s: int(split["solo"] == s) for s in ("train", "test")}
    assert "solo" not in set(ds["train"]["ID"]) | set(ds["test"]["ID"])
    assert report["pairs"]["train"] + report["pairs"]["test"] == 3


def test_four_responses_train_pairs_exact_set(sides):
    ds, report = run(sides, [("a", S35), ("b", S29), ("c", S22), ("d", S27)])
    train = ds["train"]
    # a=5.00 b=4.14 d=3.86 c=3.14: a-d 1.14, a-c 1.86, b-c 1.00 pass; a-b, b-d, d-c fall short
    assert pairs_of(train) == {("a", "d"), ("a", "c"), ("b", "c")}
    assert sorted(train["prefID"]) == [0, 1, 2]
    assert report["candidate_pairs"]["train"] == 6 and report["pairs_dropped_gap"]["train"] == 3
    row = next(r for r in train if (r["chosen_model"], r["rejected_model"]) == ("b", "c"))
    assert row["chosen"] == [{"role": "assistant", "content": f"answer of b to {sides[0]}"}]
    assert row["rejected"][0]["content"] == f"answer of c to {sides[0]}"
    assert row["prompt"] == [{"role": "user", "content": row["question"]}]
    assert row["chosen_empathy_rating"] == 5 and row["rejected_empathy_rating"] == 4
    assert row["margin_empathy"] == 1 and row["margin_relevance"] == 1
    assert row["margin_overall"] == pytest.approx(1.0)
    assert row["overall_chosen"] == pytest.approx(29 / 7)
    assert report["mean_gap"]["train"] == pytest.approx((8 / 7 + 13 / 7 + 1.0) / 3)
    assert row["topic_coarse"] == "Core Mental Health Issues" and row["source"] == "bundled"


def test_test_split_keeps_only_highest_lowest(sides):
    test_rows = [("a", S35), ("b", S29), ("c", S22), ("d", S27)]
    ds, report = run(sides, [("p", S35), ("q", S21)], test_rows=test_rows)
    assert pairs_of(ds["test"]) == {("a", "c")}
    assert ds["test"]["prefID"] == [0]
    assert report["candidate_pairs"]["test"] == 1


def test_test_split_drops_small_gap_with_clear_error(sides):
    with pytest.raises(PairsError, match=r"test split has no pairs: 1 test speeches.*1 of 1 candidate pairs with gap < 1.0"):
        run(sides, [("p", S35), ("q", S21)], test_rows=[("a", S29), ("b", S27), ("c", S29)])


def test_test_ties_break_by_response_id(sides):
    test_rows = [("m2", S35), ("m1", S35), ("m3", S21), ("m4", S21)]
    ds, _ = run(sides, [("p", S35), ("q", S21)], test_rows=test_rows)
    assert pairs_of(ds["test"]) == {("m1", "m4")}


def test_incomplete_ratings_excluded_and_counted(sides):
    quarantined = [5, 5, 5, None, 5, 5, 5]
    flagged_incomplete = lambda sid, m: rating(sid, m, S35, complete=False)  # noqa: E731
    ds, report = run(sides, [("a", S29), ("b", S21), ("bad", quarantined), ("bad2", flagged_incomplete)])
    assert pairs_of(ds["train"]) == {("a", "b")}
    assert report["excluded_incomplete_ratings"] == 2


def test_complete_row_with_missing_rating_is_an_error(sides):
    broken = lambda sid, m: rating(sid, m, [5, 5, 5, None, 5, 5, 5], complete=True)  # noqa: E731
    with pytest.raises(PairsError, match=r"complete=True but safety_rating is empty"):
        run(sides, [("a", S35), ("bad", broken)])


def test_safety_veto_flagged_and_dropped(sides):
    unsafe_winner = [5, 5, 5, 2, 5, 5, 5]  # sum 32
    safe_loser = [3, 3, 3, 4, 3, 3, 3]  # sum 22, safer than the winner
    rows = [("w", unsafe_winner), ("l", safe_loser), ("z", flat(1))]
    ds, report = run(sides, rows)
    flagged = {(r["chosen_model"], r["rejected_model"]): r["safety_veto"] for r in ds["train"]}
    assert flagged == {("w", "l"): True, ("w", "z"): False, ("l", "z"): False}
    assert report["safety_veto_flagged"]["train"] == 1 and report["safety_veto_dropped"]["train"] == 0
    assert next(r for r in ds["train"] if r["rejected_model"] == "l")["margin_safety"] == -2

    ds, report = run(sides, rows, drop_safety_veto=True)
    assert pairs_of(ds["train"]) == {("w", "z"), ("l", "z")}
    assert sorted(ds["train"]["prefID"]) == [0, 1]  # prefIDs stay contiguous after dropping
    assert report["safety_veto_dropped"]["train"] == 1


def test_split_by_speech_seeded_and_order_independent():
    ids = [f"speech-{i:03d}" for i in range(200)]
    cfg = PairsConfig()
    a = split_speeches(ids, cfg, 1)
    shuffled = ids[:]
    random.Random(0).shuffle(shuffled)
    assert split_speeches(shuffled, cfg, 1) == a
    assert sum(v == "test" for v in a.values()) == round(200 * 3291 / 26483)
    b = split_speeches(ids, cfg, 2)
    assert a != b
    assert split_speeches(ids, PairsConfig(seed=2), 1) == b  # the config's seed wins
    assert sum(v == "test" for v in split_speeches(ids, PairsConfig(test_size=50), 1).values()) == 50
    with pytest.raises(PairsError, match="test_size=201"):
        split_speeches(ids, PairsConfig(test_size=201), 1)


def test_build_pairs_no_speech_in_both_splits():
    ids = [f"s{i:02d}" for i in range(40)]
    rows = [rating(sid, m, s) for sid in ids for m, s in (("a", S35), ("b", S29), ("c", S21))]
    cfg = PairsConfig(test_fraction=0.25)
    ds, report = build_pairs(speeches_ds(ids), ratings_ds(rows), cfg, seed=3)
    train_ids, test_ids = set(ds["train"]["ID"]), set(ds["test"]["ID"])
    assert not train_ids & test_ids
    assert len(test_ids) == report["speeches"]["test"] == 10
    assert report["pairs"] == {"train": 30 * 2, "test": 10}  # train: a-b gap 6/7 is dropped
    assert test_ids == {k for k, v in split_speeches(ids, cfg, 3).items() if v == "test"}
    other, _ = build_pairs(speeches_ds(ids), ratings_ds(rows), cfg, seed=4)
    assert set(other["test"]["ID"]) != test_ids


def test_bad_inputs_name_the_problem(sides):
    train, test = sides
    rows = [rating(train, "a", S35), rating("ghost", "a", S21)]
    with pytest.raises(PairsError, match="'ghost'"):
        build_pairs(speeches_ds([train]), ratings_ds(rows), PairsConfig(test_size=1), SEED)
    with pytest.raises(PairsError, match="lacks column.*overall"):
        build_pairs(speeches_ds([train]), ratings_ds(rows).remove_columns("overall"), PairsConfig(), SEED)
    dup = [rating(train, "a", S35), rating(train, "a", S21)]
    with pytest.raises(PairsError, match=rf"row 1: response_id '{train}:a' is rated twice"):
        build_pairs(speeches_ds([train]), ratings_ds(dup), PairsConfig(), SEED)


RELEASE = [
    "ID", "prefID", "question", "chosen", "rejected", "chosen_model", "rejected_model",
    "chosen_empathy_rating", "chosen_relevance_rating", "chosen_clarity_rating", "chosen_safety_rating",
    "chosen_exploration_rating", "chosen_autonomy_rating", "chosen_staging_rating",
    "rejected_empathy_rating", "rejected_relevance_rating", "rejected_clarity_rating", "rejected_safety_rating",
    "rejected_exploration_rating", "rejected_autonomy_rating", "rejected_staging_rating",
]


def test_release_columns_and_types(sides, tmp_path):
    ds, _ = run(sides, [("a", S35), ("b", S29), ("c", S22), ("d", S27)])
    ds.save_to_disk(str(tmp_path / "pairs"))
    loaded = load_from_disk(str(tmp_path / "pairs"))
    assert loaded["train"].features == ds["train"].features
    assert loaded["train"].features["safety_veto"].dtype == "bool"
    release = to_release(loaded["train"])
    assert release.column_names == RELEASE
    for name, feature in release.features.items():
        want = "int64" if name == "prefID" or name.endswith("_rating") else "string"
        assert feature.dtype == want, name
    first = release[0]
    assert isinstance(first["chosen"], str) and first["chosen"].startswith("answer of ")
    assert first["chosen"] == loaded["train"][0]["chosen"][0]["content"]
    assert len(release) == len(loaded["train"])
    both = to_release(loaded)
    assert set(both) == {"train", "test"} and both["test"].column_names == RELEASE
