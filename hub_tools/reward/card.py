"""The reward model's card: Hub metadata (base_model, datasets, pipeline_tag text-classification,
library_name, tags, licence, the test metrics as model-index `eval_results`) and the body from
`cards/reward_model_card.md`: usage snippet, metrics table beside the paper's Table 1, reliability
diagram, baselines, training settings, the resolved recipe, intended use and limits.

The card is rebuilt from the folder's own files (train_results.json, eval_results.json, recipe), so
training writes it without results and evaluation rewrites it with them; same files, same bytes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from huggingface_hub import EvalResult, ModelCardData

from ..hub.cards import CardError, render_card
from ..hub.figures import new_figure, save_figure
from ..io import read_json
from ..kinds import RECIPE_FILE
from ..training.card import METHODS, training_rows
from ..training.curves import reward_curves
from ..training.licensing import license_statement, model_license
from .config import RewardRecipe

TEMPLATE = "reward_model_card.md"  # inside package hub_tools.cards (the repo's cards/ folder)
TRAIN_RESULTS = "train_results.json"
EVAL_RESULTS = "eval_results.json"
TAGS = ["psycopref", "reward-model", "trl", "bradley-terry", "psychotherapy", "counseling", "mental-health"]
# Paper Table 1, "Our Reward Models" (test set of PsychoCounsel-Preference): accuracy %, AUC, ECE, Brier.
PAPER_TABLE1 = (("PsychoCounsel-Llama3-3B-Reward (paper)", 98.1, 0.997, 0.050, 0.014),
                ("PsychoCounsel-Llama3-8B-Reward (paper)", 97.8, 0.998, 0.045, 0.016))
METRICS = (("accuracy", "accuracy", "Accuracy"), ("roc_auc", "roc_auc", "ROC AUC"), ("ece", "ece", "Expected calibration error"),
           ("brier", "brier_score", "Brier score"))  # (our key, model-index metric type, name)
DEMO_PAIRS = 1000  # fewer train pairs than this: the card calls the model a demo


def write_card(recipe: RewardRecipe, folder: Path, repo_id: str) -> Path:
    """(Re)write folder/README.md (and its figure, when evaluated) from the folder's result files."""
    train = read_json(Path(folder) / TRAIN_RESULTS)
    if train is None:
        raise CardError(f"{folder}: no {TRAIN_RESULTS}; the folder was not made by psycopref reward train")
    evals = read_json(Path(folder) / EVAL_RESULTS)
    figure = reliability_figure(folder, evals["reliability"], evals["ece_bins"]) if evals else None
    card_data, context = card_context(recipe, train, evals, repo_id, figure)
    context["curves"] = reward_curves(folder)
    path = Path(folder) / "README.md"
    render_card("model", card_data, TEMPLATE, context).save(path)
    return path


def _num(x: float | None, digits: int, scale: float = 1.0) -> str:
    return "-" if x is None else f"{x * scale:.{digits}f}"


def _shown(name: str) -> str:
    """A model or data name as the card shows it: a Hub id as is, a local path by its last part only."""
    return Path(name).name if name.startswith(("/", "~", ".")) else name


def _metric_row(name: str, m: dict) -> dict[str, str]:
    return {"name": name, "accuracy": _num(m.get("accuracy"), 1, 100), "roc_auc": _num(m.get("roc_auc"), 3),
            "ece": _num(m.get("ece"), 3), "brier": _num(m.get("brier"), 3)}


def launch_command(recipe: RewardRecipe, recipe_path: str = RECIPE_FILE) -> str:
    """How to train and evaluate the recipe on the hardware it states."""
    hw = recipe.hardware
    train = f"psycopref reward train {recipe_path}"
    if hw.accelerate_config:
        train = (f"accelerate launch --config_file {hw.accelerate_config} --num_processes {hw.gpus} "
                 f"-m hub_tools.cli reward train {recipe_path}")
    return f"{train}\npsycopref reward eval {recipe_path}"


def _hyperparameters(recipe: RewardRecipe, train: dict[str, Any]) -> list[dict[str, str]]:
    head = [("Head and loss", "linear head, one output (`score`); −log σ(r_chosen − r_rejected)")]
    t = recipe.training
    dropped = train.get("dropped_long_pairs")
    skipped = (f"longer pairs are dropped: {dropped['train']:,} train, {dropped['dev']:,} dev" if dropped
               else "longer pairs are dropped")
    tail = [("Max sequence length", f"{t.max_length} tokens ({skipped})" if t.max_length else "none"),
            ("Train pairs", f"{train['train_pairs']:,}" + (f" (of which {train['helpsteer2_pairs']:,} from HelpSteer2)"
                                                           if train["helpsteer2_pairs"] else "")),
            ("Dev pairs", f"{train['dev_pairs']:,} (held out of train by speech, for calibration)")]
    return training_rows(recipe.model, recipe.training, recipe.hardware, train, recipe.seed, head, tail)


def card_context(recipe: RewardRecipe, train: dict[str, Any], evals: dict[str, Any] | None, repo_id: str,
                 figure: str | None) -> tuple[ModelCardData, dict[str, Any]]:
    """Card metadata and the template's variables; nothing is left as None or a placeholder."""
    base, dataset = recipe.model.base_hub_id, recipe.data.hub_dataset_id
    license = recipe.card.license or model_license(train.get("licenses"), recipe.card.base_license)
    if base is None:
        raise CardError(f"model.hub_id: the card needs the Hub id of {recipe.model.name_or_path!r}")
    if dataset is None:
        raise CardError(f"data.dataset_id: the card needs the Hub id of the dataset at {recipe.data.path!r}")
    results = []
    if evals:
        test = evals["test"]
        results = [EvalResult(task_type="text-classification", task_name="Preference ranking (Bradley-Terry)",
                              dataset_type=dataset, dataset_name=f"{dataset.split('/')[-1]} test pairs",
                              dataset_config=recipe.data.config, dataset_split=recipe.data.test_split,
                              metric_type=kind, metric_name=name, metric_value=round(test[key], 4),
                              metric_args={"n_bins": evals["ece_bins"]} if key == "ece" else None)
                   for key, kind, name in METRICS if test.get(key) is not None]
    card_data = ModelCardData(
        model_name=repo_id.split("/")[-1], base_model=base, datasets=[dataset], library_name="transformers",
        pipeline_tag="text-classification", tags=TAGS, license=license, language=["en"],
        eval_results=results or None)
    context: dict[str, Any] = {
        "title": recipe.card.pretty_name or repo_id.split("/")[-1], "repo_id": repo_id, "base_model": base,
        "dataset_id": dataset, "dataset_config": recipe.data.config, "test_split": recipe.data.test_split,
        "method_text": METHODS[recipe.model.method], "license": license,
        "license_statement": license_statement(train.get("licenses"), dataset), "train": train,
        "demo_scale": train["train_pairs"] < DEMO_PAIRS, "hyper": _hyperparameters(recipe, train),
        "logging_steps": f"{recipe.training.logging_steps:g}",
        "losses": ", ".join(f"{x:.3f}" for x in train["logged_losses"][:40]),
        "launch": launch_command(recipe),
        "recipe_yaml": yaml.safe_dump(recipe.public(), sort_keys=False, allow_unicode=True),
        "evaluated": evals is not None,
    }
    if evals:
        cal = evals.get("calibrated")
        rows = [_metric_row("This model", evals["test"])]
        if cal:
            rows.append(_metric_row(f"This model, temperature-scaled (T = {cal['temperature']:.3g})",
                                    {**evals["test"], "ece": cal["ece"], "brier": cal["brier"]}))
        baselines = evals.get("baselines") or []
        rows += [_metric_row(f"`{_shown(b['model'])}` (baseline)", b["test"]) for b in baselines]
        rows += [_metric_row(name, {"accuracy": a / 100, "roc_auc": auc, "ece": ece, "brier": brier})
                 for name, a, auc, ece, brier in PAPER_TABLE1]
        length = evals["length_baseline"]
        ranker = evals.get("ranker")
        context.update({
            "n_test": f"{evals['test']['n_pairs']:,}", "ece_bins": evals["ece_bins"], "metric_rows": rows,
            "temperature": f"{cal['temperature']:.3g}" if cal else None, "dev_pairs": cal["dev_pairs"] if cal else 0,
            "temperature_at_bound": bool(cal and cal["at_bound"]),
            "figure": figure,
            "length": {"accuracy": _num(length["accuracy"], 1, 100), "roc_auc": _num(length["roc_auc"], 3),
                       "n_chosen_shorter": length["n_chosen_shorter"],
                       "rm_accuracy_chosen_shorter": _num(length["rm_accuracy_chosen_shorter"], 1, 100)},
            "topics": [{"topic": k, "n": v["n"], "accuracy": _num(v["accuracy"], 1, 100),
                        "baselines": [_num(b["per_topic"].get(k, {}).get("accuracy"), 1, 100) for b in baselines]}
                       for k, v in evals["per_topic"].items()],
            "baseline_names": [_shown(b["model"]) for b in baselines],
            "rewardbench": rewardbench_context(evals.get("rewardbench")),
            "ranker": None if not ranker else {
                **ranker, "accuracy": _num(ranker["accuracy"], 1, 100), "consistent": _num(ranker["consistent"], 1, 100)},
        })
    return card_data, context


def rewardbench_context(bench: dict[str, Any] | None) -> dict[str, Any] | None:
    """The RewardBench table: per model its score and sections (%), and its accuracy per subset."""
    if not bench:
        return None
    from .rewardbench import SUBSET_MAPPING

    names = [s for s in (*SUBSET_MAPPING, "Prior Sets") if any(s in m["sections"] for m in bench["models"])]
    subsets = sorted({s for m in bench["models"] for s in m["subsets"]})
    return {"path": _shown(bench["path"]), "split": bench["split"], "n_pairs": bench["n_pairs"], "sections": names,
            "subsets": subsets,
            "rows": [{"model": _shown(m["model"]), "score": _num(m["score"], 1),
                      "sections": [_num(m["sections"].get(s), 1) for s in names],
                      "subsets": [_num(m["subsets"].get(s, {}).get("accuracy"), 1, 100) for s in subsets]}
                     for m in bench["models"]],
            "counts": [next(m["subsets"][s]["n"] for m in bench["models"] if s in m["subsets"]) for s in subsets],
            "unmapped": sorted({s for m in bench["models"] for s in m["unmapped_subsets"]})}


def reliability_figure(root: str | Path, bins: dict[str, list[dict]], n_bins: int) -> str:
    """Reliability diagram: observed share of preferred-first pairs per probability bin against the
    diagonal, raw and (when fitted) temperature-scaled, with the number of predictions per bin below."""
    fig = new_figure((6.4, 5.6))
    top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    width = 1.0 / n_bins
    top.plot([0, 1], [0, 1], linestyle="--", color="#888888", linewidth=1, label="perfect calibration")
    styles = {"raw": ("#4C72B0", "o", "raw σ(r_c − r_r)"), "calibrated": ("#DD8452", "s", "temperature-scaled")}
    for name, rows in bins.items():
        color, marker, label = styles[name]
        shown = [b for b in rows if b["count"]]
        top.plot([b["confidence"] for b in shown], [b["accuracy"] for b in shown], marker=marker, color=color, label=label)
        offset = -width / 4 if name == "raw" else width / 4
        bottom.bar([b["lo"] + width / 2 + offset for b in rows], [b["count"] for b in rows], width=width / 2,
                   color=color, label=label)
    top.set_xlim(0, 1)
    top.set_ylim(0, 1)
    top.set_ylabel("Observed share: first answer preferred")
    top.set_title(f"Reliability on the test pairs (both orders, {n_bins} bins)")
    top.legend(loc="upper left", fontsize=8)
    top.grid(alpha=0.3)
    bottom.set_xlabel("Predicted probability that the first answer is preferred")
    bottom.set_ylabel("Predictions")
    bottom.grid(axis="y", alpha=0.3)
    return save_figure(fig, root, "reliability.png")
