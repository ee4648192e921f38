"""Offline DPO's dev win rate during training: at every evaluation the policy being trained answers a
sample of the dev speeches (greedy, in process) and the pairwise judge compares each answer with the
reference's in both orders (paper §4.2's judge; calls cached). The swap-consistent win rate joins TRL's
dev metrics as `eval_dev_winrate`, so `metric_for_best_model: dev_winrate` publishes the checkpoint the
judge prefers, and checkpoints.json / the card list it beside reward accuracy and margin.

The reference is `dev_judge.reference` (a served model answering each sampled speech once) or, by
default, the initial policy: its answers are taken when training begins, before the first step.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import Any

from datasets import Dataset
from transformers import TrainerCallback

from ..config import RecipeError
from ..serving.runtime import Runtime
from ..training.preference_data import load_pairs
from .config import DPORecipe
from .data import as_policy_prompt
from .selection import swap_consistent

log = logging.getLogger("psycopref")
METRIC = "eval_dev_winrate"  # the judge's number among the trainer's eval metrics


def dev_sample(recipe: DPORecipe) -> Dataset:
    """The judged dev speeches: one row per dev speech (id, text), the first `dev_judge.speeches` by id."""
    dev = load_pairs(recipe.data, recipe.seed)["dev"]
    seen: dict[str, str] = {}
    for sid, prompt in zip(dev["ID"], dev["prompt"]):
        seen.setdefault(sid, prompt[-1]["content"])
    ids = sorted(seen)[: recipe.dev_judge.speeches]
    return Dataset.from_list([{"id": i, "text": seen[i], "topic_coarse": None} for i in ids])


def judge_callbacks(recipe: DPORecipe, n_dev: int, stack: contextlib.ExitStack) -> Callable[[Any], list[TrainerCallback]]:
    """The trainer's callbacks for `recipe.dev_judge` (given the tokenizer), with the judge's Runtime opened on
    `stack`; checks first that the run evaluates dev pairs, in one process."""
    from accelerate import PartialState

    if PartialState().num_processes > 1:
        raise RecipeError("dev_judge: offline DPO answers and judges the dev speeches in one process; run it "
                          "without accelerate launch, or drop dev_judge")
    if not n_dev or recipe.dpo_config().eval_strategy == "no":
        raise RecipeError("dev_judge: judging dev speeches needs dev pairs (data.dev_fraction > 0) and "
                          "training.eval_strategy")
    rt = stack.enter_context(Runtime(recipe.work_dir, recipe.endpoints(), recipe.server))
    speeches = dev_sample(recipe)
    return lambda tokenizer: [DevWinrate(recipe, rt, speeches, tokenizer)]


class DevWinrate(TrainerCallback):
    """Adds the judge's dev win rate to every evaluation's metrics (and to the log history)."""

    def __init__(self, recipe: DPORecipe, rt: Runtime, speeches: Dataset, tokenizer):
        self.recipe, self.rt, self.speeches, self.tokenizer = recipe, rt, speeches, tokenizer
        self.reference: dict[str, str] | None = None

    def answers(self, model) -> dict[str, str]:
        """speech id -> the model's greedy answer (the policy's prompt), generated in small batches."""
        import torch

        tok, cfg = self.tokenizer, self.recipe.dev_judge
        wrap = as_policy_prompt if self.recipe.data.prompt == "responding" else (lambda m: m)
        side, tok.padding_side = tok.padding_side, "left"
        was_training = model.training
        model.eval()
        out: dict[str, str] = {}
        try:
            for start in range(0, len(self.speeches), cfg.batch_size):
                rows = self.speeches.select(range(start, min(start + cfg.batch_size, len(self.speeches))))
                batch = tok.apply_chat_template([wrap([{"role": "user", "content": t}]) for t in rows["text"]],
                                                add_generation_prompt=True, padding=True, return_tensors="pt",
                                                return_dict=True).to(model.device)
                with torch.no_grad():
                    ids = model.generate(**batch, max_new_tokens=cfg.max_tokens, do_sample=False,
                                         pad_token_id=tok.pad_token_id)
                texts = tok.batch_decode(ids[:, batch["input_ids"].shape[1]:], skip_special_tokens=True)
                out.update({sid: text.strip() for sid, text in zip(rows["id"], texts)})
        finally:
            tok.padding_side = side
            model.train(was_training)
        return out

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        ref = self.recipe.dev_judge.reference
        if ref is None:
            self.reference = self.answers(model)  # the initial policy: nothing has trained yet
        else:
            from .winrate.evaluate import answer

            self.reference = answer(ref, self.speeches, self.recipe.work_path / "dev-reference", self.rt,
                                    seed=self.recipe.seed, concurrency=self.recipe.dev_judge.judge.concurrency)

    def on_evaluate(self, args, state, control, metrics: dict[str, Any] | None = None, model=None, **kwargs):
        from .winrate.pairwise import Pair, judge_pairs

        mine = self.answers(model)
        pairs = [Pair(sid, text, mine[sid], self.reference[sid]) for sid, text in
                 zip(self.speeches["id"], self.speeches["text"])]
        records = judge_pairs(self.recipe.dev_judge.judge, self.rt, pairs, seed=self.recipe.seed,
                              desc=f"dev judge step {state.global_step}")
        out = swap_consistent(records)
        rate = out["win_rate"]
        log.info("step %d: dev win rate %s over %d speeches", state.global_step, rate, out["n"])
        if metrics is not None and rate is not None:
            metrics[METRIC] = rate  # read by load_best_model_at_end's choice right after this callback
        if state.log_history and "eval_loss" in state.log_history[-1]:
            state.log_history[-1][METRIC] = rate
