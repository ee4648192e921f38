"""`psycopref estimate RECIPE --costs`: judge dollars per protocol, pool generation, and training GPU-hours
computed from a recipe and an inputs file (a fixture here, so the numbers can be checked by hand)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from hub_tools.cli import main
from hub_tools.config import RecipeError, load_any
from hub_tools.estimate.costs import dataset_lines, load_inputs, recipe_lines, training_lines
from hub_tools.estimate.memory import estimate

ROOT = Path(__file__).resolve().parents[2]
PAPER = ROOT / "recipes/psycopref/dataset/config_paper.yaml"
RM_8B = ROOT / "recipes/llama-3.1-8b-instruct/reward/config_full.yaml"
INPUTS = {
    "build": {"speeches": 1000, "test_speeches": 100, "train_pairs": 2000, "basis": "test"},
    "tokens": {"prompt": 100, "answer": 300, "basis": "test"},
    "judge": {"per_principle": {"prompt": 10000, "completion": 2000, "basis": "test"},
              "all_principles_compact": {"prompt": 2000, "completion": 1000, "basis": "test"}},
    "gpus": [{"name": "A100", "match": ["A100"], "peak_tflops": 300, "usd_per_hour": 2.0, "basis": "test"},
             {"name": "consumer", "match": ["24 GB"], "peak_tflops": 100, "usd_per_hour": 0.5, "basis": "test"}],
    "training": {"mfu": {"full": 0.5, "lora": 0.25, "qlora": 0.25, "scoring": 0.5}, "basis": "test"},
    "serving": {"default": {"tokens_per_s": 1000, "gpu": "A100", "basis": "test"},
                "models": {"meta-llama/Llama-3.1-70B-Instruct": {"tokens_per_s": 500, "gpus": 4, "gpu": "A100", "basis": "t"}}},
    "api_prices": {"gpt-4o": {"prompt_per_1m": 2.5, "completion_per_1m": 10.0, "basis": "test"}},
}


@pytest.fixture
def inputs(tmp_path):
    path = tmp_path / "measured.yaml"
    path.write_text(yaml.safe_dump(INPUTS))
    return path


def test_judge_costs_per_protocol_and_only_the_recipes_in_the_total(inputs):
    recipe = load_any(PAPER)
    lines = dataset_lines("paper", recipe, load_inputs(inputs))
    judge = {(line.item.split(", ")[1].removesuffix(" (recipe)"), line.item.endswith("Batch API")): line for line in lines
             if line.item.startswith("judge")}
    online = 1000 * (10000 * 2.5 + 2000 * 10.0) / 1e6  # 1,000 speeches at the recipe's GPT-4o prices: $45
    assert judge[("per_principle", False)].usd == pytest.approx(online)
    assert judge[("per_principle", True)].usd == pytest.approx(online * recipe.judge.prices.batch_discount)
    assert judge[("all_principles_compact", False)].usd == pytest.approx(1000 * (2000 * 2.5 + 1000 * 10.0) / 1e6)
    assert [k for k, line in judge.items() if line.counted] == [("per_principle", False)]  # the recipe's protocol
    recipe.judge.mode, recipe.judge.batch = "all_principles", True
    lines = dataset_lines("paper", recipe, load_inputs(inputs), speeches=10)
    assert [line.item for line in lines if line.item.startswith("judge") and line.counted] == \
        ["judge gpt-4o, all_principles_compact (recipe), Batch API"]


def test_pool_generation_splits_the_answers_over_api_and_self_hosted_members(inputs):
    recipe = load_any(PAPER)
    pool = recipe.generate.pool
    share = 1000 * 4 / len(pool)  # every member answers its share of 4 answers per speech
    lines = dataset_lines("paper", recipe, load_inputs(inputs))
    api, hosted = lines[0], lines[1]
    n_api = sum(m.model == "gpt-4o" for m in pool)
    assert api.usd == pytest.approx(n_api * share * (100 * 2.5 + 300 * 10.0) / 1e6)
    big = sum(m.model == "meta-llama/Llama-3.1-70B-Instruct" for m in pool)
    others = len(pool) - n_api - big
    gpu_hours = share * 300 / 3600 * (others / 1000 + big * 4 / 500)
    assert hosted.gpu_hours == pytest.approx(gpu_hours) and hosted.usd == pytest.approx(2.0 * gpu_hours)


def test_training_gpu_hours_are_tokens_over_throughput(inputs):
    recipe = load_any(RM_8B)
    n = estimate(recipe.memory_plan()).params
    (line,) = training_lines("rm", recipe, load_inputs(inputs))
    pairs = 2000 * (1 - recipe.data.dev_fraction)
    tokens = pairs * recipe.training.num_train_epochs * 2 * (100 + 300)
    speed = 0.5 * 300e12 / (8 * n)  # full fine-tuning with activation checkpointing: 6N + 2N FLOPs per token
    assert line.gpu_hours == pytest.approx(tokens / speed / 3600)
    assert line.hours == pytest.approx(line.gpu_hours / recipe.hardware.gpus) and line.usd == pytest.approx(2 * line.gpu_hours)
    data = INPUTS | {"training": INPUTS["training"] | {"tokens_per_s": {"llama-3.1-8b-instruct/reward/config_full.yaml": 1000.0}}}
    measured = Path(inputs).with_name("measured2.yaml")
    measured.write_text(yaml.safe_dump(data))
    (line,) = recipe_lines(RM_8B, load_inputs(measured))  # a measured throughput replaces the MFU estimate
    assert line.gpu_hours == pytest.approx(tokens / 1000 / 3600)


def test_dpo_iter_samples_at_the_serving_throughput_scaled_to_its_gpu(inputs):
    """Full DPO-Iter samples on the main process of 8 A100s (all held); the QLoRA one on its 24 GB card, whose
    peak FLOP/s is a third of the serving table's A100: three times the hours for the same answers."""
    base = "recipes/llama-3.1-8b-instruct/dpo-iter/config_{}.yaml"
    full, qlora = (load_any(ROOT / base.format(v)) for v in ("full", "qlora"))
    sampling = {v: training_lines(v, r, load_inputs(inputs))[0] for v, r in (("full", full), ("qlora", qlora))}
    it = full.iter
    answers = it.rounds * (it.speeches_per_round * it.generation.samples + it.dev_limit)
    wall = answers * 300 / 1000 / 3600  # answers capped by the inputs' 300-token answer, 1,000 tokens/s on A100
    assert sampling["full"].hours == pytest.approx(wall) and sampling["full"].gpu_hours == pytest.approx(8 * wall)
    assert sampling["full"].usd == pytest.approx(8 * wall * 2.0)
    assert sampling["qlora"].hours == pytest.approx(3 * wall)  # 100 vs 300 peak TFLOP/s
    assert sampling["qlora"].gpu_hours == pytest.approx(3 * wall) and sampling["qlora"].usd == pytest.approx(3 * wall * 0.5)


def test_release_recipe_costs_every_artifact_from_the_cli(inputs, capsys):
    assert main(["estimate", str(ROOT / "recipes/psycopref/release/config_full.yaml"), "--costs", "--inputs", str(inputs)]) == 0
    out = capsys.readouterr().out
    for name in ("dataset", "reward-8b", "reward-3b-qlora", "dpo-8b", "dpo-iter-3b", "dpo-iter-8b-qlora"):
        assert f"| {name} |" in out
    assert "sampling (main process" in out and "| **total** |" in out and "Inputs (" in out


def test_costs_need_nothing_from_the_working_directory(tmp_path, monkeypatch, capsys):
    """From a folder without the checkout (as after `pip install psycopref`): the recipes named `recipes/...`
    and the cost inputs are read from the installed package."""
    monkeypatch.chdir(tmp_path)
    assert main(["estimate", "recipes/psycopref/release/config_full.yaml", "--costs"]) == 0
    out = capsys.readouterr().out
    assert "| reward-8b |" in out and "| **total** |" in out
    assert f"Inputs ({Path('hub_tools') / 'estimate' / 'data' / 'measured.yaml'}" in out.replace(str(ROOT) + "/", "")
    assert load_inputs() == load_inputs(ROOT / "hub_tools/estimate/data/measured.yaml")


def test_bad_inputs_are_named(inputs, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(INPUTS | {"gpus": [INPUTS["gpus"][1]]}))
    with pytest.raises(RecipeError, match="hardware.device 'NVIDIA A100 80GB"):
        recipe_lines(RM_8B, load_inputs(bad))
    bad.write_text(yaml.safe_dump(INPUTS | {"tokenz": {}}))
    with pytest.raises(RecipeError, match="tokenz: unknown key"):
        load_inputs(bad)


def test_helpsteer2_only_recipes_count_their_helpsteer2_pairs_alone(inputs):
    """max_train_pairs 0 means no PsyCoPref pair (not all of them); count 'all' reads the inputs' usable HelpSteer2 pairs."""
    base = str(ROOT / "recipes/llama-3.2-3b-instruct/reward/config_{}.yaml")
    data = INPUTS | {"build": INPUTS["build"] | {"helpsteer2_pairs": 700}}
    with_hs = Path(inputs).with_name("hs.yaml")
    with_hs.write_text(yaml.safe_dump(data))
    (help10k,) = recipe_lines(base.format("help10k"), load_inputs(inputs))
    (full,) = recipe_lines(base.format("full"), load_inputs(inputs))
    (alone,) = recipe_lines(base.format("helpsteer2"), load_inputs(with_hs))
    assert help10k.quantity.startswith("10,000 pairs") and alone.quantity.startswith("700 pairs")
    assert full.quantity.startswith("1,800 pairs")  # 2,000 train pairs less the 10% dev speeches
    with pytest.raises(RecipeError, match="build.helpsteer2_pairs"):
        recipe_lines(base.format("helpsteer2"), load_inputs(inputs))


def test_eval_recipes_cost_their_answers_and_the_pairwise_judge(inputs, capsys):
    from hub_tools.paper.prompts import pairwise_template

    path = ROOT / "recipes/llama-3.1-8b-instruct/eval/config_paper.yaml"
    recipe = load_any(path)
    lines = recipe_lines(path, load_inputs(inputs))
    reference, *policies, judge = lines
    assert reference.usd == pytest.approx(100 * (100 * 2.5 + 300 * 10.0) / 1e6)  # 100 test speeches, gpt-4o list price
    assert len(policies) == 4 and all(p.gpu_hours == pytest.approx(200 * 300 / 1000 / 3600) for p in policies)
    calls = 2 * 100 * 2 * 4  # both orders x speeches x settings x policies
    prompt = len(pairwise_template(False)) / 4 + 100 + 2 * 300
    assert judge.usd == pytest.approx(calls * recipe.judge.prices.cost(prompt, 8))
    assert main(["estimate", str(path), str(ROOT / "recipes/llama-3.2-3b-instruct/eval/config_paper.yaml"), "--costs",
                 "--inputs", str(inputs)]) == 0
    assert "llama-3.2-3b-instruct/paper | judge gpt-4o, pairwise" in capsys.readouterr().out
