"""The policy's card: Hub metadata (base_model, datasets, pipeline_tag text-generation, library_name,
tags psycopref + dpo or iterative-dpo, licence, the win rates as model-index `eval_results`) and the body
from `cards/policy_model_card.md`: intended use, usage snippet, win-rate table and per-topic chart,
training settings (and the rounds of DPO-Iter), the recipe, limitations.

Rebuilt from the folder's own files (train_results.json, rounds.json, winrate.json), so training writes
it without results and `attach_winrate` rewrites it with them; same files, same bytes.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from huggingface_hub import EvalResult, ModelCardData

from ..hub.cards import CardError, render_card
from ..hub.revisions import is_hub_id
from ..io import read_json
from ..kinds import RECIPE_FILE
from ..training.card import METHODS, training_rows
from ..training.curves import dpo_curves, rounds_curves
from ..training.licensing import license_statement, model_license
from .config import DPOIterRecipe, DPORecipe
from .selection import CHECKPOINTS, choose_round, reference_name, round_rule

TEMPLATE = "policy_model_card.md"  # inside package hub_tools.cards (the repo's cards/ folder)
TRAIN_RESULTS = "train_results.json"
ROUNDS = "rounds.json"  # DPO-Iter: one entry per round
WINRATE = "winrate.json"  # the policy's own win rates, from `psycopref policy eval`
EXPERT_EVAL = "expert_eval.json"  # the experts' evaluation, from `psycopref annotate score --kind policy`
TAGS = ["psycopref", "trl", "psychotherapy", "counseling", "mental-health"]
DEMO_PAIRS = 1000  # fewer train pairs than this: the card calls the model a demo
SETTINGS = {"free": "Without length constraint", "length_matched": "With length constraint"}


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}"


def _winrate(results: dict | None, dataset: str) -> tuple[dict | None, list[EvalResult]]:
    """The card's win-rate table rows and the model-index results, from this policy's winrate.json."""
    if not results:
        return None, []
    rows, evals = [], []
    for key, s in results["settings"].items():
        ci = s.get("ci")
        rows.append({"setting": SETTINGS.get(key, key), "win_rate": _pct(s["win_rate"]),
                     "ci": "-" if not ci else f"{_pct(ci[0])}–{_pct(ci[1])}", "lc": _pct(s.get("lc_win_rate")),
                     "wtl": f"{s['wins']} / {s['ties']} / {s['losses']}", "swap": _pct(s.get("swap_consistency")),
                     "length_ratio": "-" if s.get("length_ratio") is None else f"{s['length_ratio']:.2f}"})
        if s.get("win_rate") is not None:
            evals.append(EvalResult(task_type="text-generation", task_name="Counselling responses, pairwise win rate",
                                    dataset_type=dataset, dataset_name=f"{dataset.split('/')[-1]} test speeches",
                                    dataset_split="test", metric_type="win_rate",
                                    metric_name=f"Win rate vs {results['reference']} ({SETTINGS.get(key, key).lower()})",
                                    metric_value=round(s["win_rate"], 4)))  # a fraction, as every metric of the model-index
    return {"reference": results["reference"], "judge": results["judge"], "n_speeches": results["n_speeches"],
            "rows": rows, "figure": results.get("figure")}, evals


def _rounds(recipe: DPORecipe, rounds: list[dict] | None) -> tuple[list[dict], dict, int | None]:
    if not rounds or not isinstance(recipe, DPOIterRecipe):
        return [], {}, None
    it = recipe.iter
    rm = it.reward_model
    table = [{"round": r["round"], "speeches": r.get("speeches", "-"), "pairs": r.get("pairs", "-"),
              "margin": "-" if r.get("mean_margin") is None else f"{r['mean_margin']:.3f}",
              "steps": r.get("global_step", "-"), "loss": "-" if r.get("train_loss") is None else f"{r['train_loss']:.4f}",
              "dev": "-" if r.get("dev_reward") is None else f"{r['dev_reward']:.3f}",
              "winrate": _pct(r.get("dev_winrate"))} for r in rounds]
    info = {"speeches": it.speeches_per_round, "samples": it.generation.samples, "reward_model": rm,
            "reward_link": f"https://huggingface.co/{rm}" if is_hub_id(rm) else rm,
            "reference": "the initial policy" if it.reference == "initial" else "the policy the round starts from",
            "dev": it.dev_limit or f"{it.dev_fraction:.0%} of the", "rule": round_rule(recipe),
            "judge": it.dev_judge.judge.endpoint.model if it.dev_judge else None, "judge_reference": reference_name(recipe)}
    return table, info, choose_round(rounds, info["rule"])


def _checkpoints(record: dict | None) -> dict | None:
    """The card's table of the checkpoints evaluated on dev (checkpoints.json) and the rule that chose."""
    if not record:
        return None
    num = lambda x: "-" if x is None else f"{x:.4g}"  # noqa: E731  rewards near 0 early on: significant digits
    rows = [{"step": c["step"], "loss": num(c.get("loss")), "accuracy": _pct(c.get("accuracy")),
             "margin": num(c.get("margin")), "chosen_reward": num(c.get("chosen_reward")),
             "rejected_reward": num(c.get("rejected_reward")), "winrate": _pct(c.get("winrate")),
             "chosen": "**yes**" if c["chosen"] else ""} for c in record["checkpoints"]]
    return {"rule": record["rule"], "chosen_step": record["chosen_step"], "final_step": record["final_step"],
            "rows": rows, "judged": any("winrate" in c for c in record["checkpoints"])}


def write_card(recipe: DPORecipe, folder: Path, repo_id: str) -> Path:
    """(Re)write folder/README.md from the folder's result files."""
    train = read_json(Path(folder) / TRAIN_RESULTS)
    if train is None:
        raise CardError(f"{folder}: no {TRAIN_RESULTS}; the folder was not made by psycopref policy dpo")
    base, dataset = recipe.model.base_hub_id, recipe.data.hub_dataset_id
    license = recipe.card.license or model_license(train.get("licenses"), recipe.card.base_license)
    if base is None:
        raise CardError(f"model.hub_id: the card needs the Hub id of {recipe.model.name_or_path!r}")
    if dataset is None:
        raise CardError(f"data.dataset_id: the card needs the Hub id of the dataset at {recipe.data.path!r}")
    iterative = isinstance(recipe, DPOIterRecipe)
    winrate, evals = _winrate(read_json(Path(folder) / WINRATE), dataset)
    round_rows = read_json(Path(folder) / ROUNDS)
    rounds, iter_info, best_round = _rounds(recipe, round_rows)
    best_round = train.get("best_round", best_round)
    card_data = ModelCardData(
        model_name=repo_id.split("/")[-1], base_model=base, datasets=[dataset], library_name="transformers",
        pipeline_tag="text-generation", tags=TAGS + (["iterative-dpo", "dpo"] if iterative else ["dpo"]),
        license=license, language=["en"], eval_results=evals or None)
    t = recipe.training
    tail = [("Max sequence length", f"{t.max_length} tokens (prompt + answer; longer sequences are truncated)"
             if t.max_length else "none"),
            ("Train pairs", f"{train['train_pairs']:,}" + (" (all rounds)" if iterative else "")),
            ("Dev pairs", f"{train['dev_pairs']:,}")]
    head = [("Objective", f"DPO (Rafailov et al., 2023), β = {train['beta']:g}, loss {train['loss_type']}"),
            ("Prompt", "the paper's Responding Prompt around the speech" if recipe.data.prompt == "responding"
             else "the bare client speech")]
    context = {
        "title": recipe.card.pretty_name or repo_id.split("/")[-1], "repo_id": repo_id, "base_model": base,
        "dataset_id": dataset, "method_name": "DPO-Iter" if iterative else "DPO", "beta": f"{train['beta']:g}",
        "method_text": METHODS[recipe.model.method],
        "data_text": (f"pairs it sampled itself in {len(rounds) - 1} round(s), ranked by a reward model trained on "
                      f"[`{dataset}`](https://huggingface.co/datasets/{dataset})") if iterative else
                     f"the train pairs of [`{dataset}`](https://huggingface.co/datasets/{dataset})",
        "demo_scale": train["train_pairs"] < DEMO_PAIRS, "steps": train["global_step"],
        "train_pairs": train["train_pairs"], "winrate": winrate, "license": license,
        "license_statement": license_statement(train.get("licenses"), dataset),
        "hyper": training_rows(recipe.model, t, recipe.hardware, train, recipe.seed, head, tail),
        "rounds": rounds, "iter": iter_info, "best_round": best_round,
        "checkpoints": _checkpoints(read_json(Path(folder) / CHECKPOINTS)), "curves": dpo_curves(folder),
        "rounds_figure": rounds_curves(folder, round_rows) if iterative and round_rows else None,
        "losses": ", ".join(f"{x:.3f}" for x in train["logged_losses"][:40]) or "-",
        "launch": launch_command(recipe),
        "expert": read_json(Path(folder) / EXPERT_EVAL),  # its own block in the template
    }
    path = Path(folder) / "README.md"
    render_card("model", card_data, TEMPLATE, context).save(path)
    return path


def launch_command(recipe: DPORecipe, recipe_path: str = RECIPE_FILE) -> str:
    """How to train the recipe on the hardware it states."""
    cmd = "policy dpo-iter" if isinstance(recipe, DPOIterRecipe) else "policy dpo"
    hw = recipe.hardware
    if hw.accelerate_config:
        return (f"accelerate launch --config_file {hw.accelerate_config} --num_processes {hw.gpus} "
                f"-m hub_tools.cli {cmd} {recipe_path}")
    return f"psycopref {cmd} {recipe_path}"


def recipe_yaml(recipe: DPORecipe) -> str:
    return yaml.safe_dump(recipe.public(), sort_keys=False, allow_unicode=True)
