"""Scoring conversations with a reward model: batched, with length bucketing.

A reward model is an `AutoModelForSequenceClassification` with one label: the conversation goes
through the tokenizer's chat template (no generation prompt, exactly as TRL's RewardTrainer tokenised
it for training) and the reward is the logit at the last non-pad token. Sorting sequences by length
before batching means each batch pads to a length close to its own sequences', and a token budget
(`max_batch_tokens`) lets short sequences share bigger batches: far fewer pad tokens are computed than
with batches taken in dataset order. Evaluation scores the test pairs with it; iterative DPO scores K
sampled answers per speech with the same `RewardScorer.score`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np


def plan_batches(lengths: Sequence[int], batch_size: int, max_batch_tokens: int | None = None,
                 bucket: bool = True) -> list[list[int]]:
    """Indices grouped into batches. `bucket`: longest first (an out-of-memory shows up at once), each
    batch closed when it holds `batch_size` sequences or its padded size (n x longest) would pass
    `max_batch_tokens`; otherwise dataset order in fixed batches of `batch_size`."""
    if not bucket:
        return [list(range(i, min(i + batch_size, len(lengths)))) for i in range(0, len(lengths), batch_size)]
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    batches: list[list[int]] = []
    current: list[int] = []
    for i in order:
        longest = lengths[current[0]] if current else lengths[i]  # sorted: the first is the longest
        if current and (len(current) >= batch_size or
                        (max_batch_tokens is not None and (len(current) + 1) * longest > max_batch_tokens)):
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    return batches


class RewardScorer:
    """Rewards for conversations (lists of {"role", "content"} messages) from a reward model."""

    def __init__(self, model, tokenizer, *, batch_size: int = 16, max_batch_tokens: int | None = 16384,
                 max_length: int | None = None, bucket: bool = True, pad_to: int | None = None):
        if tokenizer.pad_token_id is None:
            raise ValueError("the reward model's tokenizer has no pad token")
        self.model, self.tokenizer = model.eval(), tokenizer
        self.batch_size, self.max_batch_tokens = batch_size, max_batch_tokens
        self.max_length = max_length  # longer conversations keep their last max_length tokens (the answer)
        self.bucket = bucket  # False: dataset order (the naive baseline of benchmarks/bench_reward_scoring.py)
        self.pad_to = pad_to  # pad every batch to this length (naive fixed padding); None: to the batch's longest
        self.truncated = 0

    @classmethod
    def from_pretrained(cls, path: str | Path, *, dtype: str | None = None, device: str | None = None, **kwargs):
        """Load a saved reward model folder (or Hub id) onto the GPU when there is one."""
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        tokenizer = AutoTokenizer.from_pretrained(str(path))
        model = AutoModelForSequenceClassification.from_pretrained(
            str(path), dtype=getattr(torch, dtype) if dtype else "auto").to(device)
        return cls(model, tokenizer, **kwargs)

    def tokenize(self, conversations: Sequence[list[dict]]) -> list[list[int]]:
        """Token ids of each conversation through the chat template (as the trainer saw them)."""
        out = []
        for messages in conversations:
            ids = list(self.tokenizer.apply_chat_template(list(messages), tokenize=True, return_dict=True)["input_ids"])
            if self.max_length is not None and len(ids) > self.max_length:
                ids = ids[-self.max_length:]
                self.truncated += 1
            out.append(ids)
        return out

    def score_ids(self, ids: Sequence[list[int]], desc: str | None = None, shard: tuple[int, int] = (0, 1)) -> np.ndarray:
        """Rewards of pre-tokenised sequences, in their input order. `shard` (i, n): only the batches i, i+n, ...
        of the plan (a data-parallel worker's share; the others' rewards are NaN), each sequence in the same
        batch, so with the same rewards, as when one process scores them all."""
        import torch
        from tqdm.auto import tqdm

        rewards = np.full(len(ids), np.nan, dtype=np.float64)
        batches = plan_batches([len(x) for x in ids], self.batch_size, self.max_batch_tokens, self.bucket)
        batches = batches[shard[0]::shard[1]]
        device = next(self.model.parameters()).device
        pad = self.tokenizer.pad_token_id
        with torch.inference_mode(), tqdm(total=sum(map(len, batches)), desc=desc or "Scoring", unit="seq",
                                          disable=desc is None, dynamic_ncols=True) as bar:
            for batch in batches:
                width = self.pad_to or max(len(ids[i]) for i in batch)
                input_ids = torch.full((len(batch), width), pad, dtype=torch.long)
                mask = torch.zeros((len(batch), width), dtype=torch.long)
                for row, i in enumerate(batch):  # right padding, as the trainer's collator
                    input_ids[row, :len(ids[i])] = torch.tensor(ids[i])
                    mask[row, :len(ids[i])] = 1
                logits = self.model(input_ids=input_ids.to(device), attention_mask=mask.to(device)).logits
                rewards[batch] = logits[:, 0].float().cpu().numpy()
                bar.update(len(batch))
        return rewards

    def score(self, conversations: Sequence[list[dict]], desc: str | None = None,
              shard: tuple[int, int] = (0, 1)) -> np.ndarray:
        """One reward per conversation, in input order (`shard`: as `score_ids`)."""
        return self.score_ids(self.tokenize(conversations), desc, shard)

    def score_pairs(self, prompts: Sequence[list[dict]], chosen: Sequence[list[dict]], rejected: Sequence[list[dict]],
                    desc: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(rewards of prompt + chosen, rewards of prompt + rejected); both sides are bucketed together."""
        convs = [list(p) + list(c) for p, c in zip(prompts, chosen)] + [list(p) + list(r) for p, r in zip(prompts, rejected)]
        rewards = self.score(convs, desc)
        return rewards[:len(prompts)], rewards[len(prompts):]
