"""A model card's licence and data statement come from the dataset it was trained on (its card) and the base
model's terms, never from a constant: two datasets of different licences give two different cards."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from huggingface_hub import ModelCard

from hub_tools.config import validate
from hub_tools.policy.config import DPORecipe
from hub_tools.reward.config import RewardRecipe
from hub_tools.training.licensing import model_license, read_licenses

TRAIN = {"method": "full", "train_pairs": 24, "helpsteer2_pairs": 0, "dev_pairs": 2, "test_pairs": 10, "processes": 1,
         "effective_batch_size": 8, "global_step": 3, "epochs": 1.0, "train_loss": 0.69, "logged_losses": [0.7, 0.69]}
POLICY = {"beta": 0.1, "loss_type": "sigmoid", "reward_margins": [0.1], "reference": "starting policy"}


def _dataset(root: Path, license: str) -> Path:
    folder = root / "datasets" / "test-org" / f"Pairs-{license}"
    folder.mkdir(parents=True)
    (folder / "README.md").write_text(f"---\nlicense: {license}\nconfigs: []\n---\n# Pairs\n", encoding="utf-8")
    return folder


def _card(tmp_path: Path, schema, dataset: Path, base: str, **card) -> tuple[dict, str, dict]:
    """Train-time licences read for a recipe on `dataset` and base `base`, then the card written from the folder."""
    recipe = validate(schema, {"work_dir": str(tmp_path / "work"), "model": {"name_or_path": base, "hub_id": "test-org/tiny"},
                               "data": {"path": str(dataset)}, "card": card})
    licenses = read_licenses(recipe, base)
    folder = tmp_path / "work" / f"{schema.__name__}-{dataset.name}"
    folder.mkdir(parents=True)
    (folder / "train_results.json").write_text(json.dumps(TRAIN | POLICY | {"licenses": licenses}))
    if schema is RewardRecipe:
        from hub_tools.reward.card import write_card
    else:
        from hub_tools.policy.card import write_card
    card = ModelCard.load(write_card(recipe, folder, recipe.repo_id))
    return card.data.to_dict(), card.text, licenses


@pytest.mark.parametrize("schema", [RewardRecipe, DPORecipe])
def test_two_datasets_of_different_licences_give_two_licences(tmp_path, schema):
    permissive, nc = _dataset(tmp_path, "mit"), _dataset(tmp_path, "cc-by-nc-4.0")
    meta, text, licenses = _card(tmp_path / "a", schema, permissive, "test-org/tiny", base_license="apache-2.0")
    assert licenses == {"dataset": "mit", "base_model": "apache-2.0"}
    assert meta["license"] == "apache-2.0"  # the more restrictive of MIT data and an Apache-2.0 base
    assert "is licensed `mit`" in text and "CC BY-NC" not in text
    meta, text, licenses = _card(tmp_path / "b", schema, nc, "test-org/tiny", base_license="apache-2.0")
    assert licenses["dataset"] == "cc-by-nc-4.0" and meta["license"] == "cc-by-nc-4.0"
    assert "is licensed `cc-by-nc-4.0`" in text and "`apache-2.0`" in text


def test_a_base_with_custom_terms_keeps_them_and_the_card_names_the_datas_licence(tmp_path):
    meta, text, _ = _card(tmp_path, RewardRecipe, _dataset(tmp_path, "cc-by-nc-4.0"), "meta-llama/Llama-3.1-8B-Instruct",
                          base_license="llama3.1")
    assert meta["license"] == "llama3.1" and "is licensed `cc-by-nc-4.0`" in text


def test_the_base_folders_own_card_beats_the_recipe_and_unknown_stays_unknown(tmp_path):
    base = tmp_path / "base"
    base.mkdir()
    (base / "README.md").write_text("---\nlicense: gemma\n---\n# Base\n", encoding="utf-8")
    dataset = _dataset(tmp_path, "apache-2.0")
    recipe = validate(RewardRecipe, {"model": {"name_or_path": str(base), "hub_id": "test-org/tiny"},
                                     "data": {"path": str(dataset)}, "card": {"base_license": "mit"}})
    assert read_licenses(recipe, str(base)) == {"dataset": "apache-2.0", "base_model": "gemma"}
    assert model_license({"dataset": "apache-2.0", "base_model": "gemma"}) == "gemma"
    assert model_license({"dataset": "unknown", "base_model": "apache-2.0"}) == "unknown"
    assert model_license(None, "apache-2.0") == "unknown"  # a folder that recorded no licences: not guessed
