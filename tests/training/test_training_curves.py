"""Training curves for every model card, drawn from a log history (log_history.json, without wall times)."""

from __future__ import annotations


def test_curves_follow_the_history(tmp_path):
    from hub_tools.training.curves import dpo_curves, reward_curves, rounds_curves
    from hub_tools.training.history import save_history

    assert reward_curves(tmp_path) is None and dpo_curves(tmp_path) is None and rounds_curves(tmp_path, []) is None
    save_history(tmp_path, [{"loss": 0.7, "rewards/margins": 0.0, "step": 1, "train_runtime": 3.2},
                            {"eval_loss": 0.6, "eval_rewards/accuracies": 0.5, "step": 1}])
    first = (tmp_path / dpo_curves(tmp_path)).read_bytes()
    save_history(tmp_path, [{"loss": 0.7, "rewards/margins": 0.0, "step": 1}, {"loss": 0.5, "rewards/margins": 0.4, "step": 2},
                            {"eval_loss": 0.6, "eval_rewards/accuracies": 0.5, "step": 2}])
    assert (tmp_path / dpo_curves(tmp_path)).read_bytes() != first  # another history, another picture
    assert "train_runtime" not in (tmp_path / "log_history.json").read_text()
    assert rounds_curves(tmp_path, [{"round": 0, "dev_reward": 0.1}, {"round": 1, "dev_reward": 0.3, "dev_winrate": 0.6}]) \
        == "figures/rounds.png"
