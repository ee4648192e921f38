"""The judge stage's recipe section: who rates, in which protocol, and at what price."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ..config import Endpoint, Strict


class Prices(Strict):
    """A model's price table, for the token ledger's cost estimate."""

    prompt_per_1m: float = Field(0.0, ge=0, description="USD per million prompt tokens.")
    completion_per_1m: float = Field(0.0, ge=0, description="USD per million completion tokens.")

    batch_discount: float = Field(0.5, gt=0, le=1, description="Batch API price as a fraction of the online price (OpenAI: 0.5).")

    def cost(self, prompt_tokens: int, completion_tokens: int, batch: bool = False) -> float:
        """Estimated USD for one call's tokens, online or through the Batch API."""
        online = (prompt_tokens * self.prompt_per_1m + completion_tokens * self.completion_per_1m) / 1e6
        return online * self.batch_discount if batch else online


class JudgeConfig(Strict):
    """Stage 3: the LLM judge rating each speech's 4 responses on the 7 principles."""

    endpoint: Endpoint = Field(..., description="The judge model (paper: GPT-4o).")
    mode: Literal["per_principle", "all_principles"] = Field("per_principle", description="per_principle = the paper's protocol, one call per principle; all_principles = one call rates all seven.")
    compact: bool = Field(True, description="all_principles only: answer as a compact [rating, rationale] list per principle (about half the output tokens of repeating the paper's keys); false = the paper's keys nested per principle.")
    constrained: bool = Field(True, description="Ask the backend for JSON-schema constrained output where it supports it.")
    rationale_max_chars: int | None = Field(None, ge=10, description="Cap rationales in the constrained schema (output tokens are the judge's main cost on small local models); None = the paper's free text.")
    max_attempts: int = Field(3, ge=1, description="Calls per prompt before an invalid answer goes to quarantine.")
    concurrency: int = Field(2, ge=1, description="Judge requests in flight at once.")
    prices: Prices = Field(default_factory=Prices, description="Price table for the token ledger's cost estimate.")
    budget_usd: float | None = Field(None, ge=0, description="Stop cleanly (resumable) once the estimated cost of the judge calls cached in this work dir reaches this; None = no cap.")
    batch: bool = Field(False, description="Send the first attempt of every uncached prompt as one Batch API job (OpenAI-compatible /files + /batches: about half price, answered within 24 h); retries of invalid answers go online. The batch id is saved in the work dir, so a rerun resumes waiting instead of submitting again.")
    batch_poll_seconds: float = Field(30.0, gt=0, description="Seconds between status checks of a submitted batch.")
    batch_max_wait_seconds: float | None = Field(None, gt=0, description="Stop waiting for a batch after this many seconds (rerun to resume waiting); None = wait until it ends.")
