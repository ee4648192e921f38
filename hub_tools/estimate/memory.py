"""Peak training memory per device, computed from a recipe, without a GPU: `psycopref estimate RECIPE`
(the command itself is in `hub_tools.estimate.costs`, which adds `--costs`: GPU-hours and dollars).

The recipe's model is built on the meta device (accelerate's `init_empty_weights`; configs of the
Llama bases ship with the package, so nothing is downloaded) and its parameters are counted, LoRA
adapters included (peft on the meta model). Memory is then added up from those counts:

- weights at the recipe's dtype, or 4-bit NF4 for QLoRA (0.5 byte + double-quantised block scales per
  parameter of every decoder Linear; the rest stays in the compute dtype);
- gradients and optimizer states of the trainable parameters (AdamW: two states in the parameter's
  dtype; 8-bit optimizers: two bytes); TRL casts trainable parameters of a quantised model to bf16;
- ZeRO-3 / FSDP full sharding divides weights, gradients and optimizer states by the number of GPUs
  (plus one gathered layer in flight);
- activations of one micro-batch (sequences x length): with checkpointing, every layer's input plus one
  layer recomputed with its gradients; without, every layer's saved tensors. Layers below the first
  trainable one (LoRA on the top layers only) save nothing. A Llama layer with a
  memory-efficient attention kernel (SDPA / flash: no length² scores) saves about 7H + 3H_kv + 4I
  values per token (norms, q/k/v and rotated q/k, attention output, SwiGLU's gate/up/act/product), plus
  each LoRA module's dropout copy of its input and its rank-r projection;
- transient buffers (a dequantised NF4 weight) and 1 GiB for the CUDA context and allocator slack.

It is an estimate (±20% is typical; fragmentation and kernels' workspaces vary): treat a budget's last
2 GiB as unsafe. Any recipe schema with a `memory_plan()` method can be estimated.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import RecipeError, find_recipe_file, load_any, read_yaml

GIB = 1024**3
CUDA_OVERHEAD = 1 * GIB  # CUDA context, cuBLAS workspace, allocator slack (rule of thumb)
NF4_BYTES = 0.5 + 1 / 64 + 4 / (64 * 256)  # 4-bit value + 8-bit scale per 64 + fp32 scale per 256 blocks
_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}
_HEADS = ("score", "lm_head", "classifier")  # output heads bitsandbytes leaves unquantised
_8BIT_OPTIMIZERS = ("8bit",)  # adamw_8bit, paged_adamw_8bit, adamw_bnb_8bit, ...
_STATELESS = ("sgd",)


@dataclass(frozen=True)
class TrainingPlan:
    """One training process, as memory sees it."""

    model: str  # a spec serving.models.model_config understands
    head: str = "sequence_classification"  # or "causal_lm" (policies: adds the vocabulary logits)
    dtype: str = "bfloat16"  # weights as loaded (QLoRA: the compute dtype)
    quantization: str | None = None  # "nf4"
    lora: Any = None  # a peft.LoraConfig, or None for full training
    sequences: int = 1  # sequences per forward pass on one device
    seq_len: int = 1024
    checkpointing: bool = True
    mixed_precision: str | None = "bf16"  # activations in 2 bytes under bf16/fp16 autocast
    optimizer: str = "adamw_torch"
    devices: int = 1
    sharding: str = "none"  # "zero3" / "fsdp": weights, gradients and states split over devices
    budget_gb: float | None = None  # memory per device the recipe must fit in (GiB)
    reference_model: bool = False  # DPO with full training (or DPO-Iter's initial policy as every round's
    # reference): a frozen copy of the reference policy; LoRA from its round's start: none, adapters switched off


@dataclass
class MemoryEstimate:
    """Parameter counts and peak bytes per device, line by line."""

    plan: TrainingPlan
    params: int
    trainable: int
    quantized: int
    lines: dict[str, float] = field(default_factory=dict)

    @property
    def total(self) -> float:
        return sum(self.lines.values())

    def gib(self) -> dict[str, float]:
        return {k: v / GIB for k, v in {**self.lines, "total": self.total}.items()}

    @property
    def fits(self) -> bool | None:
        return None if self.plan.budget_gb is None else self.total / GIB <= self.plan.budget_gb


def build_meta_model(plan: TrainingPlan):
    """The plan's model (with its LoRA adapters) on the meta device: shapes, no memory."""
    from accelerate import init_empty_weights
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    from ..serving.models import model_config

    config = model_config(plan.model)
    auto = AutoModelForCausalLM
    if plan.head == "sequence_classification":
        config.num_labels, auto = 1, AutoModelForSequenceClassification
    with init_empty_weights():
        model = auto.from_config(config)
        if plan.lora is not None:
            from peft import get_peft_model

            model = get_peft_model(model, plan.lora)
    return config, model


def _dims(config) -> tuple[int, int, int, int, int]:
    text = config.get_text_config()
    h, layers = text.hidden_size, text.num_hidden_layers
    head_dim = getattr(text, "head_dim", None) or h // text.num_attention_heads
    kv = (getattr(text, "num_key_value_heads", None) or text.num_attention_heads) * head_dim
    return h, kv, text.intermediate_size, layers, text.vocab_size


def _layer_of(name: str) -> int | None:
    parts = name.split(".")
    for a, b in zip(parts, parts[1:]):
        if a == "layers" and b.isdigit():
            return int(b)
    return None


def estimate(plan: TrainingPlan) -> MemoryEstimate:
    """Peak memory of one training process of `plan` (see the module docstring for the model)."""
    import torch

    config, model = build_meta_model(plan)
    h, kv, inter, n_layers, vocab = _dims(config)
    w_bytes = _BYTES[plan.dtype]
    act_bytes = 2 if plan.mixed_precision in ("bf16", "fp16") else w_bytes
    params = {id(p): p for p in model.parameters()}  # tied weights count once
    n_params = sum(p.numel() for p in params.values())
    trainable = sum(p.numel() for p in params.values() if p.requires_grad)

    # Layers below the first trainable one save nothing for backward (no input there needs a gradient).
    trained_layers = {_layer_of(n) for n, p in model.named_parameters() if p.requires_grad} - {None}
    embeddings_trained = any(p.requires_grad for n, p in model.named_parameters() if "embed" in n)
    first = 0 if embeddings_trained or not trained_layers else min(trained_layers)
    active = n_layers - first
    quantized, largest, lora_extra = 0, 0, [0] * n_layers
    for name, module in model.named_modules():
        if hasattr(module, "lora_A"):  # a LoRA-wrapped Linear: dropout copy of its input + rank-r projection
            layer = _layer_of(name)
            if layer is not None:
                dropout = module.lora_dropout["default"]
                kept = 0 if isinstance(dropout, torch.nn.Identity) else module.in_features
                lora_extra[layer] += kept + module.r["default"]
        elif isinstance(module, torch.nn.Linear) and plan.quantization and \
                not set(name.split(".")) & {*_HEADS, "lora_A", "lora_B", "modules_to_save"}:
            quantized += module.weight.numel()
            largest = max(largest, module.weight.numel())
    # Trainable parameters are the adapters (+ the head's trainable copy) under LoRA, every weight otherwise.
    frozen_plain = n_params - trainable - quantized if plan.lora is not None else 0
    trainable_bytes = 2 if plan.quantization else w_bytes  # TRL casts a quantised model's trainables to bf16
    if plan.quantization:
        weights = quantized * NF4_BYTES + frozen_plain * w_bytes + trainable * trainable_bytes
    else:
        weights = n_params * w_bytes
    # DPO's frozen reference copy: bf16, or loaded like the policy (4-bit) in a quantised run
    reference = quantized * NF4_BYTES + (n_params - quantized) * w_bytes if plan.quantization else n_params * _BYTES["bfloat16"]
    opt = plan.optimizer.lower()
    state = 0 if any(s in opt for s in _STATELESS) else 2 * (1 if any(s in opt for s in _8BIT_OPTIMIZERS)
                                                               else trainable_bytes)
    shard = plan.devices if plan.sharding in ("zero3", "fsdp") else 1

    tokens = plan.sequences * plan.seq_len
    per_layer = 7 * h + 3 * kv + 4 * inter  # values saved per token by one decoder layer
    if plan.checkpointing:
        act = active * h + 2 * (per_layer + max(lora_extra))  # layer inputs + one layer and its gradients
    else:
        act = active * per_layer + sum(lora_extra) + per_layer + max(lora_extra)
    head = 2 * h * act_bytes + (2 * vocab * 4 if plan.head == "causal_lm" else 0)  # final norm (+ fp32 logits)

    transient = largest * _BYTES[plan.dtype] if plan.quantization else 0  # one NF4 weight dequantised
    if shard > 1:
        transient += 2 * (n_params / n_layers) * 2  # one gathered layer in bf16, plus the prefetched next one
    lines = {
        "weights": weights / shard,
        "reference": (reference if plan.reference_model else 0) / shard,
        "gradients": trainable * trainable_bytes / shard,
        "optimizer": trainable * state / shard,
        "activations": tokens * (act * act_bytes + head),
        "transient": transient,
        "cuda_overhead": CUDA_OVERHEAD,
    }
    return MemoryEstimate(plan, n_params, trainable, quantized, lines)


def sharding(accelerate_config: str | None) -> str:
    """'zero3' for DeepSpeed ZeRO stage 3, 'fsdp' for FSDP full sharding, else 'none'."""
    if not accelerate_config:
        return "none"
    path = find_recipe_file(accelerate_config)
    cfg = read_yaml(path) or {}
    if not isinstance(cfg, dict):
        raise RecipeError(f"{path}: an accelerate config is a mapping of keys, got {type(cfg).__name__}")
    kind = cfg.get("distributed_type")
    if kind == "DEEPSPEED" and (cfg.get("deepspeed_config") or {}).get("zero_stage") == 3:
        return "zero3"
    fsdp = cfg.get("fsdp_config") or {}
    if kind == "FSDP" and (fsdp.get("fsdp_sharding_strategy") in ("FULL_SHARD", 1) or fsdp.get("fsdp_version") == 2):
        return "fsdp"
    return "none"


def estimate_recipe(path: str | Path, overrides: dict | None = None, kind: str | None = None) -> MemoryEstimate:
    recipe = load_any(path, overrides, kind)
    if not hasattr(recipe, "memory_plan"):
        raise RecipeError(f"{path}: a {type(recipe).__name__} trains no model; nothing to estimate")
    return estimate(recipe.memory_plan())


def markdown_table(rows: list[tuple[str, MemoryEstimate]]) -> str:
    """One row per recipe: the plan, parameter counts and GiB per line."""
    head = ("| recipe | method | devices | seqs x len | params | trainable | weights | reference | grads | optimizer | "
            "activations | transient + CUDA | **total GiB** | budget |")
    out = [head, "|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for name, est in rows:
        p, g = est.plan, est.gib()
        method = ("QLoRA (nf4)" if p.quantization else "LoRA" if p.lora is not None else "full") + \
                 (f", {p.sharding}" if p.sharding != "none" else "") + (", ckpt" if p.checkpointing else "")
        budget = "-" if p.budget_gb is None else f"{p.budget_gb:g} ({'fits' if est.fits else 'OVER'})"
        out.append(f"| {name} | {method} | {p.devices} | {p.sequences} x {p.seq_len} | {est.params / 1e9:.3f} B | "
                   f"{est.trainable / 1e6:,.1f} M | {g['weights']:.2f} | {g['reference']:.2f} | {g['gradients']:.2f} | {g['optimizer']:.2f} | "
                   f"{g['activations']:.2f} | {g['transient'] + g['cuda_overhead']:.2f} | **{g['total']:.2f}** | {budget} |")
    return "\n".join(out)
