"""The win-rate results as a reader sees them: a markdown table in the paper's Table 2 layout (plus the
intervals, the LC win rate, swap consistency and the achieved length ratio) and a per-topic bar chart.

Both read the results dict `evaluate_policies` writes to winrate.json, so a card can render them again
from that file alone. The figure is deterministic bytes (hub.figures), like every card figure.
"""

from __future__ import annotations

from pathlib import Path

from ...hub.figures import new_figure, save_figure
from ...paper.taxonomy import coarse_topics

SETTING_LABELS = {"free": "w/o length constraint", "length_matched": "w/ length constraint"}  # paper Table 2
FIGURE = "winrate_topics.png"
_COLORS = {"free": "#4C72B0", "length_matched": "#DD8452"}


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}"


def _cell(value: float | None, ci: list[float] | None) -> str:
    """'61.0 [50.2, 71.3]' (percent), or the value alone without an interval."""
    if ci is None:
        return _pct(value)
    return f"{_pct(value)} [{_pct(ci[0])}, {_pct(ci[1])}]"


def topic_columns(results: dict) -> list[str]:
    """Every topic any policy was judged on: the paper's coarse-topic order, then the others."""
    seen = {t for p in results["policies"].values() for s in p["settings"].values() for t in s["topics"]}
    return [t for t in coarse_topics() if t in seen] + sorted(seen - set(coarse_topics()))


def _rows(results: dict):
    """(policy name, setting, summary) in the paper's order: settings outermost."""
    for setting in results["settings"]:
        for name, policy in results["policies"].items():
            yield name, setting, policy["settings"][setting]


def markdown_table(results: dict) -> str:
    """Summary table and per-topic table (win rates in %, 95% bootstrap intervals in brackets)."""
    conf = f"{100 * results['bootstrap']['confidence']:.0f}%"
    ref, judge = results["reference"], results["judge"]
    lines = [f"Win rates (%) against **{ref['name']}** (`{ref['model']}`), judged by `{judge['model']}` on the seven "
             f"principles in both answer orders (an order-inconsistent verdict counts as a tie); "
             f"{conf} bootstrap intervals over speeches in brackets.", "",
             f"| Policy | Setting | Win rate [{conf} CI] | LC win rate [{conf} CI] | Swap-consistent | "
             "Length ratio (words) | W / T / L | Judged |",
             "|---|---|---|---|---|---|---|---|"]
    for name, setting, s in _rows(results):
        ratio = "–" if s["length_ratio"] is None else f"{s['length_ratio']:.2f}"
        lines.append(f"| {name} | {SETTING_LABELS[setting]} | {_cell(s['win_rate'], s['ci'])} | "
                     f"{_cell(s['lc_win_rate'], s['lc_ci'])} | {_pct(s['swap_consistency'])}% | {ratio} | "
                     f"{s['wins']} / {s['ties']} / {s['losses']} | {s['n']} of {s['n_speeches']} |")
    topics = topic_columns(results)
    lines += ["", f"Per coarse topic (win rate %, {conf} CI; n = judged speeches):", "",
              "| Policy | Setting | " + " | ".join(topics) + " | Overall |",
              "|---|---|" + "---|" * (len(topics) + 1)]
    for name, setting, s in _rows(results):
        cells = [_cell(s["topics"][t]["win_rate"], s["topics"][t]["ci"]) + f" (n={s['topics'][t]['n']})"
                 if t in s["topics"] else "–" for t in topics]
        lines.append(f"| {name} | {SETTING_LABELS[setting]} | " + " | ".join(cells)
                     + f" | {_cell(s['win_rate'], s['ci'])} |")
    return "\n".join(lines) + "\n"


def topic_figure(root: str | Path, results: dict, policies: list[str] | None = None, name: str = FIGURE) -> str:
    """Per-topic and overall win rates with interval whiskers, one panel per policy, one bar per setting;
    saved as `<root>/figures/<name>`, path returned relative to root."""
    names = policies or list(results["policies"])
    topics = topic_columns(results)
    labels = [*topics, "Overall"][::-1]  # barh draws bottom-up: Overall at the bottom
    settings = results["settings"]
    height = 0.8 / len(settings)
    fig = new_figure((8.0, (1.4 + 0.42 * len(labels)) * len(names)))
    axes = fig.subplots(len(names), 1, squeeze=False)[:, 0]
    for ax, policy in zip(axes, names):
        for k, setting in enumerate(settings):
            s = results["policies"][policy]["settings"][setting]
            parts = [{"win_rate": s["win_rate"], "ci": s["ci"]} if label == "Overall"
                     else s["topics"].get(label, {"win_rate": None, "ci": None}) for label in labels]
            values = [100 * (p["win_rate"] or 0.0) for p in parts]
            errs = [[100 * (p["win_rate"] - p["ci"][0]) if p["ci"] else 0.0 for p in parts],
                    [100 * (p["ci"][1] - p["win_rate"]) if p["ci"] else 0.0 for p in parts]]
            ys = [i + (k - (len(settings) - 1) / 2) * height for i in range(len(labels))]
            ax.barh(ys, values, height=height, xerr=errs, color=_COLORS[setting], label=SETTING_LABELS[setting],
                    error_kw={"elinewidth": 0.8, "capsize": 2})
        ax.axvline(50, color="grey", linestyle="--", linewidth=0.8)
        ax.set_yticks(range(len(labels)), labels, fontsize=8)
        ax.set_xlim(0, 100)
        ax.set_xlabel(f"Win rate (%) against {results['reference']['name']}")
        ax.set_title(f"{policy}: win rate per coarse topic")
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.3), ncol=len(settings), frameon=False)
        ax.grid(axis="x", alpha=0.3)
    return save_figure(fig, root, name)
