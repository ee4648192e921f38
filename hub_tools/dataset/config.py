"""The dataset stage's recipe section: the repository folder that gets pushed, byte for byte."""

from __future__ import annotations

from pydantic import Field

from ..config import Strict
from ..kinds import DATASET_ID


class DatasetConfig(Strict):
    """Stage 5: the dataset repository folder and its card."""

    repo_id: str = Field(DATASET_ID, description="Hub repo id the card and load snippets name.")
    pretty_name: str = Field("PsyCoPref", description="Title of the dataset card.")
    license: str | None = Field(None, pattern=r"^[a-z0-9][a-z0-9.\-]*$", description="Hub licence id of the built dataset (e.g. cc-by-nc-4.0). Unset: the most restrictive licence among the sources its speeches come from (ordering in hub_tools/speeches/licenses.py), or `unknown` with a warning when a source's licence is unknown.")
