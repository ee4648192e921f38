"""Speech cleaning: normalisation, the length filter's bounds, exact and near de-duplication."""

from __future__ import annotations

import random

import numpy as np
import pytest
from datasketch import MinHash

from hub_tools.speeches.clean import (
    STEPS,
    clean_speeches,
    dedup_key,
    enough_letters,
    minhash_signatures,
    normalize_text,
    shingle_hashes,
)
from hub_tools.speeches.sources import SpeechRecord

WORDS = ("feel worried about work family sleep night morning partner friend mother father talk anxious sad "
         "angry tired hope change money school doctor therapy week month year always never sometimes").split()


def rec(text: str, source: str = "a") -> SpeechRecord:
    return SpeechRecord(text, source, None, f"{source}:1")


def speech(seed: int, n_words: int = 80) -> str:
    rng = random.Random(seed)
    return " ".join(rng.choice(WORDS) for _ in range(n_words))


def test_normalize_whitespace_and_paragraphs():
    raw = "  I feel\u00a0\u00a0lost.\t\tReally  lost. \r\n\r\n\n   Second   paragraph.\nline two  \n"
    assert normalize_text(raw) == "I feel lost. Really lost.\nSecond paragraph.\nline two"
    assert normalize_text(" \n\t \u2028 ") == ""
    assert normalize_text("cafe\u0301") == "caf\u00e9"  # NFC: combining accent composed


@pytest.mark.parametrize("invisible", [
    "\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad",  # zero-width, joiners, BOM, soft hyphen
    "\u200e", "\u200f", "\u202a", "\u202e", "\u2066", "\u2069", "\u061c",  # bidi marks, embeddings, isolates
    "\x00", "\x07", "\x1b", "\x7f", "\x9b",  # control characters that are not whitespace
    "\ud83d", "\U000e0041", "\u3164", "\ufe0f", "\u034f", "\u2800",  # lone surrogate, tag, fillers, selectors
])
def test_invisible_characters_are_removed_and_not_counted(invisible):
    assert normalize_text(f"{invisible}I{invisible * 3} feel{invisible}\n{invisible}\nlost{invisible}") == "I feel\nlost"
    assert normalize_text(invisible * 150) == ""
    padded = "y" * 99 + invisible * 10  # 99 characters a reader sees
    kept, report = clean_speeches([rec(padded), rec(invisible * 150)], near_dedup=False)
    assert not kept and (report["too_short"], report["empty"]) == (1, 1)
    normalize_text(invisible + "x").encode("utf-8")  # a lone surrogate would fail here (and in save_to_disk)


def test_speeches_with_too_few_letters_are_dropped_with_their_reason():
    texts = {". " * 75: False, "!?" * 60: False, "1234 5678 " * 12: False, "\U0001f622 " * 60: False,
             "I feel " + "!" * 150: False, "I can't sleep (3-4 h) & I'm 25: " * 4: True,
             "Je me sens seul depuis des mois, et personne ne comprend pourquoi je pleure autant." * 2: True,
             "Μου λείπει η μητέρα μου κάθε μέρα και δεν ξέρω πώς να το πω σε κανέναν γύρω μου.": True,
             "मैं कई महीनों से उदास हूँ और मुझे समझ नहीं आता कि किससे बात करूँ, मेरे परिवार में कोई नहीं सुनता।": True}
    kept, report = clean_speeches([rec(t) for t in texts], min_chars=50, near_dedup=False)
    assert [r.text for r in kept] == [normalize_text(t) for t, keep in texts.items() if keep]
    assert report["too_few_letters"] == 5 and report["per_source"]["a"]["too_few_letters"] == 5
    kept, report = clean_speeches([rec(t) for t in texts], min_chars=50, min_letter_fraction=0, near_dedup=False)
    assert len(kept) == len(texts) and report["too_few_letters"] == 0  # 0 keeps them all
    assert enough_letters("ab !!", 0.5) and not enough_letters("ab !!!", 0.5) and not enough_letters("", 0.1)
    assert enough_letters("é!", 0.5) and not enough_letters("é!!", 0.5) and enough_letters("ab!\u2019", 0.5)


def test_length_bounds_are_inclusive():
    texts = {n: "x" * n for n in (99, 100, 1000, 1001)}
    kept, report = clean_speeches([rec(t) for t in texts.values()], near_dedup=False)
    assert sorted(len(r.text) for r in kept) == [100, 1000]
    assert (report["too_short"], report["too_long"], report["kept"]) == (1, 1, 2)


def test_length_measured_after_normalisation_and_empty_counted():
    padded = "   " + "y" * 99 + "    \n\n  "  # 99 characters once stripped
    kept, report = clean_speeches([rec(padded), rec("   \n "), rec("z" * 100)], near_dedup=False)
    assert [r.text for r in kept] == ["z" * 100]
    assert (report["empty"], report["too_short"]) == (1, 1)


def test_custom_bounds():
    kept, _ = clean_speeches([rec("a" * 5), rec("b" * 10), rec("c" * 11)], min_chars=5, max_chars=10, near_dedup=False)
    assert [len(r.text) for r in kept] == [5, 10]


def test_exact_dedup_ignores_case_and_whitespace_and_keeps_first_source():
    base = speech(1, 30)
    variants = [rec(base, "first"), rec(base.upper(), "second"), rec("  " + base.replace(" ", "\n ", 3) + " ", "third")]
    kept, report = clean_speeches(variants + [rec(speech(2, 30), "third")], near_dedup=False)
    assert [r.source for r in kept] == ["first", "third"] and kept[0].text == base
    assert report["exact_dup"] == 2
    assert report["per_source"]["second"]["exact_dup"] == 1 and report["per_source"]["third"]["kept"] == 1
    assert dedup_key("A  b\nC") == dedup_key("a b c")


def test_near_duplicate_with_one_word_changed_is_removed_and_different_kept():
    base = speech(3, 100)
    words = base.split()
    words[50] = "zebra"
    one_changed = " ".join(words)
    different = speech(4, 100)
    kept, report = clean_speeches([rec(base, "early"), rec(one_changed, "late"), rec(different, "late")],
                                  max_chars=5000)
    assert [r.text for r in kept] == [base, different]
    assert report["near_dup"] == 1 and report["per_source"]["late"]["near_dup"] == 1


def test_near_dedup_can_be_switched_off():
    base = speech(5, 100)
    changed = base.replace(base.split()[10], "zebra", 1)
    kept, report = clean_speeches([rec(base), rec(changed)], max_chars=5000, near_dedup=False)
    assert len(kept) == 2 and report["near_dup"] == 0


def test_threshold_controls_near_dedup():
    base = speech(6, 100)
    words = base.split()
    for i in range(0, 100, 10):  # ten words changed: Jaccard of 5-shingles ~0.35
        words[i] = "zebra"
    edited = " ".join(words)
    strict, _ = clean_speeches([rec(base), rec(edited)], max_chars=5000, near_dup_threshold=0.8)
    loose, _ = clean_speeches([rec(base), rec(edited)], max_chars=5000, near_dup_threshold=0.2)
    assert len(strict) == 2 and len(loose) == 1


def test_signatures_match_datasketch_minhash():
    texts = [speech(7, 40), "too few words", "!!! ???", speech(8, 12)]
    sigs, has = minhash_signatures(texts, num_perm=64, shingle_size=5)
    hashes, doc = shingle_hashes(texts, 5)
    assert has.tolist() == [True, True, False, True]
    assert (doc == 1).sum() == 1  # three words < 5: one shingle of the whole text
    for i in (0, 1, 3):
        m = MinHash(num_perm=64, seed=1, hashfunc=int)
        m.update_batch([int(h) for h in hashes[doc == i]])
        assert np.array_equal(m.hashvalues, sigs[i])


def test_shingles_are_order_sensitive_and_punctuation_blind():
    (a, _), (b, _), (c, _) = (shingle_hashes([t], 3) for t in ("one two three", "three two one", "One, two; three!"))
    assert a[0] != b[0] and a[0] == c[0]


def test_report_has_every_step_per_source():
    kept, report = clean_speeches([rec("x" * 150, "s1"), rec("short", "s2")])
    assert report["input"] == 2 and report["kept"] == 1
    assert set(report["per_source"]["s2"]) == {"input", "answer_marker", "empty", "too_short", "too_long",
                                               "too_few_letters", "exact_dup", "near_dup", "kept"}
    assert report["per_source"]["s2"]["too_short"] == 1


def test_rows_rejected_by_their_loader_are_counted_never_kept():
    answer_left = SpeechRecord("x" * 150 + " Output: do this", "phi", None, "f:2", "answer_marker")
    kept, report = clean_speeches([answer_left, rec("y" * 150, "phi")])
    assert [r.text for r in kept] == ["y" * 150]
    assert report["answer_marker"] == 1 and report["per_source"]["phi"]["answer_marker"] == 1
    assert report["input"] == 2 == report["kept"] + sum(report[s] for s in STEPS)
    with pytest.raises(ValueError, match="unknown rejection reason 'nope'"):
        clean_speeches([SpeechRecord("z", "s", None, "f:1", "nope")])


@pytest.mark.parametrize("n", [0, 1])
def test_tiny_inputs(n):
    kept, report = clean_speeches([rec(speech(9, 40))] * n)
    assert len(kept) == n and report["kept"] == n


@pytest.mark.parametrize("texts", [
    [],  # no speech
    [""],  # 0 words (dropped as empty before de-duplication)
    ["word"],  # 1 word
    ["two words"],  # the crash: all speeches together hold fewer words than a shingle
    ["two words", "other two", "three"],
    ["!!! ??? ...", "--- ,,, ;;;"],  # punctuation only: no shingle at all
    ["one speech with exactly seven words here"],
])
@pytest.mark.parametrize("shingle_size", [1, 5, 64])
def test_odd_corpora_deduplicate(texts, shingle_size):
    kept, report = clean_speeches([rec(t) for t in texts], min_chars=1, min_letter_fraction=0,
                                  shingle_size=shingle_size)  # punctuation only reaches de-duplication
    assert [r.text for r in kept] == [t for t in texts if t]
    assert report["near_dup"] == 0 and report["empty"] == texts.count("")


def test_short_near_duplicates_are_still_found():
    kept, report = clean_speeches([rec("Help me."), rec("help, me!"), rec("not me")], min_chars=1)
    assert [r.text for r in kept] == ["Help me.", "not me"] and report["near_dup"] == 1
