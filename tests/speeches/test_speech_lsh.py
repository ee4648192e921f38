"""Banded LSH in numpy keeps exactly the speeches datasketch's `MinHashLSH` keeps, chains of near duplicates
and texts without shingles included; and a hash collision between bands is never taken for a match."""

from __future__ import annotations

import random

import numpy as np
import pytest

from hub_tools.speeches.clean import MINHASH_SEED, minhash_signatures
from hub_tools.speeches.lsh import _band_pairs, near_duplicates, near_duplicates_datasketch

VOCAB = [f"w{i}" for i in range(600)]


def corpus(n: int, seed: int) -> list[str]:
    """n texts: fresh ones, near copies of earlier ones (1-12 words changed, so some fall either side of
    0.8 Jaccard), chains (a copy of a copy), copies of a few very similar texts, and punctuation only."""
    rng = random.Random(seed)
    texts: list[str] = []
    while len(texts) < n:
        r = rng.random()
        if texts and r < 0.35:
            words = rng.choice(texts[-300:]).split()
            for _ in range(rng.randint(1, 12)):
                words[rng.randrange(len(words))] = rng.choice(VOCAB)
            texts.append(" ".join(words))
        elif r < 0.37:
            texts.append("?! ...")
        else:
            texts.append(" ".join(rng.choices(VOCAB, k=rng.randint(20, 160))))
    return texts


@pytest.mark.parametrize(("seed", "threshold", "num_perm"), [(0, 0.8, 128), (1, 0.5, 64), (2, 0.9, 128)])
def test_banded_lsh_drops_exactly_what_datasketch_drops(seed, threshold, num_perm):
    sigs, has = minhash_signatures(corpus(3000, seed), num_perm, 5)
    ours = near_duplicates(sigs, has, threshold)
    theirs = near_duplicates_datasketch(sigs, has, threshold, MINHASH_SEED, "affine32")
    assert 20 < theirs.sum() < 2000  # the corpus exercises both decisions
    assert np.array_equal(ours, theirs)


def test_a_near_duplicate_of_a_dropped_speech_is_kept_unless_near_a_kept_one():
    rng = random.Random(5)
    a = [rng.choice(VOCAB) for _ in range(200)]
    b = a[:]
    for i in range(0, 200, 60):
        b[i] = "zz"  # near a
    c = b[:]
    for i in range(25, 200, 50):
        c[i] = "yy"  # near b, not near a
    sigs, has = minhash_signatures([" ".join(a), " ".join(b), " ".join(c)], 128, 5)
    theirs = near_duplicates_datasketch(sigs, has, 0.8, MINHASH_SEED, "affine32")
    assert near_duplicates(sigs, has, 0.8).tolist() == theirs.tolist() == [False, True, False]


def test_equal_band_hashes_with_different_values_are_no_candidates(monkeypatch):
    import hub_tools.speeches.lsh as lsh

    monkeypatch.setattr(lsh, "_MIX", np.zeros(256, dtype=np.uint64))  # every band hashes alike
    band = np.array([[1, 2], [3, 4], [1, 2], [5, 6]], dtype=np.uint32)
    assert _band_pairs(band).tolist() == [[0, 2]]


def test_signatures_hashed_in_chunks_on_two_threads_equal_one_pass(monkeypatch):
    import hub_tools.speeches.clean as clean

    texts = corpus(500, 3)
    whole = minhash_signatures(texts, 64, 5)
    monkeypatch.setattr(clean, "_CHUNK", 7)  # 72 chunks, the last one short
    chunked = minhash_signatures(texts, 64, 5)
    assert np.array_equal(whole[0], chunked[0]) and np.array_equal(whole[1], chunked[1])
