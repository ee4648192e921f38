"""The win-rate evaluation's recipe (paper §4.2, Table 2): which policies answer which test speeches, the
reference model they are compared with, the pairwise judge, the two settings and the bootstrap.

Recipes live in `recipes/<model>/eval/config_<variant>.yaml` and are read with `psycopref policy eval`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from ...config import Endpoint, Responder, ServerConfig, Strict
from ...judge.config import Prices
from ...kinds import DATASET_MIRROR

SETTINGS = ("free", "length_matched")  # paper: w/o and w/ Length Constraint
Setting = Literal[SETTINGS]
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")  # a policy's name is also its work sub-folder


class EvalSpeeches(Strict):
    """Where the test speeches come from."""

    path: str = Field(DATASET_MIRROR, description="A dataset repo folder (the local Hub mirror), a `save_to_disk` folder (a Dataset, or a DatasetDict such as a work dir's speeches_split/), or a Hub id; read with datasets.load_dataset(path, config).")
    config: str = Field("speeches", description="Dataset config to read: 'speeches' (columns id, text, topic_coarse), or 'pairs' / the public release's 'default' (ID, question, topic_coarse where present: one speech per ID).")
    split: str = Field("test", description="Split holding the test speeches (paper: the 3,291 held-out speeches).")
    limit: int | None = Field(None, ge=1, description="Seeded subset of the speeches, for quick runs; null evaluates all.")


class PairwiseJudgeConfig(Strict):
    """The judge comparing a policy's answer with the reference's under the seven principles, in both orders."""

    endpoint: Endpoint = Field(..., description="The judge model (paper: GPT-4o).")
    constrained: bool = Field(True, description="Ask the backend for JSON-schema constrained output where it supports it.")
    reason_max_chars: int | None = Field(None, ge=10, description="Ask for a short reason (at most this many characters) before the verdict; null asks for the verdict alone, the fewest output tokens.")
    max_attempts: int = Field(3, ge=1, description="Calls per prompt (each retry with the next seed) before an invalid answer counts as missing: reported, never guessed.")
    concurrency: int = Field(2, ge=1, description="Judge requests in flight at once.")
    prices: Prices = Field(default_factory=Prices, description="Price table for the judge's cost estimate in winrate.json.")


class BootstrapConfig(Strict):
    """Percentile bootstrap over speeches for the confidence intervals."""

    samples: int = Field(1000, ge=0, description="Bootstrap resamples of the speeches; 0 reports no intervals.")
    confidence: float = Field(0.95, gt=0, lt=1, description="Confidence level of the intervals.")
    length_controlled: bool = Field(True, description="Also bootstrap the length-controlled win rate (one logistic fit per resample).")


class EvalRecipe(Strict):
    """Win rates of policies against a reference model on the test speeches (paper Table 2)."""

    work_dir: str = Field("runs/eval", description="Where answers, verdicts, caches, logs and the results are written.")
    seed: int = Field(42, ge=0, lt=2**32, description="Seed for the speech subset, judge retries and the bootstrap.")
    server: ServerConfig | None = Field(None, description="Managed llama.cpp server for endpoints with base_url 'managed'.")
    speeches: EvalSpeeches = Field(default_factory=EvalSpeeches, description="The test speeches.")
    policies: list[Responder] = Field(..., min_length=1, description="The models evaluated, each a served model or `backend: transformers` with `model:` a local folder (a trained policy).")
    reference: Responder = Field(..., description="The model every policy is compared with (paper: GPT-4o); it answers each speech once.")
    concurrency: int = Field(2, ge=1, description="Answer requests (policies and reference) in flight at once.")
    judge: PairwiseJudgeConfig = Field(..., description="The pairwise judge.")
    settings: list[Setting] = Field(default_factory=lambda: list(SETTINGS), min_length=1, description="free = the policy answers the Responding Prompt as is (paper: w/o Length Constraint); length_matched = it is asked to answer in about as many words as the reference's answer (w/ Length Constraint).")
    bootstrap: BootstrapConfig = Field(default_factory=BootstrapConfig, description="Confidence intervals.")

    @field_validator("settings")
    @classmethod
    def _unique_settings(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError(f"settings must not repeat, got {value}")
        return value

    @model_validator(mode="after")
    def _policy_names(self):
        names = [p.name for p in self.policies]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"policies: names must be unique, repeated: {', '.join(dupes)}")
        bad = [n for n in names if not _SAFE_NAME.match(n)]
        if bad:
            raise ValueError(f"policies: a name is also a folder name: letters, digits, '.', '_' and '-' only, got {bad}")
        return self

    @property
    def work_path(self) -> Path:
        return Path(self.work_dir)

    def endpoints(self) -> list[Endpoint]:
        """Every endpoint the evaluation calls: one Runtime serves them all."""
        return [*self.policies, self.reference, self.judge.endpoint]
