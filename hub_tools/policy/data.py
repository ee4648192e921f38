"""The preference pairs as DPO sees them: the speech wrapped in the paper's Responding Prompt (how the
pool was asked when the pairs were made, and how the policy is asked at evaluation), chosen and rejected
answers as assistant messages, in TRL's conversational format."""

from __future__ import annotations

from datasets import DatasetDict

from ..paper.prompts import responding_messages
from ..training.preference_data import load_pairs
from .config import PolicyDataSection

TRAIN_COLUMNS = ["prompt", "chosen", "rejected"]  # what DPOTrainer tokenises


def as_policy_prompt(speech_messages: list[dict]) -> list[dict]:
    """[user: speech] -> [user: Responding Prompt(speech)]."""
    speech = speech_messages[-1]["content"] if speech_messages else ""
    return responding_messages(speech)


def dpo_pairs(cfg: PolicyDataSection, seed: int = 42) -> DatasetDict:
    """train / dev / test pairs with the policy's prompts (see `PolicyDataSection.prompt`)."""
    pairs = load_pairs(cfg, seed)
    if cfg.prompt == "speech":
        return pairs
    return DatasetDict({split: ds.map(lambda ex: {"prompt": as_policy_prompt(ex["prompt"])}, desc=f"{split} prompts")
                        for split, ds in pairs.items()})
