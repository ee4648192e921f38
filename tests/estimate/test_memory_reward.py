"""`psycopref estimate`: parameter counts on the meta device against real models, the memory lines against
a hand calculation, sharding read from the accelerate configs, and the shipped recipes' targets."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub_tools.estimate.memory import (
    CUDA_OVERHEAD,
    GIB,
    NF4_BYTES,
    TrainingPlan,
    estimate,
    estimate_recipe,
    markdown_table,
    sharding,
)

torch = pytest.importorskip("torch")
ROOT = Path(__file__).resolve().parents[2]
# tiny_base: hidden 32, 2 layers, 4 heads of 8 (2 key/value heads -> 16), MLP 64
H, KV, INTER, LAYERS = 32, 16, 64, 2
PER_LAYER = 7 * H + 3 * KV + 4 * INTER  # values one decoder layer saves per token


def _real(tiny_base):
    from transformers import AutoModelForSequenceClassification

    return AutoModelForSequenceClassification.from_pretrained(tiny_base, num_labels=1)


def test_full_training_by_hand(tiny_base):
    plan = TrainingPlan(model=str(tiny_base), dtype="float32", sequences=4, seq_len=16, checkpointing=False,
                        mixed_precision=None, optimizer="adamw_torch")
    est = estimate(plan)
    n = sum(p.numel() for p in _real(tiny_base).parameters())
    assert est.params == n == est.trainable and est.quantized == 0
    assert est.lines["weights"] == 4 * n and est.lines["gradients"] == 4 * n and est.lines["optimizer"] == 8 * n
    tokens = 4 * 16
    saved = LAYERS * PER_LAYER + PER_LAYER  # every layer's tensors + one layer's gradients in flight
    assert est.lines["activations"] == tokens * (saved * 4 + 2 * H * 4)
    assert est.lines["transient"] == 0 and est.lines["cuda_overhead"] == CUDA_OVERHEAD
    ckpt = estimate(TrainingPlan(model=str(tiny_base), dtype="float32", sequences=4, seq_len=16, checkpointing=True,
                                 mixed_precision="bf16"))
    assert ckpt.lines["activations"] == tokens * ((LAYERS * H + 2 * PER_LAYER) * 2 + 2 * H * 2)
    assert ckpt.total == pytest.approx(sum(ckpt.lines.values())) and ckpt.gib()["total"] == pytest.approx(ckpt.total / GIB)


def test_zero3_shards_states_over_gpus(tiny_base):
    one = estimate(TrainingPlan(model=str(tiny_base), dtype="float32"))
    eight = estimate(TrainingPlan(model=str(tiny_base), dtype="float32", devices=8, sharding="zero3"))
    for line in ("weights", "gradients", "optimizer"):
        assert eight.lines[line] == pytest.approx(one.lines[line] / 8)
    assert eight.lines["activations"] == one.lines["activations"]
    assert eight.lines["transient"] == pytest.approx(2 * (one.params / LAYERS) * 2)


def test_qlora_counts_match_bitsandbytes_and_peft(tiny_base):
    bnb = pytest.importorskip("bitsandbytes")
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForSequenceClassification, BitsAndBytesConfig

    lora = LoraConfig(r=4, lora_alpha=8, lora_dropout=0.1, target_modules="all-linear", task_type="SEQ_CLS")
    est = estimate(TrainingPlan(model=str(tiny_base), dtype="bfloat16", quantization="nf4", lora=lora, sequences=2,
                                seq_len=8, checkpointing=True))
    quant = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                               bnb_4bit_compute_dtype=torch.bfloat16)
    real = AutoModelForSequenceClassification.from_pretrained(tiny_base, num_labels=1, quantization_config=quant,
                                                              device_map="cpu")
    four_bit = [m for m in real.modules() if isinstance(m, bnb.nn.Linear4bit)]
    assert est.quantized == sum(m.in_features * m.out_features for m in four_bit)
    lora_model = get_peft_model(_real(tiny_base), LoraConfig(r=4, lora_alpha=8, lora_dropout=0.1,
                                                             target_modules="all-linear", task_type="SEQ_CLS"))
    trainable = sum(p.numel() for p in lora_model.parameters() if p.requires_grad)
    assert est.trainable == trainable
    # by hand: 7 adapted Linears per layer, r x (in + out) each (q, o: H -> H; k, v: H -> KV; gate, up: H -> INTER;
    # down: INTER -> H), + the trained copy of the score head (H x 1)
    assert trainable == LAYERS * 4 * (2 * (H + H) + 2 * (H + KV) + 2 * (H + INTER) + (INTER + H)) + H
    frozen = est.params - est.trainable - est.quantized  # embeddings, norms, the frozen score head
    assert est.lines["weights"] == pytest.approx(est.quantized * NF4_BYTES + frozen * 2 + trainable * 2)
    assert est.lines["optimizer"] == 2 * 2 * trainable and est.lines["transient"] == INTER * H * 2


def test_sharding_is_read_from_the_accelerate_configs():
    assert sharding("recipes/accelerate/deepspeed_zero3.yaml") == "zero3"
    assert sharding("recipes/accelerate/fsdp.yaml") == "fsdp"
    assert sharding("recipes/accelerate/multi_gpu.yaml") == "none" and sharding(None) == "none"


def test_shipped_recipes_meet_their_budgets(monkeypatch):
    monkeypatch.chdir(ROOT)
    est = estimate_recipe("recipes/llama-3.1-8b-instruct/reward/config_qlora.yaml")
    # Llama-3.1-8B-Instruct has 8,030,261,248 parameters; the reward model swaps lm_head (128,256 x 4,096) for score
    assert est.params - est.trainable == 8_030_261_248 - 128_256 * 4096 + 4096
    assert est.fits and est.total / GIB <= 16  # the target for the 8B QLoRA recipe
    table = markdown_table([("8b-qlora", est)])
    assert "QLoRA (nf4), ckpt" in table and "16 (fits)" in table


@pytest.mark.parametrize("name", ["helpsteer2", "help10k", "psy5k_help5k"])
@pytest.mark.parametrize("size", ["llama-3.2-3b-instruct", "llama-3.1-8b-instruct"])
def test_ablation_recipes_estimate_like_the_full_one(monkeypatch, size, name):
    monkeypatch.chdir(ROOT)
    full = estimate_recipe(f"recipes/{size}/reward/config_full.yaml")
    est = estimate_recipe(f"recipes/{size}/reward/config_{name}.yaml")
    assert est.fits and est.total == full.total  # only the data differs
