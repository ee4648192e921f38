"""The reward model's card draws its training curves (loss, train and dev accuracy) from the run's real log
history, and the folder keeps the TensorBoard event files when the recipe logs to TensorBoard."""

from __future__ import annotations

import json

import pytest

from hub_tools.config import validate

from reward_helpers import recipe_data

pytest.importorskip("torch")
pytest.importorskip("trl")

PNG = b"\x89PNG\r\n\x1a\n"


def test_reward_card_draws_loss_and_train_dev_accuracy_and_keeps_tensorboard_events(tiny_base, pairs_repo, tmp_path):
    pytest.importorskip("tensorboard")
    from hub_tools.reward.card import write_card
    from hub_tools.reward.config import RewardRecipe
    from hub_tools.reward.train import train_reward

    training = {"max_steps": 6, "eval_strategy": "steps", "eval_steps": 3, "report_to": "tensorboard"}
    recipe = validate(RewardRecipe, recipe_data(tiny_base, pairs_repo, tmp_path / "work", training=training))
    folder = train_reward(recipe)
    history = json.loads((folder / "log_history.json").read_text())["log_history"]
    assert [e["step"] for e in history if "eval_accuracy" in e] == [3, 6]  # dev accuracy at each evaluation
    assert sum("accuracy" in e and "loss" in e for e in history) == 6  # train loss and accuracy at every step
    assert not any(k.endswith(("_runtime", "_per_second")) for e in history for k in e)
    card = (folder / "README.md").read_text()
    assert "![Training curves: loss and preference accuracy, train and dev](figures/training_curves.png)" in card
    figure = (folder / "figures" / "training_curves.png").read_bytes()
    assert figure[:8] == PNG
    events = list((folder / "runs").rglob("events.out.tfevents.*"))
    assert events and all(e.stat().st_size > 0 for e in events)  # the Hub's Training metrics tab reads these
    write_card(recipe, folder, recipe.repo_id)  # same files, same figure bytes
    assert (folder / "figures" / "training_curves.png").read_bytes() == figure
