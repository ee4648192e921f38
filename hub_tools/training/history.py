"""What a trained model's folder keeps of its training run, for its card's curves and the Hub's
Training metrics tab: the trainer's log history (log_history.json, without wall times, so identical
runs give identical folders) and, when the recipe logs to TensorBoard (`report_to: tensorboard`), the
event files under runs/ (the Hub finds `tfevents` files in a repo and hosts TensorBoard for them).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from ..io import write_json

LOG_HISTORY = "log_history.json"  # the trainer's logged metrics, one entry per logging / eval step
TENSORBOARD_DIR = "runs"  # inside the model folder: TensorBoard event files (transformers' default name)
_WALL_TIME = ("_runtime", "_per_second")  # keys that differ between identical runs


def clean_history(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The log history without wall-time entries, floats rounded to 6 decimals."""
    def value(v: Any) -> Any:
        return round(v, 6) if isinstance(v, float) else v

    return [{k: value(v) for k, v in entry.items() if not k.endswith(_WALL_TIME)} for entry in history]


def save_history(folder: Path, history: list[dict[str, Any]]) -> Path:
    """Write the cleaned log history into a model folder."""
    return write_json(Path(folder) / LOG_HISTORY, {"log_history": clean_history(history)})


def copy_tensorboard(trainer_dir: str | Path, folder: Path, sub: str | None = None) -> int:
    """Copy the trainer's TensorBoard event files (<output_dir>/runs/...) into <folder>/runs[/sub]; returns
    how many were copied (none when the run did not log to TensorBoard)."""
    source = Path(trainer_dir) / TENSORBOARD_DIR
    files = sorted(source.rglob("events.out.tfevents.*")) if source.is_dir() else []
    for f in files:
        dest = Path(folder) / TENSORBOARD_DIR / (sub or "") / f.relative_to(source)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(f, dest)
    return len(files)


def series(history: list[dict[str, Any]], key: str) -> list[tuple[float, float]]:
    """(step, value) of every history entry holding `key`."""
    return [(e.get("step", i), e[key]) for i, e in enumerate(history) if isinstance(e.get(key), int | float)]
