"""The judge stage's recipe section: who rates, in which protocol, and at what price."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ..config import Endpoint, Strict


class Prices(Strict):
    """A model's price table, for the token ledger's cost estimate."""

    prompt_per_1m: float = Field(0.0, ge=0, description="USD per million prompt tokens.")
    completion_per_1m: float = Field(0.0, ge=0, description="USD per million completion tokens.")

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        """Estimated USD for one call's tokens."""
        return (prompt_tokens * self.prompt_per_1m + completion_tokens * self.completion_per_1m) / 1e6


class JudgeConfig(Strict):
    """Stage 3: the LLM judge rating each speech's 4 responses on the 7 principles."""

    endpoint: Endpoint = Field(..., description="The judge model (paper: GPT-4o).")
    mode: Literal["per_principle", "all_principles"] = Field("per_principle", description="per_principle = the paper's protocol, one call per principle; all_principles = one call rates all seven.")
    constrained: bool = Field(True, description="Ask the backend for JSON-schema constrained output where it supports it.")
    rationale_max_chars: int | None = Field(None, ge=10, description="Cap rationales in the constrained schema (keeps tiny local judges fast); None = the paper's free text.")
    max_attempts: int = Field(3, ge=1, description="Calls per prompt before an invalid answer goes to quarantine.")
    concurrency: int = Field(2, ge=1, description="Judge requests in flight at once.")
    prices: Prices = Field(default_factory=Prices, description="Price table for the token ledger's cost estimate.")
    budget_usd: float | None = Field(None, ge=0, description="Stop cleanly (resumable) once the estimated cost of the judge calls cached in this work dir reaches this; None = no cap.")
