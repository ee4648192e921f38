"""The dataset stage's recipe section: the repository folder that gets pushed, byte for byte."""

from __future__ import annotations

from pydantic import Field

from ..config import Strict


class DatasetConfig(Strict):
    """Stage 5: the dataset repository folder and its card."""

    repo_id: str = Field("Psychotherapy-LLM/PsyCoPref", description="Hub repo id the card and load snippets name.")
    pretty_name: str = Field("PsyCoPref", description="Title of the dataset card.")
