"""The base model as a reward model: `AutoModelForSequenceClassification` with one label, for training
(4-bit for QLoRA) or for saving."""

from __future__ import annotations

from ..training.modeling import model_kwargs
from .config import RewardRecipe


def load_reward_model(recipe: RewardRecipe, path: str, pad_token_id: int, *, for_training: bool = True):
    """`AutoModelForSequenceClassification` with one label on the base at `path` (4-bit when the recipe
    says nf4 and `for_training`), its pad token set so the reward is read at the last real token."""
    from transformers import AutoModelForSequenceClassification
    from trl.trainer.reward_trainer import suppress_seqcls_warning  # the new `score` head is expected

    kwargs = {"num_labels": 1, "pad_token_id": pad_token_id, **model_kwargs(recipe.model, for_training=for_training)}
    with suppress_seqcls_warning():
        return AutoModelForSequenceClassification.from_pretrained(path, **kwargs)
