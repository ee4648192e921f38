"""Near-duplicate removal over MinHash signatures: banded LSH in numpy, with datasketch's decisions.

The reference is datasketch's `MinHashLSH` used one speech at a time (`near_duplicates_datasketch`, kept
for the tests and the benchmark): in input order, a speech is dropped when a kept earlier speech shares
one of the LSH bands with it (datasketch's band count `b` and width `r` for the threshold) and their
signatures agree in at least `threshold x num_perm` slots; a kept speech is then indexed. Per-item Python
inserts and queries are its cost (about 17 s of 30 s at 300,000 speeches).

`near_duplicates` makes the same decisions with whole-array work: per band, the speeches are sorted by a
64-bit hash of their band; each run of equal hashes gives candidate pairs, checked for truly equal band
values (a hash collision is no candidate) and then confirmed by the slot count. Only the confirmed pairs,
a few per near duplicate, go through a Python loop in input order, so "an earlier kept speech" means
exactly what it means to datasketch: a speech dropped as a near duplicate never causes another drop.
"""

from __future__ import annotations

import functools

import numpy as np
from datasketch import LeanMinHash, MinHashLSH

_MIX = np.random.RandomState(4321).randint(0, 1 << 62, size=256, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
_PAIR_CHUNK = 1 << 18  # candidate pairs compared at once (x num_perm x 4 bytes x 2 arrays: ~256 MiB at 128)


@functools.cache
def bands(threshold: float, num_perm: int) -> tuple[tuple[int, int], ...]:
    """datasketch's band ranges (start, end) for this threshold and permutation count."""
    return tuple(MinHashLSH(threshold=threshold, num_perm=num_perm).hashranges)


def near_duplicates_datasketch(sigs: np.ndarray, has: np.ndarray, threshold: float, seed: int,
                               scheme: str) -> np.ndarray:
    """Which rows are near duplicates (bool per row), datasketch's `MinHashLSH` queried row by row."""
    lsh = MinHashLSH(threshold=threshold, num_perm=sigs.shape[1])
    need = threshold * sigs.shape[1]
    dropped = np.zeros(len(sigs), dtype=bool)
    for i in np.flatnonzero(has):
        m = LeanMinHash(seed=seed, hashvalues=sigs[i], scheme=scheme)
        if any(np.count_nonzero(sigs[j] == sigs[i]) >= need for j in lsh.query(m)):
            dropped[i] = True
            continue
        lsh.insert(int(i), m, check_duplication=False)
    return dropped


def _band_pairs(band: np.ndarray) -> np.ndarray:
    """(k, 2) row pairs (first < second) whose band values are equal, via a sort by band hash."""
    h = np.zeros(len(band), dtype=np.uint64)
    for k in range(band.shape[1]):
        h += (band[:, k].astype(np.uint64) + np.uint64(k + 1)) * _MIX[k]
        h ^= h >> np.uint64(29)
    order = np.argsort(h, kind="stable")
    hs = h[order]
    pairs = []
    d = 1
    same = hs[d:] == hs[:-d]  # the element d places later in the sort is in the same run
    while same.any():
        where = np.flatnonzero(same)
        pairs.append(np.stack([order[where], order[where + d]], axis=1))
        d += 1
        same = same[:-1] & (hs[d:] == hs[:-d])  # still in one run d places on: every step between was too
    if not pairs:
        return np.zeros((0, 2), dtype=np.int64)
    found = np.sort(np.concatenate(pairs), axis=1)  # (earlier, later)
    return found[(band[found[:, 0]] == band[found[:, 1]]).all(axis=1)]  # equal bands, not just equal hashes


def near_duplicates(sigs: np.ndarray, has: np.ndarray, threshold: float) -> np.ndarray:
    """Which rows are near duplicates (bool per row): the same answer as `near_duplicates_datasketch`."""
    rows = np.flatnonzero(has)
    sub = sigs[rows]
    need = threshold * sigs.shape[1]
    found = [_band_pairs(np.ascontiguousarray(sub[:, lo:hi])) for lo, hi in bands(threshold, sigs.shape[1])]
    pairs = np.unique(np.concatenate(found), axis=0) if found else np.zeros((0, 2), dtype=np.int64)
    agree = np.concatenate([np.count_nonzero(sub[pairs[lo:lo + _PAIR_CHUNK, 0]] == sub[pairs[lo:lo + _PAIR_CHUNK, 1]],
                                             axis=1) for lo in range(0, len(pairs), _PAIR_CHUNK)] or [np.zeros(0)])
    confirmed = pairs[agree >= need]
    confirmed = confirmed[np.lexsort((confirmed[:, 0], confirmed[:, 1]))]  # by the later row
    dropped_sub = np.zeros(len(rows), dtype=bool)
    for earlier, later in confirmed.tolist():
        if not dropped_sub[earlier]:  # final: every pair ending at `earlier` came before this one
            dropped_sub[later] = True
    dropped = np.zeros(len(sigs), dtype=bool)
    dropped[rows[dropped_sub]] = True
    return dropped
