"""The expert evaluation as Markdown tables (for the terminal and the policy card) and the per-principle rating
figure (paper Figure 3: mean 1-5 score per principle, here the policy's beside the reference's, per setting)."""

from __future__ import annotations

from pathlib import Path

from ..hub.figures import new_figure, save_figure
from ..paper.principles import PRINCIPLE_NAMES
from .policy_scoring import JUDGE, SETTING_NAMES

FIGURE = "expert_ratings.png"


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f}"


def _num(x: float | None, spec: str = ".2f") -> str:
    return "–" if x is None else format(x, spec)


def _pooled(agreements: list[dict]) -> tuple[int, int, float | None]:
    n, agree = sum(a["n"] for a in agreements), sum(a["agree"] for a in agreements)
    return n, agree, (agree / n if n else None)


def to_markdown(report: dict, figure: str | None = None) -> str:
    """Expert win rates, judge–expert agreement, per-principle preferences and mean ratings."""
    policy, reference = report.get("policy") or "the policy", report.get("reference") or "the reference"
    conf = int(round(100 * report["bootstrap"]["confidence"]))
    lines = [f"{len(report['experts'])} expert(s) compared `{policy}` with `{reference}` on {report['n_items']} "
             "test speeches, shown as blinded A/B answers in a balanced random order. Win rate: the experts' "
             f"overall preference for `{policy}` (a tie counts half), {conf}% bootstrap interval over speeches; "
             f"the judge (`{report.get('judge')}`) is the evaluation's, both orders. Agreement and Cohen's κ over the "
             "speeches where both preferred one answer.", "",
             f"| Setting | Speeches | Expert win rate (%) | {conf}% interval | Wins / ties / losses | Judge win rate (%) "
             "| Judge–expert agreement (%) | Cohen's κ |", "|---|---:|---:|---|---|---:|---:|---:|"]
    for setting, s in report["settings"].items():
        o, ag = s["overall"], s["judge_agreement"]
        n, agree, share = _pooled(ag)
        kappas = [a["kappa"] for a in ag if a["kappa"] is not None]
        ci = "–" if not o.get("ci") else f"{_pct(o['ci'][0])}–{_pct(o['ci'][1])}"
        lines.append(f"| {SETTING_NAMES.get(setting, setting)} | {s['n_items']} | {_pct(o['win_rate'])} | {ci} | "
                     f"{o['wins']} / {o['ties']} / {o['losses']} | {_pct(s['judge_win_rate'])} | "
                     f"{_pct(share)} ({agree}/{n}) | {_num(sum(kappas) / len(kappas) if kappas else None)} |")
    lines += ["", f"Expert win rate of `{policy}` per principle (%):", "",
              "| Setting | " + " | ".join(PRINCIPLE_NAMES) + " |", "|---|" + "---:|" * len(PRINCIPLE_NAMES)]
    for setting, s in report["settings"].items():
        lines.append(f"| {SETTING_NAMES.get(setting, setting)} | "
                     + " | ".join(_pct(s["per_principle"][p]["win_rate"]) for p in PRINCIPLE_NAMES) + " |")
    if len(report["experts"]) > 1:
        lines += ["", f"Each expert against the {JUDGE}, overall preference:", "",
                  "| Setting | Expert | Speeches | Agree (%) | Cohen's κ | Ties excl. | Missing excl. |",
                  "|---|---|---:|---:|---:|---:|---:|"]
        lines += [f"| {SETTING_NAMES.get(k, k)} | {a['expert']} | {a['n']} | {_num(a['percent'], '.1f')} | "
                  f"{_num(a['kappa'])} | {a['ties']} | {a['missing']} |"
                  for k, s in report["settings"].items() for a in s["judge_agreement"]]
    if report.get("ratings"):
        cols = [(k, side) for k in report["ratings"] for side in ("policy", "reference") if side in report["ratings"][k]]
        names = {"policy": policy, "reference": reference}
        lines += ["", f"Absolute ratings (1–5, mean over {len(report['raters'])} expert(s); blinded single answers):", "",
                  "| Principle | " + " | ".join(f"{names[side]}, {SETTING_NAMES.get(k, k)}" for k, side in cols) + " |",
                  "|---|" + "---:|" * len(cols)]
        for p in PRINCIPLE_NAMES:
            cells = [report["ratings"][k][side].get(p) for k, side in cols]
            lines.append(f"| {p} | " + " | ".join(_num(c["mean"]) if c else "–" for c in cells) + " |")
        if figure:
            lines += ["", f"![Mean expert rating per principle]({figure})"]
    return "\n".join(lines) + "\n"


def rating_figure(report: dict, root: str | Path) -> str | None:
    """Grouped bars: mean rating per principle, the policy beside the reference, one panel per setting."""
    ratings = {k: v for k, v in (report.get("ratings") or {}).items() if k != "all" or len(report["ratings"]) == 1}
    if not ratings:
        return None
    fig = new_figure((4.2 * len(ratings), 3.6))
    axes = fig.subplots(1, len(ratings), sharey=True, squeeze=False)[0]
    width = 0.38
    for ax, (setting, sides) in zip(axes, ratings.items()):
        for offset, (side, color) in zip((-width / 2, width / 2), (("policy", "#4C72B0"), ("reference", "#DD8452"))):
            means = [sides.get(side, {}).get(p, {}).get("mean", 0.0) for p in PRINCIPLE_NAMES]
            ax.bar([i + offset for i in range(len(PRINCIPLE_NAMES))], means, width=width, color=color,
                   label=report.get(side) or side)
        ax.set_xticks(range(len(PRINCIPLE_NAMES)), PRINCIPLE_NAMES, rotation=45, ha="right", fontsize=8)
        ax.set_ylim(1, 5)
        ax.set_title(SETTING_NAMES.get(setting, setting), fontsize=9)
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylabel("Mean expert rating (1–5)")
    axes[0].legend(fontsize=7, loc="lower left")
    return save_figure(fig, root, FIGURE)


def attach_expert_eval(report: dict, recipe) -> Path:
    """Put the expert evaluation (and its figure) into the policy recipe's model folder and rewrite its card."""
    from ..io import need, write_json
    from ..policy.card import EXPERT_EVAL, write_card

    folder = need(recipe.model_dir.parent, recipe.model_dir.name, "policy dpo")
    figure = rating_figure(report, folder)
    write_json(folder / EXPERT_EVAL, {**report, "figure": figure, "markdown": to_markdown(report, figure)})
    write_card(recipe, folder, recipe.repo_id)
    return folder
