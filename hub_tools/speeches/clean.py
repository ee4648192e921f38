"""Speech cleaning: normalisation, the paper's length filter, a letter check and (near-)duplicate removal.

Order of steps: drop rows a loader rejected (`SpeechRecord.reject`, e.g. a transcript still holding an
answer: `answer_marker`) -> normalise -> drop empty -> length filter -> too few letters -> exact de-dup
-> near de-dup. Records are processed in input order, so earlier sources (and earlier rows) win every
duplicate.

Invisible characters are removed first: control characters other than whitespace (NUL, escape, ...),
format characters (Unicode category Cf: zero-width spaces and joiners, bidi marks and overrides, the BOM,
word joiners, soft hyphens, tags), lone surrogates, and the other default-ignorable or blank characters
(Hangul fillers, variation selectors, the combining grapheme joiner, the Braille blank). A reader sees
none of them, so 150 zero-width spaces are an empty speech, not a 150-character one. (An emoji joined
with zero-width joiners shows as its parts.)

Whitespace decision: runs of spaces/tabs/NBSPs become one space, every line is stripped, and any run
of line breaks (a paragraph break or a hard wrap) becomes a single "\\n". Keeping one "\\n" preserves
the client's paragraphing for the responding models at one character of cost; length limits are
measured on this normalised text, so they count what a reader sees.

Letters: a speech in which letters (str.isalpha) make up less than `min_letter_fraction` of the visible
non-space characters is punctuation, digits or symbols, not something a client said (". " x 75 is 149
characters and no word): it is dropped as `too_few_letters`.

Near duplicates: MinHash over word shingles. Signatures are computed in numpy with datasketch's own
"affine32" permutations (the same values `MinHash.update_batch` would produce for our shingle hashes; 2-4x
faster than `MinHash.bulk`, see benchmarks/RESULTS.md), block by block. Banded LSH over the signature
matrix (`lsh.py`) finds the candidates datasketch's `MinHashLSH` would, and each is confirmed with the
estimated Jaccard before a speech is dropped: the same speeches are kept. Any corpus de-duplicates, however small: a speech with
fewer words than a shingle is one shingle of all its words, and one without words (punctuation only) is
never a near duplicate.
"""

from __future__ import annotations

import functools
import itertools
import re
import string
import sys
import unicodedata
import zlib
from collections import Counter, defaultdict
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from datasketch import MinHash

from .lsh import near_duplicates
from .sources import SpeechRecord

REJECTED = ("answer_marker",)  # reasons a loader may reject a row for (`SpeechRecord.reject`)
STEPS = (*REJECTED, "empty", "too_short", "too_long", "too_few_letters", "exact_dup", "near_dup")
MINHASH_SEED = 1  # datasketch's default seed: signatures stay comparable with plain MinHash objects
_SCHEME = "affine32"  # datasketch 2.x default permutation scheme (uint32, collision-free)
_CHUNK = 20_000  # texts hashed together: ~20k x 200 words x 8 bytes x ~8 arrays = 250 MiB at most
_BLOCK = 512  # texts per numpy block: ~512 x 200 shingles x 128 perms x 4 bytes = 50 MiB at most for 1000-char texts

# Punctuation -> space before splitting into words: 2x faster than re.findall(r"\w+") on 30k texts.
_PUNCT = str.maketrans({c: " " for c in string.punctuation
                        + "\u2018\u2019\u201c\u201d\u2026\u2013\u2014\u00ab\u00bb\u00bf\u00a1"})


# Invisible characters that are neither control/format characters nor surrogates: default-ignorable ones
# (combining grapheme joiner, Hangul fillers, Khmer inherent vowels, Mongolian variation selectors,
# variation selectors) and the blank Braille pattern.
_ALSO_INVISIBLE = ((0x034F, 0x034F), (0x115F, 0x1160), (0x17B4, 0x17B5), (0x180B, 0x180F), (0x2800, 0x2800),
                   (0x3164, 0x3164), (0xFE00, 0xFE0F), (0xFFA0, 0xFFA0), (0xE0100, 0xE01EF))
_ASCII_LETTERS = bytes(c for c in range(128) if not chr(c).isalpha()) + bytes(range(128, 256))  # deleted


@functools.cache
def _also_invisible() -> re.Pattern:
    return re.compile("[" + "".join(f"\\U{low:08x}-\\U{high:08x}" for low, high in _ALSO_INVISIBLE) + "]")


@functools.cache
def _invisible() -> re.Pattern:
    """A character class of everything `normalize_text` deletes (built once: ~0.2 s over all code points)."""
    gone = {c for c in range(sys.maxunicode + 1) if unicodedata.category(chr(c)) in ("Cc", "Cf", "Cs")}
    gone |= {c for low, high in _ALSO_INVISIBLE for c in range(low, high + 1)}
    gone = sorted(c for c in gone if not chr(c).isspace())  # tabs and line breaks are whitespace: kept for split
    ranges = [list(g) for _, g in itertools.groupby(gone, key=lambda c, n=itertools.count(): c - next(n))]
    return re.compile("[" + "".join(f"\\U{r[0]:08x}-\\U{r[-1]:08x}" for r in ranges) + "]+")


def normalize_text(text: str) -> str:
    """Invisible characters removed, NFC, one space for whitespace runs, one "\\n" for line-break runs,
    stripped.

    str.split/splitlines do the work in C (5x faster than regex substitution); they treat every
    Unicode space (NBSP, thin space, tab) and line break (\\r\\n, \\u2028) as such.
    """
    spaced = _spaces(text)
    # Most texts: nothing isprintable() refuses but line breaks, and no other invisible character (checked in C).
    if spaced.replace("\n", " ").isprintable() and (spaced.isascii() or not _also_invisible().search(spaced)):
        if spaced.isascii() or unicodedata.is_normalized("NFC", spaced):
            return spaced
    else:
        text = _invisible().sub("", text)
    return _spaces(unicodedata.normalize("NFC", text))


def _spaces(text: str) -> str:
    return "\n".join(filter(None, (" ".join(line.split()) for line in text.splitlines())))


def dedup_key(text: str) -> str:
    """Exact-duplicate key: case-folded, all whitespace (line breaks too) collapsed to one space."""
    return " ".join(text.casefold().split())


class Tally:
    """Removed counts per step and per source."""

    def __init__(self) -> None:
        self.by_step: Counter = Counter()
        self.by_source: dict[str, Counter] = defaultdict(Counter)

    def add(self, step: str, source: str) -> None:
        self.by_step[step] += 1
        self.by_source[source][step] += 1


def drop_rejected(records: Iterable[SpeechRecord], tally: Tally) -> list[SpeechRecord]:
    """Count and drop the rows their loader rejected."""
    kept = []
    for rec in records:
        if rec.reject is None:
            kept.append(rec)
        elif rec.reject in REJECTED:
            tally.add(rec.reject, rec.source)
        else:
            raise ValueError(f"{rec.origin}: unknown rejection reason {rec.reject!r}; expected one of {REJECTED}")
    return kept


def enough_letters(text: str, fraction: float) -> bool:
    """Whether letters (str.isalpha) make up at least `fraction` of a normalised text's non-space characters
    (never for a text without any)."""
    visible = len(text) - text.count(" ") - text.count("\n")
    need = fraction * visible
    # ASCII letters counted in C (10x faster) settle most texts; others count every letter
    ascii_letters = len(text.encode("ascii", "ignore").translate(None, _ASCII_LETTERS))
    return visible > 0 and (ascii_letters >= need or (not text.isascii() and sum(map(str.isalpha, text)) >= need))


def length_filter(records: Iterable[SpeechRecord], min_chars: int, max_chars: int, tally: Tally,
                  min_letter_fraction: float = 0.0) -> list[SpeechRecord]:
    """Normalise, then keep min_chars <= len(text) <= max_chars (bounds inclusive, as in the paper) and
    enough_letters(text, min_letter_fraction)."""
    kept = []
    for rec in records:
        text = normalize_text(rec.text)
        n = len(text)
        if n == 0:
            tally.add("empty", rec.source)
        elif n < min_chars:
            tally.add("too_short", rec.source)
        elif n > max_chars:
            tally.add("too_long", rec.source)
        elif min_letter_fraction and not enough_letters(text, min_letter_fraction):
            tally.add("too_few_letters", rec.source)
        else:
            kept.append(rec._replace(text=text) if text != rec.text else rec)
    return kept


def exact_dedup(records: Iterable[SpeechRecord], tally: Tally) -> list[SpeechRecord]:
    """Keep the first speech of every `dedup_key`."""
    seen: set[str] = set()
    kept = []
    for rec in records:
        key = dedup_key(rec.text)
        if key in seen:
            tally.add("exact_dup", rec.source)
        else:
            seen.add(key)
            kept.append(rec)
    return kept


class _Vocab(dict):
    """word -> stable 32-bit hash (CRC-32, deterministic across runs unlike hash()), memoised."""

    def __missing__(self, word: str) -> int:
        value = self[word] = zlib.crc32(word.encode("utf-8"))
        return value


_MIX = np.random.RandomState(12345).randint(0, 1 << 62, size=64, dtype=np.uint64) * np.uint64(2) + np.uint64(1)


def shingle_hashes(texts: list[str], shingle_size: int, vocab: _Vocab | None = None) -> tuple[np.ndarray, np.ndarray]:
    """32-bit hashes of all word `shingle_size`-grams of every text, and the text index of each.

    A text with fewer words than `shingle_size` gets one shingle of all its words; a text with no
    words (punctuation only) gets none. Hash of a shingle = sum_j word_hash[j] * odd_constant[j] (mod 2^64)
    folded to 32 bits: order-sensitive, computed for all texts at once.
    """
    if shingle_size > len(_MIX):
        raise ValueError(f"shingle_size must be <= {len(_MIX)}, got {shingle_size}")
    vocab = _Vocab() if vocab is None else vocab
    words = [list(map(vocab.__getitem__, t.casefold().translate(_PUNCT).split())) for t in texts]
    lengths = np.fromiter((len(w) for w in words), dtype=np.int64, count=len(words))
    total = int(lengths.sum())
    flat = np.fromiter(itertools.chain.from_iterable(words), dtype=np.uint64, count=total)
    doc = np.repeat(np.arange(len(texts)), lengths)
    pos = np.arange(total) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    remaining = lengths[doc] - pos  # words left in the text from this position on
    acc = np.zeros(total, dtype=np.uint64)
    for j in range(shingle_size):
        shifted = np.zeros(total, dtype=np.uint64)
        shifted[: max(total - j, 0)] = flat[j:]  # all texts together may hold fewer words than j
        acc += np.where(remaining > j, shifted, np.uint64(0)) * _MIX[j]
    start = (pos == 0) | (remaining >= shingle_size)  # every full shingle, or the whole short text
    acc = acc[start]
    folded = ((acc >> np.uint64(32)) ^ acc).astype(np.uint32)  # astype keeps the low 32 bits
    return folded, doc[start]


def _fmix32(h: np.ndarray) -> np.ndarray:
    """MurmurHash3 finalizer: the pre-mix datasketch applies before its affine32 permutations."""
    h = h ^ (h >> np.uint32(16))
    h = h * np.uint32(0x85EBCA6B)
    h = h ^ (h >> np.uint32(13))
    h = h * np.uint32(0xC2B2AE35)
    return h ^ (h >> np.uint32(16))


def minhash_signatures(texts: list[str], num_perm: int = 128, shingle_size: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """MinHash signatures (n_texts x num_perm, uint32) and a mask of texts that have any shingle.

    Row i equals `MinHash(num_perm, seed=MINHASH_SEED, hashfunc=int).update_batch(hashes of text i)`.
    Texts are hashed `_CHUNK` at a time (memory stays flat: ~1 GB at most, whatever the corpus), on two
    threads: numpy releases the GIL, so one chunk's arithmetic overlaps the other's word splitting.
    """
    a, b = MinHash(num_perm=num_perm, seed=MINHASH_SEED, scheme=_SCHEME).permutations
    sigs = np.full((len(texts), num_perm), np.iinfo(np.uint32).max, dtype=np.uint32)
    has = np.zeros(len(texts), dtype=bool)
    vocab = _Vocab()

    def chunk(lo: int) -> None:
        hashes, doc = shingle_hashes(texts[lo:lo + _CHUNK], shingle_size, vocab)
        if len(doc):
            _signatures_into(sigs[lo:lo + _CHUNK], has[lo:lo + _CHUNK], _fmix32(hashes), doc, a, b)

    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(chunk, range(0, len(texts), _CHUNK)))
    return sigs, has


def _signatures_into(sigs: np.ndarray, has: np.ndarray, mixed: np.ndarray, doc: np.ndarray, a: np.ndarray,
                     b: np.ndarray) -> None:
    """Fill the rows of `sigs` (and `has`) of the texts holding the (pre-mixed) shingle hashes `mixed`."""
    bounds = np.flatnonzero(np.r_[True, doc[1:] != doc[:-1]])  # first shingle of each text (doc is sorted)
    has[doc[bounds]] = True
    for lo in range(0, len(bounds), _BLOCK):
        hi = lo + _BLOCK
        first, last = bounds[lo], (bounds[hi] if hi < len(bounds) else len(doc))
        block = a[:, None] * mixed[None, first:last] + b[:, None]  # (perm, shingle); uint32 wraps mod 2^32
        sigs[doc[bounds[lo:hi]]] = np.minimum.reduceat(block, bounds[lo:hi] - first, axis=1).T


def remove_near_duplicates(records: list[SpeechRecord], threshold: float, num_perm: int, shingle_size: int,
               tally: Tally) -> list[SpeechRecord]:
    """Drop a speech whose estimated Jaccard with an earlier kept speech is >= threshold (banded LSH over
    the signature matrix, `lsh.near_duplicates`: the decisions of datasketch's `MinHashLSH`)."""
    sigs, has = minhash_signatures([r.text for r in records], num_perm, shingle_size)
    dropped = near_duplicates(sigs, has, threshold)
    for i in np.flatnonzero(dropped):
        tally.add("near_dup", records[i].source)
    return [rec for rec, drop in zip(records, dropped.tolist()) if not drop]


def clean_speeches(records: Iterable[SpeechRecord], *, min_chars: int = 100, max_chars: int = 1000,
                   min_letter_fraction: float = 0.5, near_dedup: bool = True, near_dup_threshold: float = 0.8,
                   num_perm: int = 128, shingle_size: int = 5) -> tuple[list[SpeechRecord], dict]:
    """Run every step; return the kept records and a report of removals per step and per source.

    Defaults are the paper's (100..1000 chars) and `SpeechesConfig`'s (half the visible characters
    letters, MinHash 128 perms, 5-word shingles, Jaccard 0.8).
    """
    records = list(records)
    tally = Tally()
    kept = drop_rejected(records, tally)
    kept = length_filter(kept, min_chars, max_chars, tally, min_letter_fraction)
    kept = exact_dedup(kept, tally)
    if near_dedup:
        kept = remove_near_duplicates(kept, near_dup_threshold, num_perm, shingle_size, tally)
    return kept, make_report(records, kept, tally)


def make_report(records: list[SpeechRecord], kept: list[SpeechRecord], tally: Tally) -> dict:
    """{'input', <step>..., 'kept', 'per_source': {source: {same keys}}} with every step present."""
    inputs = Counter(r.source for r in records)
    outputs = Counter(r.source for r in kept)
    per_source = {
        src: {"input": inputs[src], **{s: tally.by_source[src][s] for s in STEPS}, "kept": outputs[src]}
        for src in inputs
    }
    return {"input": len(records), **{s: tally.by_step[s] for s in STEPS}, "kept": len(kept), "per_source": per_source}
