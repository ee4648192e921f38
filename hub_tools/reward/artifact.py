"""The reward model's repo folder, exactly as it is pushed:

  model.safetensors, config.json        AutoModelForSequenceClassification, one label ("reward"), pad_token_id
  tokenizer files, chat_template.jinja  the chat template the model was trained through, with its pad token
  adapter/                              LoRA / QLoRA runs: the adapter itself (base_model_name_or_path = Hub id)
  train_results.json                    data sizes, steps, losses of the run
  log_history.json, runs/               the trainer's logged metrics (the card's curves); TensorBoard events
  eval_results.json, figures/           after `psycopref reward eval`
  recipe.yaml                           the resolved recipe (public: no local folders)
  README.md                             the model card (cards/reward_model_card.md)

LoRA adapters are merged into the base (loaded unquantised in `model.save_dtype`), so the repo loads
with `AutoModelForSequenceClassification.from_pretrained(repo)` like any model. The folder is built in
a temporary sibling and swapped in; the same weights give the same bytes.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import yaml

from ..hub.push import PushResult, push_folder
from ..io import atomic_dir, need, write_json, write_text
from ..kinds import RECIPE_FILE
from ..training.history import copy_tensorboard, save_history
from ..training.modeling import ADAPTER_DIR, copy_adapter, merge_adapter, save_tokenizer
from .card import EVAL_RESULTS, TRAIN_RESULTS, write_card
from .config import RewardRecipe
from .modeling import load_reward_model

LABEL = "reward"  # the one output's name in config.json (shown by the text-classification pipeline)

log = logging.getLogger("psycopref")


def save_model_folder(recipe: RewardRecipe, final: Path, tokenizer, report: dict[str, Any], repo_id: str,
                      trainer=None) -> Path:
    """Build <work_dir>/reward_model from the trainer's final save `final` (weights or adapter), with the
    `trainer`'s log history (the card's curves) and TensorBoard event files."""
    import torch
    from transformers import AutoModelForSequenceClassification

    with atomic_dir(recipe.model_dir) as tmp:
        tmp.mkdir()
        if recipe.model.lora is not None:
            base = load_reward_model(recipe, recipe.model.resolved(), tokenizer.pad_token_id,
                                     for_training=False)
            model = merge_adapter(base, final)
            copy_adapter(final, tmp / ADAPTER_DIR, recipe.model.base_hub_id)
        else:
            model = AutoModelForSequenceClassification.from_pretrained(str(final),
                                                                       dtype=getattr(torch, recipe.model.save_dtype))
        model.config.id2label, model.config.label2id = {0: LABEL}, {LABEL: 0}
        model.config.pad_token_id = tokenizer.pad_token_id
        model.save_pretrained(tmp)
        save_tokenizer(tokenizer, tmp)  # the chat template in tokenizer_config.json too
        write_text(tmp / RECIPE_FILE, yaml.safe_dump(recipe.public(), sort_keys=False, allow_unicode=True))
        write_json(tmp / TRAIN_RESULTS, report)
        if trainer is not None:
            save_history(tmp, trainer.state.log_history)
            copy_tensorboard(trainer.args.output_dir, tmp)
        write_card(recipe, tmp, repo_id)
    return recipe.model_dir


def push_reward(recipe: RewardRecipe) -> PushResult:
    """Publish <work_dir>/reward_model as <push.repo_id> (model repo): the Hub, or `push.hub_dir` locally."""
    folder = need(recipe.work_dir, recipe.model_dir.name, "reward train")
    if not (folder / EVAL_RESULTS).is_file():
        log.warning("%s has no %s: the card shows no metrics (run `psycopref reward eval` first)", folder, EVAL_RESULTS)
    p = recipe.push
    return push_folder(folder, recipe.repo_id, "model", private=p.private, revision=p.revision, tag=p.tag,
                       hub_dir=p.hub_dir, commit_message=f"Upload {recipe.repo_id} with psycopref")
