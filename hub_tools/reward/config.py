"""The reward-model recipe (paper §4.1): base model, preference pairs, TRL's `RewardConfig`, the hardware
it was sized for, evaluation, card and publishing.

`training:` is `trl.RewardConfig` itself and `model.lora:` is `peft.LoraConfig` itself (every field, its
type, default and help text, via `dataclass_section`), so a recipe sets exactly what TRL and peft read.
"""

from __future__ import annotations

from typing import Any, ClassVar

from peft import LoraConfig
from pydantic import Field
from trl import RewardConfig

from ..config import Endpoint, ServerConfig, Strict, dataclass_section
from ..kinds import KINDS
from ..training.sections import DataSection, ModelSection, TrainedModelRecipe

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


class BaselineSection(Strict):
    """An off-the-shelf reward model scored on the same pairs (paper Table 1's "Reward Models" rows)."""

    name_or_path: str = Field(..., description="Hub id or local folder of an AutoModelForSequenceClassification reward model with one output (e.g. Skywork/Skywork-Reward-Llama-3.1-8B-v0.2); conversations go through its own tokenizer's chat template.")
    name: str | None = Field(None, description="Row name in the results and the card; null: name_or_path.")
    dtype: str | None = Field(None, description="Weights dtype when loading (bfloat16 for 8B models on a GPU); null: the checkpoint's own.")
    max_length: int | None = Field(None, ge=1, description="Longer conversations keep their last max_length tokens (the answer); null: never truncated.")

    @property
    def label(self) -> str:
        return self.name or self.name_or_path


class RewardBenchSection(Strict):
    """RewardBench-format pairs (columns prompt, chosen, rejected, subset): accuracy per subset and per section."""

    path: str = Field(..., description="A .jsonl / .json / .parquet file, a dataset folder (save_to_disk or repo folder) or a Hub id (allenai/reward-bench).")
    split: str = Field("filtered", description="Split read from a folder or Hub id (RewardBench's is 'filtered'); a single file is one split.")
    max_pairs: int | None = Field(None, ge=1, description="Seeded subset of the pairs; null scores all.")


class EvalSection(Strict):
    """How the trained model is evaluated on the test pairs."""

    ece_bins: int = Field(10, ge=2, description="Equal-width probability bins on [0, 1] for ECE and the reliability diagram.")
    batch_size: int = Field(16, ge=1, description="Most sequences per scoring batch.")
    max_batch_tokens: int | None = Field(16384, ge=1, description="Most padded tokens per scoring batch (length bucketing packs short sequences into bigger batches); null: batch_size alone.")
    ranker: RankerSection | None = Field(None, description="LLM-as-ranker baseline (paper Table 1's generative LLMs); null skips it.")
    baselines: list[BaselineSection] = Field(default_factory=list, description="Off-the-shelf reward models scored on the same test pairs (same metrics, per topic): one row each in the results and the card.")
    rewardbench: RewardBenchSection | None = Field(None, description="Also score this model and every baseline on RewardBench-format pairs; null skips it.")


class RewardRecipe(TrainedModelRecipe):
    """A reward-model run: `psycopref reward train`, `reward eval` and `reward push` read it."""

    work_dir: str = Field("runs/reward", description="Trainer checkpoints (trainer/), the model folder (reward_model/), caches and logs.")
    seed: int = Field(42, ge=0, lt=2**32, description="Seed of the dev split, the subsets and the HelpSteer2 sample (training.seed seeds the trainer).")
    server: ServerConfig | None = Field(None, description="Managed llama.cpp server for a ranker endpoint with base_url 'managed'.")
    model: RewardModelSection = Field(default_factory=RewardModelSection, description="The base model and how it is trained.")
    data: DataSection = Field(default_factory=DataSection, description="The preference pairs.")
    training: RewardConfigSection = Field(default_factory=RewardConfigSection, description="trl.RewardConfig: every field TRL's RewardTrainer reads (output_dir defaults to <work_dir>/trainer).")
    eval: EvalSection = Field(default_factory=EvalSection, description="Evaluation on the test pairs.")

    suffix: ClassVar[str] = "Reward"
    folder: ClassVar[str] = KINDS.get("reward").folder
    head: ClassVar[str] = "sequence_classification"

    def reward_config(self, **values: Any) -> RewardConfig:
        """TRL's RewardConfig for this run (output_dir defaults to <work_dir>/trainer); `values` override."""
        return self.trl_config(**values)
