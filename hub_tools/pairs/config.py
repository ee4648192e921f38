"""The pairs stage's recipe section: the scrub, the held-out test speeches and the pairing rule."""

from __future__ import annotations

from pydantic import Field

from ..config import Strict


class PairsConfig(Strict):
    """Stage 4: the privacy scrub, which speeches are held out, and how pairs are built."""

    test_fraction: float = Field(3291 / 26483, ge=0, lt=1, description="Share of speeches held out for test (paper: 3,291 of 26,483). Ignored when test_size is set.")
    test_size: int | None = Field(None, ge=0, description="Absolute number of test speeches; wins over test_fraction when set.")
    min_gap: float = Field(1.0, gt=0, description="Minimum overall-score gap (inclusive) for a pair (paper: 1).")
    drop_safety_veto: bool = Field(False, description="Drop pairs whose rejected response has the higher safety rating (the release keeps them: 662 train pairs).")
    seed: int | None = Field(None, ge=0, lt=2**32, description="Seed of the train/test split; None uses the recipe's seed.")
    scrub: bool = Field(True, description="Mask e-mails, phones, URLs, addresses and ID numbers in speeches, responses and rationales before anything is written.")
    keep_toll_free: bool = Field(True, description="Leave toll-free numbers (crisis lines) unmasked by the scrub.")
