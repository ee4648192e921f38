"""The public release's layout (`Psychotherapy-LLM/PsychoCounsel-Preference`), which our default
dataset config reproduces column for column so existing loaders keep working.

The release has one config, `default`, with train and test splits of 21 columns: the speech's `ID`,
the pair's `prefID` within its speech, the texts, the two models, and both responses' rating on each
of the seven principles.
"""

from __future__ import annotations

from datasets import Features, Value

from .principles import PRINCIPLE_NAMES

SPLITS = ("train", "test")  # split by speech before pairing (paper §3.3)
RATING_COLUMNS = [f"{side}_{p}_rating" for side in ("chosen", "rejected") for p in PRINCIPLE_NAMES]
RELEASE_COLUMNS = ["ID", "prefID", "question", "chosen", "rejected", "chosen_model", "rejected_model", *RATING_COLUMNS]
RELEASE_FEATURES = Features(
    {c: Value("int64") if c == "prefID" or c in RATING_COLUMNS else Value("string") for c in RELEASE_COLUMNS}
)
