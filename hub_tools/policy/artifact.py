"""The policy's repo folder, exactly as it is pushed:

  model.safetensors, config.json, generation_config.json   AutoModelForCausalLM (LoRA merged into the base)
  tokenizer files, chat_template.jinja                      the template the policy was trained through
  adapter/                                                  LoRA / QLoRA runs from the base: the adapter itself
  train_results.json, rounds.json                           the run (DPO-Iter: one entry per round)
  log_history.json, checkpoints.json, runs/                 the trainer's log (the card's curves), the dev
                                                            checkpoints DPO chose from, TensorBoard events
  figures/training_curves.png, figures/rounds.png           the card's curves (DPO-Iter: per round)
  winrate.json, figures/winrate_topics.png                  after `attach_winrate`
  recipe.yaml, README.md                                    the resolved recipe and the card

Built from a trained checkpoint folder in a temporary sibling and swapped in. `push_policy` publishes it
(or any round's checkpoint to its own branch) through the shared Hub layer.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from ..hub.push import PushResult, push_folder
from ..io import atomic_dir, need, read_json, write_json, write_text
from ..kinds import RECIPE_FILE
from .card import ROUNDS, TRAIN_RESULTS, WINRATE, recipe_yaml, write_card
from .config import DPORecipe

log = logging.getLogger("psycopref")


def build_policy_folder(recipe: DPORecipe, checkpoint: Path, repo_id: str, rounds: list[dict] | None = None,
                        report: dict | None = None, out: Path | None = None) -> Path:
    """The pushable folder (default <work_dir>/policy_model) from a checkpoint (weights, tokenizer,
    train_results.json, adapter/), with the recipe, the rounds of DPO-Iter (`report` updates the
    checkpoint's train results with the whole run's totals) and the card."""
    out = out or recipe.model_dir
    with atomic_dir(out) as tmp:
        shutil.copytree(checkpoint, tmp)
        write_text(tmp / RECIPE_FILE, recipe_yaml(recipe))
        if rounds is not None:
            write_json(tmp / ROUNDS, rounds)
        if report:
            write_json(tmp / TRAIN_RESULTS, {**read_json(tmp / TRAIN_RESULTS), **report})
        write_card(recipe, tmp, repo_id)
    return out


def attach_winrate(recipe: DPORecipe, results: dict, policy: str, folder: Path | None = None) -> Path:
    """Put one policy's win rates (`evaluate_policies` results, policy name `policy`) and its per-topic
    chart into its model folder, and rewrite the card with them."""
    from .winrate.report import topic_figure

    folder = Path(folder or recipe.model_dir)
    need(folder.parent, folder.name, "policy dpo")
    mine = results["policies"][policy]
    settings = mine["settings"]
    n = max((s.get("n_speeches") or 0) for s in settings.values()) if settings else 0
    figure = topic_figure(folder, results, policies=[policy])
    write_json(folder / WINRATE, {"policy": policy, "reference": results["reference"]["name"],
                                  "judge": results["judge"]["model"], "n_speeches": n, "settings": settings,
                                  "figure": figure})
    write_card(recipe, folder, recipe.repo_id)
    return folder


def push_policy(recipe: DPORecipe, folder: Path | None = None, revision: str | None = None) -> PushResult:
    """Publish the policy folder (or `folder`, e.g. a round's checkpoint) as <push.repo_id>, on branch
    `revision` (default: push.revision, else main): the Hub, or `push.hub_dir` locally."""
    folder = Path(folder or recipe.model_dir)
    need(folder.parent, folder.name, "policy dpo")
    if not (folder / TRAIN_RESULTS).is_file():
        log.warning("%s has no %s: is it a policy folder?", folder, TRAIN_RESULTS)
    p = recipe.push
    branch = revision or p.revision
    return push_folder(folder, recipe.repo_id, "model", private=p.private, revision=branch,
                       tag=p.tag if branch in (None, "main") else None, hub_dir=p.hub_dir,
                       commit_message=f"Upload {recipe.repo_id}{f' ({branch})' if branch else ''} with psycopref")
