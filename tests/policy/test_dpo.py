"""Offline DPO on a tiny random Llama: the run completes, the policy learns the preferred answers, the
folder loads as a plain causal LM with a card, and the win rates of an evaluation go into the card."""

from __future__ import annotations

import json
import math

import pytest
import yaml

from hub_tools.config import RecipeError, validate
from hub_tools.policy.config import DPORecipe

from published import check_chat_template_everywhere, files_naming_machine_paths, machine_roots

# `published`: loads, scores or generates with a published folder; the lowest-versions CI job runs these.
pytestmark = pytest.mark.published

torch = pytest.importorskip("torch")
pytest.importorskip("trl")

CPU = {"use_cpu": True, "bf16": False, "activation_checkpointing": False, "report_to": "none", "save_strategy": "no",
       "eval_strategy": "no", "logging_steps": 1, "dataloader_num_workers": 0, "disable_tqdm": True, "seed": 0,
       "lr_scheduler_type": "constant", "max_length": 128}


def policy_recipe(tiny_base, pairs_repo, work, **sections) -> dict:
    data = {"work_dir": str(work),
            "model": {"name_or_path": str(tiny_base), "hub_id": "test-org/tiny-llama", "dtype": "float32",
                      "save_dtype": "float32"},
            "data": {"path": str(pairs_repo), "config": "pairs", "dev_fraction": 0.0},
            "training": {**CPU, "max_steps": 12, "per_device_train_batch_size": 8, "learning_rate": 5e-3},
            "push": {"hub_dir": str(work.parent / "hub")}}
    for key, value in sections.items():
        data[key] = {**data.get(key, {}), **value} if isinstance(value, dict) else value
    return data


@pytest.fixture(scope="module")
def trained(tiny_base, pairs_repo, tmp_path_factory):
    from hub_tools.policy.train import train_dpo

    recipe = validate(DPORecipe, policy_recipe(tiny_base, pairs_repo, tmp_path_factory.mktemp("dpo") / "work"))
    return recipe, train_dpo(recipe)


def test_dpo_learns_the_preferred_answers(trained):
    recipe, folder = trained
    report = json.loads((folder / "train_results.json").read_text())
    assert report["global_step"] == 12 and report["beta"] == 0.1 and report["train_pairs"] == 48
    losses = report["logged_losses"]
    assert losses[0] == pytest.approx(math.log(2), abs=0.02)  # policy == reference at the start
    assert losses[-1] < 0.5 * math.log(2)  # separable pairs: the policy moved toward the chosen answers
    assert report["reward_margins"][-1] > report["reward_margins"][0]


def test_policy_folder_loads_as_a_plain_causal_lm_and_answers(trained):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    recipe, folder = trained
    names = {p.name for p in folder.iterdir()}
    assert {"model.safetensors", "config.json", "tokenizer.json", "README.md", "recipe.yaml", "train_results.json"} <= names
    model = AutoModelForCausalLM.from_pretrained(folder)
    tok = AutoTokenizer.from_pretrained(folder)
    ids = tok.apply_chat_template([{"role": "user", "content": "i feel sad"}], add_generation_prompt=True,
                                  return_tensors="pt", return_dict=True)
    out = model.generate(**ids, max_new_tokens=3, do_sample=False, pad_token_id=tok.pad_token_id)
    assert out.shape[1] == ids["input_ids"].shape[1] + 3
    published = yaml.safe_load((folder / "recipe.yaml").read_text())
    assert "work_dir" not in published and "output_dir" not in published["training"]


def test_the_chat_template_is_in_tokenizer_config_json_too(trained, tmp_path):
    check_chat_template_everywhere(trained[1], tmp_path / "tokenizer-only")


def test_no_published_file_names_a_path_of_this_machine(trained, tiny_base, pairs_repo):
    recipe, folder = trained
    assert files_naming_machine_paths(folder, machine_roots(tiny_base, pairs_repo, recipe.work_dir)) == []
    published = yaml.safe_load((folder / "recipe.yaml").read_text())
    assert published["data"]["path"] == "test-org/TinyPref" and published["push"]["hub_dir"] is None


def test_card_metadata_and_training_table(trained):
    from huggingface_hub import ModelCard

    recipe, folder = trained
    card = ModelCard.load(folder / "README.md")
    data = card.data.to_dict()
    assert data["pipeline_tag"] == "text-generation" and data["library_name"] == "transformers"
    assert data["base_model"] == "test-org/tiny-llama" and data["datasets"] == ["test-org/TinyPref"]
    assert {"psycopref", "dpo"} <= set(data["tags"]) and "iterative-dpo" not in data["tags"]
    assert "model-index" not in data  # not evaluated yet: no results to state
    text = card.text
    assert "Demo build" in text and "Not evaluated yet" in text and "β = 0.1" in text
    assert "None" not in text and "huggingface.co/None" not in text
    assert "**not** for unsupervised use with clients" in text


def test_win_rates_go_into_the_card(trained):
    from huggingface_hub import ModelCard

    from hub_tools.policy.artifact import attach_winrate

    recipe, folder = trained
    setting = {"n_speeches": 5, "n_missing": 0, "n": 5, "win_rate": 0.7, "ci": [0.4, 1.0], "wins": 3, "ties": 1,
               "losses": 1, "swap_consistency": 0.8, "lc_win_rate": 0.65, "lc_ci": [0.3, 0.9], "length_ratio": 1.2,
               "topics": {"Relationships": {"n": 5, "win_rate": 0.7, "ci": [0.4, 1.0]}}}
    results = {"policies": {"dpo": {"settings": {"free": setting, "length_matched": {**setting, "win_rate": 0.5}}}},
               "reference": {"name": "reference-model"}, "judge": {"model": "judge-model"},
               "settings": ["free", "length_matched"]}
    attach_winrate(recipe, results, "dpo", folder)
    card = ModelCard.load(folder / "README.md")
    evals = card.data.eval_results
    assert [e.metric_value for e in evals] == [0.7, 0.5] and evals[0].metric_type == "win_rate"  # fractions, as the reward's
    assert "reference-model" in card.text and "70.0" in card.text and "40.0–100.0" in card.text
    assert (folder / "figures" / "winrate_topics.png").is_file() and "figures/winrate_topics.png" in card.text
    before = (folder / "README.md").read_bytes()
    attach_winrate(recipe, results, "dpo", folder)
    assert (folder / "README.md").read_bytes() == before  # same inputs, same card


def test_lora_dpo_merges_into_the_base_and_keeps_the_adapter(tiny_base, pairs_repo, tmp_path):
    from hub_tools.policy.train import train_dpo

    lora = {"r": 4, "lora_alpha": 8, "lora_dropout": 0.0, "target_modules": ["q_proj", "v_proj"]}
    recipe = validate(DPORecipe, policy_recipe(tiny_base, pairs_repo, tmp_path / "work", model={"lora": lora},
                                               training={"max_steps": 3}))
    folder = train_dpo(recipe)
    adapter = json.loads((folder / "adapter" / "adapter_config.json").read_text())
    assert adapter["base_model_name_or_path"] == "test-org/tiny-llama" and adapter["task_type"] == "CAUSAL_LM"
    assert recipe.repo_id == "Psychotherapy-LLM/PsyCoPref-tiny-llama-DPO-LoRA"
    from transformers import AutoModelForCausalLM

    merged = AutoModelForCausalLM.from_pretrained(folder)
    base = AutoModelForCausalLM.from_pretrained(tiny_base)
    w = "model.layers.0.self_attn.q_proj.weight"
    assert not torch.equal(merged.state_dict()[w], base.state_dict()[w])  # the adapter is in the weights


def test_recipe_errors_are_named(tiny_base, pairs_repo, tmp_path):
    with pytest.raises(RecipeError, match="training.nope: unknown key"):
        validate(DPORecipe, policy_recipe(tiny_base, pairs_repo, tmp_path, training={"nope": 1}))
    with pytest.raises(RecipeError, match="training.push_to_hub"):
        validate(DPORecipe, policy_recipe(tiny_base, pairs_repo, tmp_path, training={"push_to_hub": True}))
    local = validate(DPORecipe, policy_recipe(tiny_base, pairs_repo, tmp_path, model={"hub_id": None}))
    with pytest.raises(RecipeError, match="model.hub_id"):
        _ = local.repo_id
