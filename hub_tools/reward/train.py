"""Bradley–Terry reward-model training (paper §4.1) with TRL's `RewardTrainer`.

The base model gets a linear head (`AutoModelForSequenceClassification`, one label) and is trained on
−log σ(r(x, y_chosen) − r(x, y_rejected)); full, LoRA or QLoRA (4-bit NF4 base via bitsandbytes +
peft adapters). The same function runs on one process or under `accelerate launch` (multi-GPU,
DeepSpeed ZeRO-3, FSDP: the recipes name the accelerate config); the main process then builds the
model folder (`artifact.save_model_folder`).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from accelerate import PartialState
from transformers import set_seed
from trl import RewardTrainer

from ..config import RecipeError, save_resolved
from ..io import run_log
from ..training.licensing import read_licenses
from ..training.modeling import load_tokenizer
from ..training.preference_data import load_pairs
from .artifact import save_model_folder
from .config import RewardRecipe
from .modeling import load_reward_model

log = logging.getLogger("psycopref")

TRAIN_COLUMNS = ["prompt", "chosen", "rejected"]  # what RewardTrainer tokenises (conversational, explicit prompt)


def train_reward(recipe: RewardRecipe) -> Path:
    """Train the recipe's reward model and build its pushable folder (<work_dir>/reward_model); returns it."""
    args = recipe.reward_config()  # TRL's own checks first, before minutes of loading
    repo_id = recipe.repo_id  # the name is needed for the card: fail now, not after training
    if recipe.model.base_hub_id is None:
        raise RecipeError(f"model.hub_id: {recipe.model.name_or_path!r} is a local model; name its Hub id for the card")
    recipe = recipe.pinned()  # Hub inputs read at one commit, recorded in the published recipe
    if PartialState().is_main_process:  # under `accelerate launch` every process runs this function
        save_resolved(recipe, recipe.work_path / "recipe.resolved.yaml")
    with run_log(recipe.work_dir):
        pairs = load_pairs(recipe.data, recipe.seed)
        base = recipe.model.resolved()
        tokenizer = load_tokenizer(base)
        set_seed(args.seed)  # the score head is initialised at load, before the trainer seeds: tie it to the recipe
        model = load_reward_model(recipe, base, tokenizer.pad_token_id)
        dev = pairs["dev"].select_columns(TRAIN_COLUMNS) if len(pairs["dev"]) else None
        if dev is None and args.eval_strategy != "no":
            raise RecipeError("training.eval_strategy: evaluating during training needs dev pairs (data.dev_fraction > 0)")
        trainer = RewardTrainer(
            model=model, args=args, train_dataset=pairs["train"].select_columns(TRAIN_COLUMNS), eval_dataset=dev,
            processing_class=tokenizer, peft_config=recipe.model.lora.build() if recipe.model.lora else None)
        dropped = dropped_long_pairs(trainer, len(pairs["train"]), len(dev) if dev is not None else 0)
        world = trainer.accelerator.num_processes
        if world != recipe.hardware.gpus:
            log.warning("recipe sized for %d process(es), running on %d: effective batch %d instead of %d",
                        recipe.hardware.gpus, world, args.per_device_train_batch_size * args.gradient_accumulation_steps
                        * world, recipe.effective_batch_size)
        log.info("training %s reward model on %s (%s): %d train pairs, effective batch %d", recipe.model.method,
                 recipe.model.base_hub_id, base, len(pairs["train"]), recipe.effective_batch_size)
        result = trainer.train(resume_from_checkpoint=args.resume_from_checkpoint)
        final = Path(args.output_dir) / "final"
        trainer.save_model(str(final))  # every rank: ZeRO-3 / FSDP gather the weights here
        report = train_report(recipe, trainer, result, pairs, world, dropped)
        if trainer.is_world_process_zero():
            save_model_folder(recipe, final, tokenizer, report, repo_id, trainer)
        trainer.accelerator.wait_for_everyone()
    log.info("reward model folder: %s", recipe.model_dir)
    return recipe.model_dir


def dropped_long_pairs(trainer, n_train: int, n_dev: int) -> dict[str, int]:
    """How many pairs TRL's RewardTrainer dropped per split for being too long. Its `_prepare_dataset`
    (TRL 1.x) does not truncate: it filters out every pair whose chosen or rejected conversation is longer
    than `max_length` tokens, so the count is what went in minus what the trainer kept."""
    kept_dev = len(trainer.eval_dataset) if trainer.eval_dataset is not None else 0
    dropped = {"train": n_train - len(trainer.train_dataset), "dev": n_dev - kept_dev}
    if any(dropped.values()):
        log.warning("dropped pairs longer than max_length=%s tokens: %d of %d train, %d of %d dev",
                    trainer.args.max_length, dropped["train"], n_train, dropped["dev"], n_dev)
    return dropped


def train_report(recipe: RewardRecipe, trainer, result, pairs, world: int,
                 dropped: dict[str, int] | None = None) -> dict[str, Any]:
    """What the card says about the run: data sizes, steps, losses (no wall times: the folder's bytes
    must not change between identical runs)."""
    losses = [round(e["loss"], 6) for e in trainer.state.log_history if "loss" in e]
    sources = pairs["train"]["source"]
    args = trainer.args
    return {
        "method": recipe.model.method,
        "train_pairs": len(pairs["train"]),
        "helpsteer2_pairs": sum(s == "helpsteer2" for s in sources),
        "dev_pairs": len(pairs["dev"]),
        "test_pairs": len(pairs["test"]),
        "max_length": args.max_length,
        "dropped_long_pairs": dropped or {"train": 0, "dev": 0},  # longer than max_length: TRL filters them out
        "processes": world,
        "effective_batch_size": args.per_device_train_batch_size * args.gradient_accumulation_steps * world,
        "global_step": int(result.global_step),
        "epochs": round(float(trainer.state.epoch or 0), 4),
        "train_loss": round(float(result.training_loss), 6),
        "logged_losses": losses,
        "licenses": read_licenses(recipe, recipe.model.resolved()),  # the card's licence
    }


def build_reward(recipe: RewardRecipe) -> Path:
    """Train the reward model, then evaluate it: the folder with its metrics in its card (what a release builds)."""
    from .evaluate import evaluate_reward

    folder = train_reward(recipe)
    evaluate_reward(recipe)
    return folder
