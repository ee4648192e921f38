"""The reward recipe: TRL's RewardConfig and peft's LoraConfig as recipe sections, overrides, errors that
name the key and the file, the default repo name, and the CLI commands' one-line errors."""

from __future__ import annotations

import pytest
import yaml

from hub_tools.cli import main
from hub_tools.config import RecipeError, load, load_any, parse_overrides, validate
from hub_tools.reward.config import RewardRecipe

trl = pytest.importorskip("trl")


def _write(tmp_path, data, name="r.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return path


def test_training_is_trls_reward_config(tmp_path):
    path = _write(tmp_path, {"training": {"learning_rate": 9e-6, "num_train_epochs": 2, "use_cpu": True}})
    recipe = load(RewardRecipe, path, parse_overrides(["--training.learning_rate", "1e-5", "--model.lora.r=4"]))
    args = recipe.reward_config()
    assert isinstance(args, trl.RewardConfig)
    assert args.learning_rate == 1e-5 and args.num_train_epochs == 2  # the CLI flag beats the YAML
    assert args.output_dir == "runs/reward/trainer"  # <work_dir>/trainer unless the recipe says otherwise
    assert recipe.model.lora.r == 4 and recipe.model.lora.build().task_type == "SEQ_CLS"
    described = RewardRecipe.model_fields["training"].annotation.model_fields
    assert described["learning_rate"].description == "The initial learning rate for AdamW."  # TRL's own help


def test_unknown_and_bad_keys_name_the_file(tmp_path):
    path = _write(tmp_path, {"training": {"learning_ratee": 1}, "model": {"lora": {"rank": 4}}})
    with pytest.raises(RecipeError) as err:
        load(RewardRecipe, path)
    assert str(path) in str(err.value)
    assert "training.learning_ratee: unknown key" in str(err.value) and "model.lora.rank: unknown key" in str(err.value)
    with pytest.raises(RecipeError, match="training.num_train_epochs"):
        validate(RewardRecipe, {"training": {"num_train_epochs": "two"}})
    with pytest.raises(RecipeError, match="model.quantization: QLoRA trains LoRA adapters"):
        validate(RewardRecipe, {"model": {"quantization": "nf4", "dtype": "bfloat16"}})
    with pytest.raises(RecipeError, match="training.push_to_hub"):
        validate(RewardRecipe, {"training": {"push_to_hub": True}})
    with pytest.raises(RecipeError, match="exactly one of count and ratio"):
        validate(RewardRecipe, {"data": {"helpsteer2": {"path": "x.gz", "count": 1, "ratio": 1.0}}})


def test_trainer_checks_become_recipe_errors():
    recipe = validate(RewardRecipe, {"training": {"fp16": True, "bf16": True}})
    with pytest.raises(RecipeError, match="^training: "):
        recipe.reward_config()


def test_repo_names_and_effective_batch():
    base = {"model": {"name_or_path": "meta-llama/Llama-3.2-3B-Instruct"},
            "training": {"per_device_train_batch_size": 8, "gradient_accumulation_steps": 2}, "hardware": {"gpus": 8}}
    full = validate(RewardRecipe, base)
    assert full.repo_id == "Psychotherapy-LLM/PsyCoPref-Llama-3.2-3B-Instruct-Reward" and full.effective_batch_size == 128
    qlora = validate(RewardRecipe, {**base, "model": {**base["model"], "quantization": "nf4", "dtype": "bfloat16",
                                                        "lora": {"r": 8}}, "push": {"org": "me"}})
    assert qlora.repo_id == "me/PsyCoPref-Llama-3.2-3B-Instruct-Reward-QLoRA" and qlora.model.method == "qlora"
    assert validate(RewardRecipe, {"push": {"repo_id": "a/b"}}).repo_id == "a/b"
    assert validate(RewardRecipe, {}).repo_id == "Psychotherapy-LLM/PsyCoPref-SmolLM2-135M-Instruct-Reward"


def test_resolved_recipe_roundtrips_with_every_default(tmp_path):
    from hub_tools.config import save_resolved

    recipe = validate(RewardRecipe, {"training": {"learning_rate": 2e-5}, "model": {"lora": {"r": 8}}})
    out = save_resolved(recipe, tmp_path / "resolved.yaml")
    again = load(RewardRecipe, out)
    assert again == recipe
    written = yaml.safe_load(out.read_text())
    assert written["training"]["adam_beta2"] == 0.999 and written["model"]["lora"]["lora_alpha"] == 8


def test_load_any_reads_the_method_folder(tmp_path):
    reward = tmp_path / "recipes" / "m" / "reward"
    reward.mkdir(parents=True)
    assert isinstance(load_any(_write(reward, {"seed": 3}, "config_x.yaml")), RewardRecipe)
    elsewhere = _write(tmp_path, {"seed": 3}, "config_y.yaml")
    with pytest.raises(RecipeError, match="cannot tell which kind of recipe"):
        load_any(elsewhere)
    assert load_any(elsewhere, kind="reward").seed == 3


def test_cli_errors_are_one_line(tmp_path, capsys):
    bad = _write(tmp_path, {"work_dir": str(tmp_path / "w"), "training": {"nope": 1}})
    assert main(["reward", "train", str(bad)]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "training.nope: unknown key" in err and "Traceback" not in err
    ok = _write(tmp_path, {"work_dir": str(tmp_path / "w")}, "ok.yaml")
    assert main(["reward", "eval", str(ok)]) == 2
    assert "psycopref reward train" in capsys.readouterr().err  # nothing trained yet: says what to run
    assert main(["reward", "push", str(ok), "--hub-dir", str(tmp_path / "hub")]) == 2
