"""DPO (paper §4.2, β = 0.1) with TRL's `DPOTrainer`, from a starting policy to a merged checkpoint.

`train_dpo` is the offline recipe: the dataset's train pairs, from the base model, into the pushable
folder with its card. `train_checkpoint` is the step both it and every DPO-Iter round run: full, LoRA
or QLoRA training from `start` against a reference model (TRL's default — the starting policy, or the
base with adapters switched off — unless one is given), then the adapters merged into the unquantised
weights so the checkpoint loads like any model (and answers the next round's prompts). Runs alone or
under `accelerate launch`; only the main process writes the checkpoint folder.
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import Any

from accelerate import PartialState
from datasets import Dataset

from ..config import RecipeError, save_resolved
from ..io import atomic_dir, run_log, write_json
from ..training.history import copy_tensorboard, save_history
from ..training.licensing import read_licenses
from ..training.modeling import ADAPTER_DIR, copy_adapter, load_tokenizer, merge_adapter, save_tokenizer
from .config import DPORecipe
from .data import TRAIN_COLUMNS, dpo_pairs
from .modeling import load_policy_model
from .selection import CHECKPOINTS, dev_checkpoints

log = logging.getLogger("psycopref")
REPORT = "train_results.json"


def train_checkpoint(recipe: DPORecipe, pairs: Dataset, start: str, out: Path, *, dev: Dataset | None = None,
                     reference: str | None = None, trainer_dir: Path | None = None, callbacks=None) -> dict[str, Any]:
    """Train DPO on `pairs` from the policy at `start` into the model folder `out` (weights, tokenizer and,
    for LoRA runs from the base, `adapter/`); returns the run's report (also saved as train_results.json)."""
    from trl import DPOTrainer

    args = recipe.dpo_config(**({"output_dir": str(trainer_dir)} if trainer_dir else {}))
    if dev is None and args.eval_strategy != "no":
        raise RecipeError("training.eval_strategy: evaluating during training needs dev pairs (data.dev_fraction > 0)")
    tokenizer = load_tokenizer(start)
    model = load_policy_model(recipe.model, start)
    ref = load_policy_model(recipe.model, reference) if reference else None
    trainer = DPOTrainer(model=model, ref_model=ref, args=args, train_dataset=pairs.select_columns(TRAIN_COLUMNS),
                         eval_dataset=dev.select_columns(TRAIN_COLUMNS) if dev is not None else None,
                         processing_class=tokenizer, callbacks=callbacks(tokenizer) if callbacks else None,
                         peft_config=recipe.model.lora.build() if recipe.model.lora else None)
    world = trainer.accelerator.num_processes
    log.info("DPO (%s, beta %g) from %s: %d pairs, effective batch %d", recipe.model.method, args.beta, start,
             len(pairs), args.per_device_train_batch_size * args.gradient_accumulation_steps * world)
    result = trainer.train(resume_from_checkpoint=args.resume_from_checkpoint)
    final = Path(args.output_dir) / "final"
    trainer.save_model(str(final))  # every rank: ZeRO-3 / FSDP gather the weights here
    report = _report(recipe, trainer, result, len(pairs), 0 if dev is None else len(dev), world, start, reference)
    if trainer.is_world_process_zero():
        _save_checkpoint(recipe, final, start, tokenizer, out, report, trainer)
    trainer.accelerator.wait_for_everyone()
    return report


def _save_checkpoint(recipe: DPORecipe, final: Path, start: str, tokenizer, out: Path, report: dict, trainer) -> None:
    """The trained policy as a plain model folder: LoRA merged into the unquantised starting weights (with
    `load_best_model_at_end`, the best checkpoint on dev), its log history, the dev checkpoints it was
    chosen from (checkpoints.json) and any TensorBoard event files."""
    import torch
    from transformers import AutoModelForCausalLM

    with atomic_dir(out) as tmp:
        tmp.mkdir()
        if recipe.model.lora is not None:
            model = merge_adapter(load_policy_model(recipe.model, start, for_training=False), final)
            if start == recipe.model.resolved():  # an adapter of the published base
                copy_adapter(final, tmp / ADAPTER_DIR, recipe.model.base_hub_id)
        else:
            model = AutoModelForCausalLM.from_pretrained(str(final), dtype=getattr(torch, recipe.model.save_dtype))
        model.generation_config.pad_token_id = tokenizer.pad_token_id
        model.save_pretrained(tmp)
        save_tokenizer(tokenizer, tmp)  # the chat template in tokenizer_config.json too
        write_json(tmp / REPORT, report)
        save_history(tmp, trainer.state.log_history)
        chosen = dev_checkpoints(trainer.state.log_history, trainer.args, trainer.state.best_model_checkpoint,
                                 trainer.state.global_step)
        if chosen is not None:
            write_json(tmp / CHECKPOINTS, chosen)
        copy_tensorboard(trainer.args.output_dir, tmp)


def _report(recipe: DPORecipe, trainer, result, n_train: int, n_dev: int, world: int, start: str,
            reference: str | None) -> dict[str, Any]:
    """What the card says about a run: sizes, steps, losses and DPO's reward margins (no wall times, so
    identical runs give identical folders)."""
    history = trainer.state.log_history
    pick = lambda key: [round(e[key], 6) for e in history if key in e]  # noqa: E731
    args = trainer.args
    return {
        "method": recipe.model.method,
        "beta": args.beta,
        "loss_type": [str(getattr(t, "value", t)) for t in args.loss_type] if isinstance(args.loss_type, list)
        else str(getattr(args.loss_type, "value", args.loss_type)),
        "train_pairs": n_train,
        "dev_pairs": n_dev,
        "processes": world,
        "effective_batch_size": args.per_device_train_batch_size * args.gradient_accumulation_steps * world,
        "global_step": int(result.global_step),
        "epochs": round(float(trainer.state.epoch or 0), 4),
        "train_loss": round(float(result.training_loss), 6),
        "logged_losses": pick("loss"),
        "reward_margins": pick("rewards/margins"),
        "reference": "given" if reference else "starting policy",
        "licenses": read_licenses(recipe, recipe.model.resolved()),  # the card's licence
    }


def train_dpo(recipe: DPORecipe) -> Path:
    """Offline DPO: train the recipe's policy on the train pairs and build its pushable folder."""
    from .artifact import build_policy_folder

    repo_id = recipe.repo_id  # the name is needed for the card: fail now, not after training
    if recipe.model.base_hub_id is None:
        raise RecipeError(f"model.hub_id: {recipe.model.name_or_path!r} is a local model; name its Hub id for the card")
    recipe.dpo_config()  # TRL's own checks before minutes of loading
    recipe = recipe.pinned()  # Hub inputs read at one commit, recorded in the published recipe
    if PartialState().is_main_process:
        save_resolved(recipe, recipe.work_path / "recipe.resolved.yaml")
    with run_log(recipe.work_dir), contextlib.ExitStack() as stack:
        pairs = dpo_pairs(recipe.data, recipe.seed)
        checkpoint = recipe.work_path / "checkpoint"
        callbacks = None
        if recipe.dev_judge is not None:  # the judge's dev win rate at every evaluation
            from .dev_judge import judge_callbacks

            callbacks = judge_callbacks(recipe, len(pairs["dev"]), stack)
        train_checkpoint(recipe, pairs["train"], recipe.model.resolved(), checkpoint,
                         dev=pairs["dev"] if len(pairs["dev"]) else None, callbacks=callbacks)
        if PartialState().is_main_process:
            build_policy_folder(recipe, checkpoint, repo_id)
    log.info("policy folder: %s", recipe.model_dir)
    return recipe.model_dir
