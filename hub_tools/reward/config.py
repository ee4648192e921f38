"""The reward-model recipe (paper §4.1): base model, preference pairs, TRL's `RewardConfig`, the hardware
it was sized for, evaluation, card and publishing.

`training:` is `trl.RewardConfig` itself and `model.lora:` is `peft.LoraConfig` itself (every field, its
type, default and help text, via `dataclass_section`), so a recipe sets exactly what TRL and peft read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from peft import LoraConfig
from pydantic import Field, model_validator
from trl import RewardConfig

from ..config import Endpoint, RecipeError, ServerConfig, Strict, dataclass_section, public_dump
from ..training.sections import CardSection, DataSection, HardwareSection, ModelSection, PushSection

# LoRA on a sequence-classification model; `task_type` SEQ_CLS makes peft train the new `score` head fully.
RewardLoraSection = dataclass_section(LoraConfig, {"task_type": "SEQ_CLS"})
RewardConfigSection = dataclass_section(RewardConfig)


class RewardModelSection(ModelSection):
    """The base model the Bradley–Terry head is put on, and how its weights are held while training."""

    lora: RewardLoraSection | None = Field(None, description="peft.LoraConfig fields (r, lora_alpha, lora_dropout, target_modules, ...); null trains every weight. task_type SEQ_CLS trains the new score head fully.")


class RankerSection(Strict):
    """A generative judge asked the paper's LLM-as-Ranker Prompt (Appendix A) on every test pair, in both orders."""

    endpoint: Endpoint = Field(..., description="The ranking model (any backend); answers are JSON {\"better\": 1|2}.")
    concurrency: int = Field(4, ge=1, description="Parallel calls.")
    max_pairs: int | None = Field(None, ge=1, description="Seeded subset of the test pairs to rank (each costs two calls); null ranks all.")


class EvalSection(Strict):
    """How the trained model is evaluated on the test pairs."""

    ece_bins: int = Field(10, ge=2, description="Equal-width probability bins on [0, 1] for ECE and the reliability diagram.")
    batch_size: int = Field(16, ge=1, description="Most sequences per scoring batch.")
    max_batch_tokens: int | None = Field(16384, ge=1, description="Most padded tokens per scoring batch (length bucketing packs short sequences into bigger batches); null: batch_size alone.")
    ranker: RankerSection | None = Field(None, description="LLM-as-ranker baseline (paper Table 1's generative LLMs); null skips it.")


class RewardRecipe(Strict):
    """A reward-model run: `psycopref train-reward`, `eval-reward` and `push-reward` read it."""

    work_dir: str = Field("runs/reward", description="Trainer checkpoints (trainer/), the model folder (reward_model/), caches and logs.")
    seed: int = Field(42, description="Seed of the dev split, the subsets and the HelpSteer2 sample (training.seed seeds the trainer).")
    server: ServerConfig | None = Field(None, description="Managed llama.cpp server for a ranker endpoint with base_url 'managed'.")
    model: RewardModelSection = Field(default_factory=RewardModelSection, description="The base model and how it is trained.")
    data: DataSection = Field(default_factory=DataSection, description="The preference pairs.")
    training: RewardConfigSection = Field(default_factory=RewardConfigSection, description="trl.RewardConfig: every field TRL's RewardTrainer reads (output_dir defaults to <work_dir>/trainer).")
    hardware: HardwareSection = Field(default_factory=HardwareSection, description="What the recipe was sized for.")
    eval: EvalSection = Field(default_factory=EvalSection, description="Evaluation on the test pairs.")
    card: CardSection = Field(default_factory=CardSection, description="Model card facts.")
    push: PushSection = Field(default_factory=PushSection, description="Where the model folder is published.")

    @model_validator(mode="after")
    def _we_publish(self):
        if self.training.push_to_hub:
            raise ValueError("training.push_to_hub: the push section publishes the model with its card; leave this false")
        return self

    @property
    def work_path(self) -> Path:
        return Path(self.work_dir)

    @property
    def model_dir(self) -> Path:
        """The pushable folder: exactly what goes to the Hub."""
        return self.work_path / "reward_model"

    @property
    def effective_batch_size(self) -> int:
        t = self.training
        return t.per_device_train_batch_size * t.gradient_accumulation_steps * self.hardware.gpus

    @property
    def repo_id(self) -> str:
        return self.push.resolve(self.model, "Reward")

    def reward_config(self, **values: Any) -> RewardConfig:
        """TRL's RewardConfig for this run (output_dir defaults to <work_dir>/trainer); `values` override."""
        values.setdefault("output_dir", self.training.output_dir or str(self.work_path / "trainer"))
        try:
            return self.training.build(**values)
        except (ValueError, TypeError) as err:  # TrainingArguments' own checks, e.g. bf16 on a machine without it
            raise RecipeError(f"training: {err}") from None

    def public(self) -> dict[str, Any]:
        """The resolved recipe as published: no local work or output folders."""
        data = public_dump(self)
        data["training"].pop("output_dir", None)
        data["training"].pop("logging_dir", None)
        return data

    def memory_plan(self):
        """What `psycopref estimate` needs to size one training process of this recipe."""
        from ..estimate import TrainingPlan, sharding

        t = self.training
        checkpointing = t.activation_checkpointing if t.activation_checkpointing is not None else t.gradient_checkpointing
        precision = "fp16" if t.fp16 else "bf16" if t.bf16 in (True, None) else None  # TRL: bf16 unless fp16
        return TrainingPlan(
            model=self.model.name_or_path, head="sequence_classification", dtype=self.model.dtype,
            quantization=self.model.quantization, lora=self.model.lora.build() if self.model.lora else None,
            sequences=2 * t.per_device_train_batch_size,  # the collator stacks chosen and rejected
            seq_len=t.max_length or 1024, checkpointing=bool(checkpointing), mixed_precision=precision,
            optimizer=str(getattr(t.optim, "value", t.optim)), devices=self.hardware.gpus,
            sharding=sharding(self.hardware.accelerate_config), budget_gb=self.hardware.memory_gb,
        )
