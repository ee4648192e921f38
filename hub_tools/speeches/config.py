"""The speeches stage's recipe section: which sources to read and how to clean them."""

from __future__ import annotations

from pydantic import Field, ValidationInfo, field_validator

from ..config import Endpoint, Strict


class SourceSpec(Strict):
    """One speech source: a loader from the registry reading a local file or a Hub dataset."""

    name: str = Field(..., description="Loader name: bundled, counsel_chat, amod, mentalchat16k, psych8k, therapistqa, mentalagora, phi2mental.")
    path: str | None = Field(None, description="Local file or folder in the source's own format.")
    hub_id: str | None = Field(None, description="Hub dataset id to load when online (used when path is unset).")
    limit: int | None = Field(None, ge=1, description="Keep at most this many speeches from this source (counted after the loader drops repeats; for quick runs).")


class SpeechesConfig(Strict):
    """Stage 1: collect client speeches, keep the paper's length range, de-duplicate, label topics."""

    sources: list[SourceSpec] = Field(default_factory=lambda: [SourceSpec(name="bundled")], description="Sources to collect, in order; earlier sources win exact/near duplicates.")
    min_chars: int = Field(100, ge=1, description="Drop speeches shorter than this (paper: 100).")
    max_chars: int = Field(1000, ge=1, description="Drop speeches longer than this (paper: 1000).")
    near_dedup: bool = Field(True, description="Remove near-duplicates with MinHash LSH after exact de-duplication.")
    near_dup_threshold: float = Field(0.8, gt=0, le=1, description="Estimated Jaccard similarity above which two speeches are near-duplicates.")
    num_perm: int = Field(128, ge=16, description="MinHash permutations (accuracy vs speed).")
    shingle_size: int = Field(5, ge=1, le=64, description="Word n-gram size of the MinHash shingles (at most 64).")
    min_letter_fraction: float = Field(0.5, ge=0, le=1, description="Drop speeches in which letters make up less than this share of the visible non-space characters (punctuation, digits or symbols only: too_few_letters); 0 keeps them.")
    classifier: Endpoint | None = Field(None, description="LLM used to label topics for sources without a usable topic; None leaves them unlabelled.")
    classifier_concurrency: int = Field(2, ge=1, description="Topic classification requests in flight at once (an in-process vLLM classifier gets them all as one batch).")

    @field_validator("max_chars")
    @classmethod
    def _range(cls, value: int, info: ValidationInfo) -> int:
        low = info.data.get("min_chars")
        if low is not None and value < low:
            raise ValueError(f"must be at least min_chars ({low}): no speech could be kept")
        return value
