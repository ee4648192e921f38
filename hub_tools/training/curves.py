"""The training curves a practitioner looks at first, drawn for every model card from the folder's own
log history (log_history.json) and round table (rounds.json): same files, same bytes.

  reward model   loss; train and dev preference accuracy
  DPO            loss (train, dev); chosen / rejected implicit rewards and their margin; dev reward accuracy
  DPO-Iter       per round: mean dev reward and the dev judge's win rate (plus each round's DPO curves)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..hub.figures import curves_figure
from ..io import read_json
from .history import LOG_HISTORY, series

REWARD_FIGURE, DPO_FIGURE, ROUNDS_FIGURE = "training_curves.png", "training_curves.png", "rounds.png"


def _history(folder: Path) -> list[dict[str, Any]] | None:
    data = read_json(Path(folder) / LOG_HISTORY)
    return data["log_history"] if data else None


def reward_curves(folder: Path) -> str | None:
    """Loss and preference accuracy (train, dev) of a reward model's run; None without a log history."""
    h = _history(folder)
    if not h:
        return None
    return curves_figure(folder, REWARD_FIGURE, [
        ("Loss", {"train": series(h, "loss"), "dev": series(h, "eval_loss")}),
        ("Preference accuracy", {"train": series(h, "accuracy"), "dev": series(h, "eval_accuracy")}),
    ])


def dpo_curves(folder: Path) -> str | None:
    """Loss, implicit rewards and margin, and reward accuracy of a DPO run (train and, at each
    evaluation, dev); None without a log history."""
    h = _history(folder)
    if not h:
        return None
    return curves_figure(folder, DPO_FIGURE, [
        ("DPO loss", {"train": series(h, "loss"), "dev": series(h, "eval_loss")}),
        ("Implicit rewards (train)", {"chosen": series(h, "rewards/chosen"), "rejected": series(h, "rewards/rejected"),
                                      "margin": series(h, "rewards/margins")}),
        ("Dev metrics at each evaluation", {"reward accuracy": series(h, "eval_rewards/accuracies"),
                                            "reward margin": series(h, "eval_rewards/margins"),
                                            "win rate (judge)": series(h, "eval_dev_winrate")}),
    ])


def rounds_curves(folder: Path, rounds: list[dict[str, Any]]) -> str | None:
    """DPO-Iter per round (0 = the starting policy): mean dev reward, and the judge's dev win rate."""
    if not rounds:
        return None
    points = lambda key: [(r["round"], r[key]) for r in rounds if r.get(key) is not None]  # noqa: E731
    return curves_figure(folder, ROUNDS_FIGURE, [
        ("Mean dev reward", {"Mean dev reward": points("dev_reward")}),
        ("Dev win rate (judge)", {"Dev win rate (judge)": points("dev_winrate")}, (0, 1)),
    ], xlabel="Round", xticks=[r["round"] for r in rounds])
