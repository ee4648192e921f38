"""Card figures: one small, deterministic PNG per function, path returned relative to the repo root.

Figures are drawn on a bare `Figure` with the Agg canvas (no pyplot global state, no display needed) and
saved without the "Software" PNG text chunk, so the same data always gives the same bytes and re-pushing
an unchanged build makes no Hub commit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless backend: cards are built on servers and in CI

from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

FIGURE_DIR = "figures"  # folder of a repo holding its card's images
DPI = 100  # ~100 dpi keeps files small and text readable on the Hub page
_BAR_COLOR = "#4C72B0"  # one muted colour for every bar chart
_PNG_METADATA = {"Software": None}  # drop matplotlib's version stamp: identical bytes across builds


def topics_figure(root: str | Path, counts: Mapping[str, int], *, level: str) -> str:
    """Speeches per topic at `level` ("coarse" or "fine"), as horizontal bars sorted by count."""
    if level not in ("coarse", "fine"):
        raise ValueError(f"topic level must be 'coarse' or 'fine', got {level!r}")
    return _barh(
        root, f"topics_{level}.png", counts,
        title=f"Client speeches per {level} topic", xlabel="Client speeches",
    )


def models_figure(root: str | Path, counts: Mapping[str, int], *, side: str) -> str:
    """Pairs per pool member on the `side` ("chosen" or "rejected") of a pair (paper Figures 5 and 6)."""
    if side not in ("chosen", "rejected"):
        raise ValueError(f"side must be 'chosen' or 'rejected', got {side!r}")
    return _barh(
        root, f"{side}_models.png", counts,
        title=f"{side.capitalize()} model distribution", xlabel=f"Pairs where the model's response is {side}",
    )


def overall_histogram(root: str | Path, scores: Sequence[float], *, n_principles: int = 7) -> str:
    """Histogram of the overall score (mean of the principle ratings) of every fully rated response.

    The overall score can only take the values k / n_principles, so there is one bin per attainable value.
    """
    if not scores:
        raise ValueError("overall_histogram: no complete ratings to plot")
    lo, hi = n_principles * 1, n_principles * 5  # ratings are 1..5 per principle
    edges = [(k - 0.5) / n_principles for k in range(lo, hi + 2)]
    fig = new_figure((7.0, 3.6))
    ax = fig.add_subplot()
    ax.hist(list(scores), bins=edges, color=_BAR_COLOR, edgecolor="white")
    ax.set_xlim(0.9, 5.1)
    ax.set_xticks([1, 2, 3, 4, 5])
    ax.set_title(f"Overall score of rated responses (n = {len(scores)})")
    ax.set_xlabel(f"Overall score (mean of {n_principles} principle ratings)")
    ax.set_ylabel("Responses")
    ax.grid(axis="y", alpha=0.3)
    return save_figure(fig, root, "overall_scores.png")


def principle_means_figure(root: str | Path, means: Mapping[str, float]) -> str:
    """Mean 1-5 rating per principle, one bar each, in the order given (the paper's principle order)."""
    if not means:
        raise ValueError("principle_means_figure: no principle ratings to plot")
    names = list(means)
    values = [means[n] for n in names]
    fig = new_figure((7.0, 3.6))
    ax = fig.add_subplot()
    bars = ax.bar(names, values, color=_BAR_COLOR)
    ax.bar_label(bars, fmt="%.2f", fontsize=8)
    ax.set_ylim(0, 5.4)
    ax.set_title("Mean rating per principle (all rated responses)")
    ax.set_xlabel("Principle")
    ax.set_ylabel("Mean rating (1-5)")
    ax.tick_params(axis="x", labelrotation=20)
    ax.grid(axis="y", alpha=0.3)
    return save_figure(fig, root, "principle_means.png")


def curves_figure(root: str | Path, name: str, panels: Sequence[tuple], *, xlabel: str = "Optimizer step",
                  xticks: Sequence[int] | None = None) -> str:
    """Training curves: one panel per (title, {label: [(x, y), ...]}[, (ymin, ymax)]) side by side, a line
    (with markers when it has few points) per label; empty series are skipped, a panel with none says so.
    `xticks`: the x values to mark (e.g. every round), else integer ticks."""
    if not panels:
        raise ValueError(f"{name}: no panels to plot")
    fig = new_figure((3.6 * len(panels), 3.2))
    for ax, (title, lines, *ylim) in zip(fig.subplots(1, len(panels), squeeze=False)[0], panels):
        drawn = 0
        for label, points in lines.items():
            if points:
                xs, ys = zip(*points)
                ax.plot(xs, ys, label=label, marker="o" if len(points) <= 20 else None, markersize=3)
                drawn += 1
        if not drawn:
            ax.text(0.5, 0.5, "not logged", ha="center", va="center", transform=ax.transAxes, color="#888888")
        elif drawn > 1 or next(iter(lines)) != title:
            ax.legend(fontsize=7)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel(xlabel, fontsize=8)
        if ylim:
            ax.set_ylim(*ylim[0])
        if xticks is not None:
            ax.set_xticks(list(xticks))
            ax.set_xlim(min(xticks) - 0.3, max(xticks) + 0.3)
        else:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    return save_figure(fig, root, name)


def _barh(root: str | Path, name: str, counts: Mapping[str, int], *, title: str, xlabel: str) -> str:
    """Horizontal bars, largest at the top; ties broken by label so the order is deterministic."""
    if not counts:
        raise ValueError(f"{name}: nothing to plot")
    items = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    labels = [k for k, _ in items][::-1]  # barh draws bottom-up
    values = [v for _, v in items][::-1]
    fig = new_figure((7.0, 1.2 + 0.28 * len(items)))  # height grows with the number of bars
    ax = fig.add_subplot()
    bars = ax.barh(labels, values, color=_BAR_COLOR)
    ax.bar_label(bars, fontsize=7, padding=2)
    ax.set_xlim(0, max(max(values), 1) * 1.12)  # room for the count labels
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # counts: no 0.5 ticks
    ax.margins(y=0.01)  # no empty band above and below the bars
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.tick_params(axis="y", labelsize=8)
    ax.grid(axis="x", alpha=0.3)
    return save_figure(fig, root, name)


def new_figure(size: tuple[float, float]) -> Figure:
    """A bare Agg figure (no pyplot state) laid out tightly."""
    fig = Figure(figsize=size, dpi=DPI, layout="tight")
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig: Figure, root: str | Path, name: str) -> str:
    """Save under `<root>/figures/` with reproducible bytes; return the repo-relative path."""
    rel = f"{FIGURE_DIR}/{name}"
    path = Path(root) / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, format="png", metadata=_PNG_METADATA)
    return rel
