"""Stage 2's recipe section: which models answer, how many per speech, how many requests run at once."""

from __future__ import annotations

from pydantic import Field, model_validator

from ..config import Responder, Strict


class GenerateConfig(Strict):
    """Stage 2: which models answer, how many per speech, and how many requests run at once."""

    pool: list[Responder] = Field(..., min_length=1, description="The model pool (paper: 20 LLMs, Table 5).")
    members_per_speech: int = Field(4, ge=1, description="Members sampled per speech (paper: 4; the judge needs 4 responses per speech).")
    samples_per_member: int = Field(1, ge=1, description="Answers each sampled member gives per speech, each with its own seed (1 for the dataset build; K for an iterative-DPO round's one policy).")
    max_speeches: int | None = Field(None, ge=1, description="Seeded subset of speeches to answer; None answers all.")
    concurrency: int = Field(2, ge=1, description="Requests in flight at once.")

    @model_validator(mode="after")
    def _pool(self) -> GenerateConfig:
        names = [m.name for m in self.pool]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"pool: member names must be unique, repeated: {', '.join(dupes)}")
        return self
