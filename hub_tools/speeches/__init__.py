"""Stage 1, client speeches: source loaders, cleaning, topic labels and the stage runner."""

from .clean import clean_speeches, dedup_key, minhash_signatures, normalize_text
from .sources import LOADERS, SourceError, SpeechRecord, load_source
from .stage import run_speeches
from .topics import classify_topics, label_topics, map_source_topic

__all__ = [
    "LOADERS", "SourceError", "SpeechRecord", "classify_topics", "clean_speeches", "dedup_key",
    "label_topics", "load_source", "map_source_topic", "minhash_signatures", "normalize_text", "run_speeches",
]
