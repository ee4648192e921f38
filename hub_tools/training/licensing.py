"""A model's licence and data statement, derived from what it was trained on, never a constant: the licence of
the dataset it was trained on (its card's `license`) and the base model's terms (its card's `license`, or
`card.base_license` where the base folder has no card). Read once at training time into train_results.json
(`licenses`), so the card, rebuilt from the folder's files on any machine (a release), says the same.

The model's Hub licence is the base's own when the base has custom terms (e.g. `llama3.1`: they bind every
derivative), else the more restrictive of the two (ordering of `speeches.licenses.RESTRICTIVENESS`); the card's
statement names both, so a user sees the data's terms next to the base's.
"""

from __future__ import annotations

import logging
from pathlib import Path

import yaml

from ..speeches.licenses import RESTRICTIVENESS, UNKNOWN, most_restrictive
from .sections import DataSection, ModelSection

log = logging.getLogger("psycopref")


def card_license(path: Path) -> str | None:
    """The `license` of the card (README.md front matter) of a local repo folder, or None."""
    readme = Path(path) / "README.md"
    try:
        text = readme.read_text(encoding="utf-8")
        meta = yaml.safe_load(text.split("---", 2)[1]) if text.startswith("---") else None
    except (OSError, IndexError, yaml.YAMLError):
        return None
    value = (meta or {}).get("license") if isinstance(meta, dict) else None
    return str(value) if value else None


def dataset_license(data: DataSection) -> str:
    """The licence of the dataset `data` reads: its folder's card, else its Hub card; `unknown` if neither says."""
    if Path(data.path).is_dir():
        return card_license(Path(data.path)) or UNKNOWN
    repo_id = data.hub_dataset_id
    if repo_id:
        try:
            from huggingface_hub import hf_hub_download

            # the card of the commit the pairs are read at (data.revision), not of today's main
            readme = hf_hub_download(repo_id, "README.md", repo_type="dataset", revision=data.revision if repo_id == data.path else None)
            return card_license(Path(readme).parent) or UNKNOWN
        except Exception as err:  # offline, no card, a private repo: say unknown rather than guess
            log.warning("data.path %s: its card's licence could not be read (%s); the model card says unknown",
                        data.path, type(err).__name__)
    return UNKNOWN


def base_license(model: ModelSection, declared: str | None, resolved: str | None = None) -> str:
    """The base model's licence: its folder's card (`resolved`: the folder it was loaded from), else `declared`
    (the recipe's `card.base_license`), else unknown."""
    found = card_license(Path(resolved)) if resolved and Path(resolved).is_dir() else None
    return found or declared or UNKNOWN


def read_licenses(recipe, resolved_base: str | None = None) -> dict[str, str]:
    """What train_results.json records: {"dataset": ..., "base_model": ...}."""
    return {"dataset": dataset_license(recipe.data),
            "base_model": base_license(recipe.model, recipe.card.base_license, resolved_base)}


def model_license(licenses: dict[str, str] | None, declared_base: str | None = None) -> str:
    """The model's Hub licence id from the recorded licences (older folders without them: the declared base's)."""
    licenses = licenses or {"dataset": UNKNOWN, "base_model": declared_base or UNKNOWN}
    base, data = licenses["base_model"], licenses["dataset"]
    if base not in RESTRICTIVENESS and base != UNKNOWN:
        return base  # custom terms (llama3.1, gemma, ...) bind the derivative whatever the data's licence
    return most_restrictive([base, data])


def license_statement(licenses: dict[str, str] | None, dataset_id: str | None) -> str:
    """The card's sentence on where the licence comes from."""
    if not licenses:
        return "The licences of the training data and of the base model were not recorded with this model."
    data = f"`{dataset_id}`" if dataset_id else "the preference pairs it was trained on"
    return (f"The training data, {data}, is licensed `{licenses['dataset']}`; the base model's licence is "
            f"`{licenses['base_model']}`, and its terms apply to this model too.")
