"""Benchmark of stage 1 (client speeches) on 30,000 synthetic speeches.

Writes a counsel-chat CSV (questions repeated once per answer, as in the real file, with topics) and
an Amod JSON-lines file into a temp folder, then times each step of the real preparation code:
load, length filter (with normalisation), exact de-dup, near de-dup (MinHash LSH), topic mapping,
and their total; then the whole `run_speeches` stage (which adds building and saving the Dataset).

Near de-dup is the numpy banded LSH (`speeches/lsh.py`); the same run then times the former path,
datasketch's `MinHashLSH` queried speech by speech, on the same signatures, and checks that both keep
the same speeches. Peak memory is the process's maximum resident set size after the preparation (before
the comparison and the stage run, which would raise it).

    python benchmarks/bench_speeches.py [--n 30000] [--seed 0] [--compare-bulk] [--skip-stage]
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import logging
import multiprocessing
import os
import random
import resource
import tempfile
import time
from pathlib import Path

from datasketch import MinHash

from hub_tools.speeches.clean import (
    MINHASH_SEED,
    Tally,
    exact_dedup,
    length_filter,
    minhash_signatures,
    remove_near_duplicates,
    shingle_hashes,
)
from hub_tools.speeches.config import SourceSpec, SpeechesConfig
from hub_tools.speeches.lsh import near_duplicates, near_duplicates_datasketch
from hub_tools.speeches.sources import load_source
from hub_tools.speeches.stage import run_speeches
from hub_tools.speeches.topics import label_topics

COUNSEL_TOPICS = ["depression", "anxiety", "family-conflict", "relationships", "parenting", "self-esteem",
                  "grief-and-loss", "trauma", "stress", "lgbtq", "marriage", "intimacy", "substance-abuse",
                  "anger-management", "sleep-improvement", "workplace-relationships", "spirituality"]


def _vocabulary(rng: random.Random, size: int = 4000) -> tuple[list[str], list[float]]:
    """Pseudo-words from syllables and their cumulative Zipf weights, so texts share common words."""
    syll = ["ka", "lo", "mi", "ne", "ru", "sa", "te", "vi", "po", "da", "fe", "gu", "ho", "ji", "ba", "ze", "an", "or"]
    words = sorted({"".join(rng.choice(syll) for _ in range(rng.randint(1, 4))) for _ in range(size * 2)})[:size]
    rng.shuffle(words)
    return words, list(itertools.accumulate(1.0 / (rank + 1) for rank in range(len(words))))


def _speech(rng: random.Random, words: list[str], cum_weights: list[float]) -> str:
    target = rng.randint(50, 1200)  # the paper keeps 100..1000, so some fall outside on purpose
    out, n = [], 0
    while n < target:
        sentence = rng.choices(words, cum_weights=cum_weights, k=rng.randint(5, 18))
        text = " ".join(sentence).capitalize() + rng.choice([".", "?", "!", "..."])
        out.append(text)
        n += len(text) + 1
    return " ".join(out)[:target].rsplit(" ", 1)[0]


def _noisy(rng: random.Random, text: str) -> str:
    """An exact duplicate after normalisation: case and whitespace noise only."""
    text = text.upper() if rng.random() < 0.3 else text.lower() if rng.random() < 0.5 else text
    return "  " + text.replace(" ", rng.choice(["  ", " \t", "\n", " "]), 3) + " \n"


def _near(rng: random.Random, text: str, words: list[str]) -> str:
    """One word replaced: a near duplicate (Jaccard of 5-shingles >= 0.8 for texts of >= 50 words)."""
    toks = text.split(" ")
    toks[rng.randrange(len(toks))] = rng.choice(words)
    return " ".join(toks)


def make_corpus(n: int, seed: int) -> list[tuple[str, str]]:
    """n (text, counsel-chat topic) pairs: ~85% distinct, ~10% exact dups with noise, ~5% near dups."""
    rng = random.Random(seed)
    words, weights = _vocabulary(rng)
    items: list[tuple[str, str]] = []
    while len(items) < n:
        r = rng.random()
        if items and r < 0.10:
            items.append((_noisy(rng, rng.choice(items)[0]), rng.choice(COUNSEL_TOPICS)))
        elif items and r < 0.15:
            long = [t for t, _ in items[-200:] if len(t) > 400] or [items[-1][0]]
            items.append((_near(rng, rng.choice(long), words), rng.choice(COUNSEL_TOPICS)))
        else:
            items.append((_speech(rng, words, weights), rng.choice(COUNSEL_TOPICS)))
    return items


def write_sources(items: list[tuple[str, str]], folder: Path, seed: int) -> list[SourceSpec]:
    """First half as a counsel-chat CSV (1-3 answer rows per question), second half as Amod JSONL."""
    rng = random.Random(seed + 1)
    half = len(items) // 2
    cc = folder / "20220401_counsel_chat.csv"
    with cc.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["questionID", "questionTitle", "questionText", "questionLink", "topic", "therapistInfo",
                    "therapistURL", "answerText", "upvotes", "views", "split"])
        for qid, (text, topic) in enumerate(items[:half]):
            for a in range(rng.randint(1, 3)):
                w.writerow([qid, text[:40], text, f"https://counselchat.com/q/{qid}", topic, "Jane Doe, LPC",
                            "https://counselchat.com/t/1", f"Answer {a} to question {qid}.", a, 10 * a, "train"])
    amod = folder / "combined_dataset.json"
    with amod.open("w", encoding="utf-8") as f:
        for text, _ in items[half:]:
            f.write(json.dumps({"Context": text, "Response": "Thank you for sharing."}) + "\n")
    return [SourceSpec(name="counsel_chat", path=str(cc)), SourceSpec(name="amod", path=str(amod))]


def compare_bulk(texts: list[str], num_perm: int, shingle_size: int) -> tuple[float, float]:
    """Seconds for our numpy signatures vs datasketch `MinHash.bulk` on the very same shingle hashes."""
    start = time.perf_counter()
    sigs, _ = minhash_signatures(texts, num_perm, shingle_size)
    ours = time.perf_counter() - start
    start = time.perf_counter()
    hashes, doc = shingle_hashes(texts, shingle_size)
    per_text: list[list[int]] = [[] for _ in texts]
    for h, d in zip(hashes.tolist(), doc.tolist()):
        per_text[d].append(h)
    bulk = MinHash.bulk([p for p in per_text if p], num_perm=num_perm, hashfunc=int)
    theirs = time.perf_counter() - start
    assert all((m.hashvalues == s).all() for m, s in zip(bulk, sigs[[bool(p) for p in per_text]]))
    return ours, theirs


def _write_corpus(n: int, seed: int, folder: Path) -> list[SourceSpec]:
    return write_sources(make_corpus(n, seed), folder, seed)


def compare_lsh(texts: list[str], threshold: float, num_perm: int, shingle_size: int) -> tuple[float, float, float]:
    """Seconds for signatures, for the numpy banded LSH and for datasketch's per-item `MinHashLSH` on the
    same signatures (which must drop the same speeches)."""
    start = time.perf_counter()
    sigs, has = minhash_signatures(texts, num_perm, shingle_size)
    sig_s = time.perf_counter() - start
    start = time.perf_counter()
    ours = near_duplicates(sigs, has, threshold)
    ours_s = time.perf_counter() - start
    start = time.perf_counter()
    theirs = near_duplicates_datasketch(sigs, has, threshold, MINHASH_SEED, "affine32")
    theirs_s = time.perf_counter() - start
    assert (ours == theirs).all(), "banded LSH and datasketch dropped different speeches"
    return sig_s, ours_s, theirs_s


def bench(n: int, seed: int, with_bulk: bool = False, with_stage: bool = True) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-speeches-") as tmp:
        folder = Path(tmp)
        t = time.perf_counter()
        with multiprocessing.get_context("fork").Pool(1) as child:  # the corpus never enters this process's peak memory
            specs = child.apply(_write_corpus, (n, seed, folder))
        gen_s = time.perf_counter() - t
        cfg = SpeechesConfig(sources=specs)
        times: dict[str, float] = {}
        cpu: dict[str, float] = {}  # CPU seconds of this process (both threads): fairer than wall time on a busy machine
        tally = Tally()

        def timed(name, fn):
            start, start_cpu = time.perf_counter(), time.process_time()
            result = fn()
            times[name], cpu[name] = time.perf_counter() - start, time.process_time() - start_cpu
            return result

        records = timed("load", lambda: [r for s in specs for r in load_source(s)])
        kept = timed("length filter (+normalise)", lambda: length_filter(records, cfg.min_chars, cfg.max_chars, tally,
                                                                                    cfg.min_letter_fraction))
        kept = dedup_kept = timed("exact de-dup", lambda: exact_dedup(kept, tally))
        kept = timed("near de-dup (MinHash LSH)", lambda: remove_near_duplicates(
            kept, cfg.near_dup_threshold, cfg.num_perm, cfg.shingle_size, tally))
        fine, _ = timed("topic mapping", lambda: label_topics([r.raw_topic for r in kept], [r.text for r in kept]))
        total, total_cpu = sum(times.values()), sum(cpu.values())
        peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux
        sig_s, ours_s, theirs_s = compare_lsh([r.text for r in dedup_kept], cfg.near_dup_threshold, cfg.num_perm,
                                              cfg.shingle_size)
        stage_s = None
        if with_stage:
            timed("stage", lambda: run_speeches(cfg, folder / "work"))
            stage_s = times.pop("stage")

    print(f"speeches generated: {n} (+ files written in {gen_s:.1f} s); loaded {len(records)} "
          f"-> kept {len(kept)}; removed {dict(tally.by_step)}; topics mapped {sum(f is not None for f in fine)}")
    print(f"{'step':<32}{'seconds':>10}{'CPU s':>10}")
    print("-" * 52)
    for name, secs in times.items():
        print(f"{name:<32}{secs:>10.2f}{cpu[name]:>10.2f}")
    print("-" * 52)
    print(f"{'total (preparation)':<32}{total:>10.2f}{total_cpu:>10.2f}")
    print(f"load average (1, 5, 15 min) at the end: {os.getloadavg()}")
    print(f"peak memory (max RSS) after the preparation: {peak_gib:.2f} GiB")
    if stage_s is not None:
        print(f"{'run_speeches (+ Dataset, save)':<32}{stage_s:>10.2f}")
    print(f"same run, same {len(dedup_kept)} speeches: signatures {sig_s:.2f} s; LSH numpy banded {ours_s:.2f} s "
          f"vs datasketch MinHashLSH per item {theirs_s:.2f} s (same speeches dropped)")
    if with_bulk:
        ours, theirs = compare_bulk([r.text for r in dedup_kept], cfg.num_perm, cfg.shingle_size)
        print(f"signatures of {len(dedup_kept)} speeches: numpy batch {ours:.2f} s, MinHash.bulk {theirs:.2f} s (same values)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=30_000, help="speeches to generate (default 30,000)")
    parser.add_argument("--seed", type=int, default=0, help="corpus seed")
    parser.add_argument("--compare-bulk", action="store_true", help="also time datasketch MinHash.bulk signatures")
    parser.add_argument("--skip-stage", action="store_true", help="do not run the whole run_speeches stage again")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    bench(args.n, args.seed, args.compare_bulk, not args.skip_stage)


if __name__ == "__main__":
    main()
