"""Policy recipes (paper §4.2): offline DPO on the preference pairs, and iterative DPO (DPO-Iter) whose
rounds sample answers from the current policy, score them with a reward model and train on the best and
worst of each speech.

`training:` is `trl.DPOConfig` itself and `model.lora:` is `peft.LoraConfig` itself (every field, type,
default and help text), so a recipe sets exactly what TRL and peft read; β defaults to the paper's 0.1.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from peft import LoraConfig
from pydantic import Field, field_validator, model_validator
from trl import DPOConfig

from ..config import Endpoint, RecipeError, Responder, ServerConfig, Strict, dataclass_section
from ..kinds import KINDS
from ..serving.base import in_process
from ..training.sections import DataSection, ModelSection, TrainedModelRecipe
from .winrate.config import PairwiseJudgeConfig

PolicyLoraSection = dataclass_section(LoraConfig, {"task_type": "CAUSAL_LM"})
DPOConfigSection = dataclass_section(DPOConfig, {"beta": 0.1})  # paper: β = 0.1 in every experiment


class PolicyModelSection(ModelSection):
    """The instruct model DPO starts from, and how its weights are held while training."""

    lora: PolicyLoraSection | None = Field(None, description="peft.LoraConfig fields (r, lora_alpha, lora_dropout, target_modules, ...); null trains every weight.")


class PolicyDataSection(DataSection):
    """The preference pairs, and how the policy sees a speech."""

    prompt: Literal["responding", "speech"] = Field("responding", description="What the policy is trained to answer: 'responding' wraps each speech in the paper's Responding Prompt (as the pool was asked when the pairs were made, and as the policy is asked at evaluation); 'speech' uses the bare speech.")


class DevJudgeSection(Strict):
    """A pairwise judge on the dev speeches (paper §4.2's judge, both orders): it picks DPO-Iter's round, and gives
    offline DPO a dev win rate at each evaluation (`metric_for_best_model: dev_winrate` chooses by it)."""

    judge: PairwiseJudgeConfig = Field(..., description="The pairwise judge comparing each round's dev answers with the reference's, in both orders; a rerun asks nothing twice (cached).")
    reference: Responder | None = Field(None, description="What the dev answers are compared with: a served model (e.g. GPT-4o, as in the paper's Table 2), answering each dev speech once; null (the default in every recipe): the initial policy's own dev answers (DPO-Iter: round 0's; DPO: taken before the first step), so the win rate says how far training moved past its start.")
    speeches: int = Field(32, ge=1, description="Offline DPO: dev speeches answered and judged at each evaluation (DPO-Iter judges its `iter.dev_limit` dev speeches).")
    max_tokens: int = Field(256, ge=1, description="Offline DPO: longest answer of the policy being trained (greedy, in process).")
    batch_size: int = Field(4, ge=1, description="Offline DPO: dev speeches answered per generate() batch.")


class DPORecipe(TrainedModelRecipe):
    """Offline DPO on the dataset's train pairs: `psycopref policy dpo` and `policy push` read it."""

    work_dir: str = Field("runs/dpo", description="Trainer checkpoints (trainer/), the model folder (policy_model/), caches and logs.")
    model: PolicyModelSection = Field(default_factory=PolicyModelSection, description="The base policy and how it is trained.")
    data: PolicyDataSection = Field(default_factory=PolicyDataSection, description="The preference pairs.")
    training: DPOConfigSection = Field(default_factory=DPOConfigSection, description="trl.DPOConfig: every field TRL's DPOTrainer reads (output_dir defaults to <work_dir>/trainer).")
    dev_judge: DevJudgeSection | None = Field(None, description="Offline DPO: also judge a sample of dev speeches at each evaluation (needs training.eval_strategy and dev pairs); `training.metric_for_best_model: dev_winrate` then publishes the checkpoint the judge prefers. DPO-Iter: set iter.dev_judge instead.")
    server: ServerConfig | None = Field(None, description="Managed llama.cpp server for a dev judge (or its reference) with base_url 'managed'.")

    suffix: ClassVar[str] = "DPO"  # the repo name's suffix and the card's method
    folder: ClassVar[str] = KINDS.get("dpo").folder

    def judge_on_dev(self) -> DevJudgeSection | None:
        """The dev judge of this run (DPO-Iter: its rounds')."""
        return self.dev_judge

    @model_validator(mode="after")
    def _winrate_needs_a_judge(self):
        if self.training.metric_for_best_model in ("dev_winrate", "eval_dev_winrate") and self.dev_judge is None:
            raise RecipeError("training.metric_for_best_model: dev_winrate is the dev judge's number; set dev_judge")
        return self

    def endpoints(self) -> list[Endpoint]:
        """The served endpoints a run calls (the dev judge and its reference): one Runtime serves them."""
        dj = self.judge_on_dev()
        return [] if dj is None else [dj.judge.endpoint, *([dj.reference] if dj.reference else [])]

    def dpo_config(self, **values: Any) -> DPOConfig:
        """TRL's DPOConfig for this run (output_dir defaults to <work_dir>/trainer); `values` override."""
        return self.trl_config(**values)

    def holds_reference(self) -> bool:
        """Whether training holds a frozen reference copy: when every weight trains (LoRA: the reference is the
        base with its adapters switched off)."""
        return self.model.lora is None

    def memory_plan(self):
        """As any model's, plus DPO's frozen reference copy when one is held (precomputed log-probs: none)."""
        return super().memory_plan(reference_model=self.holds_reference() and not self.training.precompute_ref_log_probs)


class GenerationSection(Strict):
    """How a round samples answers from the current policy."""

    backend: str | None = Field(None, description="An in-process backend: transformers (CPU or GPU) or vllm (GPU, optional extra); null: vllm when it is installed and a GPU is present, else transformers.")
    samples: int = Field(8, ge=2, description="Answers sampled per speech (paper: 8); the highest- and lowest-rewarded make the pair.")
    params: dict[str, Any] = Field(default_factory=lambda: {"temperature": 0.8, "top_p": 0.95, "max_tokens": 512},
                                   description="Decoding parameters of the samples (temperature, top_p, max_tokens, ...); each sample gets its own seed.")
    concurrency: int = Field(1, ge=1, description="Generation requests in flight at once.")
    data_parallel_size: int = Field(1, ge=1, description="Phased runs (--phases, --phase generate): engine replicas, each a worker process of its own on `tensor_parallel_size` GPUs (pinned with CUDA_VISIBLE_DEVICES) answering every N-th speech of the round into the shared call cache; e.g. 8 on a node of 8 GPUs for a policy that fits one. 1: one engine in the phase's process.")

    @field_validator("backend")
    @classmethod
    def _in_process(cls, backend: str | None) -> str | None:
        if backend is not None and not in_process(backend):
            raise ValueError(f"{backend!r} is not an in-process backend: a round samples from its own checkpoint folder")
        return backend


class IterSection(Strict):
    """The rounds of DPO-Iter (Pang et al., 2024, as in the paper)."""

    rounds: int = Field(4, ge=1, description="Rounds of sample -> score -> pair -> DPO (paper: 1,600 steps in all at batch 64).")
    speeches_per_round: int = Field(6400, ge=1, description="Train speeches sampled each round (paper: 6,400), seeded by the round.")
    reward_model: str = Field(..., description="The reward model folder (or Hub id) that scores the samples (paper: the reward model of the same size).")
    reward_model_revision: str | None = Field(None, description="Branch, tag or commit of a Hub id reward_model (null: main). A run pins it to the commit it reads and the published recipe records that sha; a local folder has no commit (null).")
    min_margin: float = Field(0.0, ge=0, description="Keep a speech's (best, worst) pair only when their rewards differ by at least this.")
    reference: Literal["initial", "previous"] = Field("initial", description="DPO reference model of each round: the initial policy, or the policy the round starts from.")
    dev_fraction: float = Field(0.1, ge=0, lt=1, description="Share of train speeches held out as the dev set (paper: 10%), answered after every round; the best round is published: by the dev judge's win rate when `dev_judge` is set, else by mean dev reward.")
    dev_limit: int | None = Field(None, ge=1, description="Answer at most this many dev speeches per round (quick runs).")
    dev_judge: DevJudgeSection | None = Field(None, description="Choose the published round by a pairwise judge's swap-consistent dev win rate (recommended: the reward model the rounds were trained against rewards its own hacks); null: by mean dev reward. Both numbers go to rounds.json and the card.")
    score_batch_size: int = Field(16, ge=1, description="Sequences per reward-model batch.")
    score_data_parallel_size: int = Field(1, ge=1, description="Phased runs (--phases, --phase score): reward-model worker processes, one GPU each (CUDA_VISIBLE_DEVICES), each scoring every N-th batch of the one-process batch plan, so the rewards are identical to one process's. 1: the phase's own process scores.")
    generation: GenerationSection = Field(default_factory=GenerationSection, description="Sampling from the current policy.")
    push_rounds: bool = Field(False, description="Push every round's checkpoint to its own branch (round-1, round-2, ...) of the policy repo, and the best to main.")

    def reward_model_folder(self) -> str:
        """The folder or id the reward model loads from (a pinned Hub model: its snapshots/<sha> folder)."""
        from ..serving.models import resolve_model

        return resolve_model(self.reward_model, self.reward_model_revision)


class DPOIterRecipe(DPORecipe):
    """Iterative DPO: `psycopref policy dpo-iter` and `policy push` read it."""

    work_dir: str = Field("runs/dpo-iter", description="One folder per round (round-1/, ...: speeches, samples, scores, pairs, checkpoint, manifest), the best policy's folder (policy_model/), caches and logs.")
    iter: IterSection = Field(..., description="The rounds.")

    def judge_on_dev(self) -> DevJudgeSection | None:
        return self.iter.dev_judge

    suffix: ClassVar[str] = "DPO-Iter"

    def pinned(self):
        """As any model's, and the reward model read from the Hub pinned too (`iter.reward_model_revision`)."""
        from ..hub.revisions import pin

        recipe = super().pinned()
        sha = pin(self.iter.reward_model, self.iter.reward_model_revision, "model", "iter.reward_model_revision")
        return recipe.model_copy(update={"iter": recipe.iter.model_copy(update={"reward_model_revision": sha})})

    def holds_reference(self) -> bool:
        """As DPO's, and also with LoRA when later rounds refer to the initial policy (`iter.reference:
        initial`): a LoRA round's own base is the round's start, not the initial policy."""
        return super().holds_reference() or (self.iter.reference == "initial" and self.iter.rounds > 1)

    @model_validator(mode="after")
    def _one_dev_judge(self):
        if self.dev_judge is not None:
            raise RecipeError("dev_judge: DPO-Iter judges its rounds on dev with iter.dev_judge; move it there")
        return self

    @model_validator(mode="after")
    def _samples_pair(self):
        if self.iter.generation.samples < 2:
            raise RecipeError("iter.generation.samples: a pair needs at least 2 samples per speech")
        return self
