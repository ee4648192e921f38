"""Memory of DPO: a full run holds a frozen bf16 reference copy of the policy (sharded like the weights),
a LoRA run none (its reference is the base with the adapters switched off); causal-LM logits counted."""

from __future__ import annotations

import pytest
from peft import LoraConfig

from hub_tools.estimate.memory import NF4_BYTES, TrainingPlan, estimate

pytest.importorskip("torch")


def test_full_dpo_adds_a_bf16_reference_copy(tiny_base):
    plain = estimate(TrainingPlan(model=str(tiny_base), head="causal_lm", dtype="float32"))
    dpo = estimate(TrainingPlan(model=str(tiny_base), head="causal_lm", dtype="float32", reference_model=True))
    assert plain.lines["reference"] == 0
    assert dpo.lines["reference"] == dpo.params * 2  # bf16, frozen: no gradients, no optimizer states
    assert dpo.total - plain.total == dpo.params * 2
    sharded = estimate(TrainingPlan(model=str(tiny_base), head="causal_lm", dtype="float32", reference_model=True,
                                    devices=8, sharding="zero3"))
    assert sharded.lines["reference"] == pytest.approx(dpo.params * 2 / 8)


def test_policy_recipes_estimate_their_reference(tiny_base, pairs_repo, tmp_path):
    from hub_tools.config import validate
    from hub_tools.policy.config import DPORecipe

    base = {"work_dir": str(tmp_path), "model": {"name_or_path": str(tiny_base), "hub_id": "test-org/tiny"},
            "data": {"path": str(pairs_repo)}, "training": {"per_device_train_batch_size": 2, "max_length": 64}}
    full = validate(DPORecipe, base).memory_plan()
    assert full.reference_model and full.head == "causal_lm" and full.sequences == 4 and full.seq_len == 64
    lora = validate(DPORecipe, base | {"model": {**base["model"], "lora": {"r": 4, "target_modules": ["q_proj"]}}})
    assert not lora.memory_plan().reference_model
    pre = validate(DPORecipe, base | {"training": {**base["training"], "precompute_ref_log_probs": True}})
    assert not pre.memory_plan().reference_model  # log-probs computed once up front: no reference held


def test_dpo_iter_holds_the_initial_policy_only_when_later_rounds_refer_to_it(tiny_base, pairs_repo, tmp_path):
    from hub_tools.config import validate
    from hub_tools.policy.config import DPOIterRecipe

    lora = {"name_or_path": str(tiny_base), "hub_id": "test-org/tiny", "lora": {"r": 4, "target_modules": ["q_proj"]}}

    def plan(**iter_):
        return validate(DPOIterRecipe, {"work_dir": str(tmp_path), "model": lora, "data": {"path": str(pairs_repo)},
                                        "iter": {"reward_model": str(tiny_base), **iter_}}).memory_plan()

    assert plan(reference="initial", rounds=3).reference_model  # rounds 2-3 load the initial policy beside theirs
    assert not plan(reference="initial", rounds=1).reference_model  # one round: its start is the initial policy
    assert not plan(reference="previous", rounds=3).reference_model  # adapters switched off


def test_a_quantised_reference_copy_is_counted_at_4_bit(tiny_base):
    def nf4(**kw):
        return estimate(TrainingPlan(model=str(tiny_base), head="causal_lm", dtype="bfloat16", quantization="nf4",
                                     lora=LoraConfig(r=4, target_modules=["q_proj", "v_proj"]), **kw))

    plain, held = nf4(), nf4(reference_model=True)
    assert 0 < held.quantized < held.params
    # loaded like the policy: its Linear layers in NF4, the rest (embeddings, norms, adapters) in bf16
    assert held.lines["reference"] == pytest.approx(held.quantized * NF4_BYTES + (held.params - held.quantized) * 2)
    assert held.lines["reference"] < held.params * 2 and held.total - plain.total == held.lines["reference"]
