"""Training on the tiny Llama: the loss falls on separable pairs, the folder is a plain transformers repo
whose card snippet scores a conversation, evaluation fills the card, the push lands in the local mirror;
QLoRA (4-bit NF4 + LoRA) runs on CPU."""

from __future__ import annotations

import json
import re
import shutil

import pytest
import yaml

from hub_tools.config import RecipeError, validate

from published import check_chat_template_everywhere, files_naming_machine_paths, machine_roots
from reward_helpers import recipe_data

torch = pytest.importorskip("torch")
pytest.importorskip("trl")

from hub_tools.reward.config import RewardRecipe  # noqa: E402

# `published`: loads, scores or generates with a published folder; the lowest-versions CI job runs these.
pytestmark = pytest.mark.published


@pytest.fixture(scope="module")
def trained(tiny_base, pairs_repo, tmp_path_factory):
    """One full fine-tuning run, evaluated, shared by the tests below."""
    from hub_tools.reward.evaluate import evaluate_reward
    from hub_tools.reward.train import train_reward

    work = tmp_path_factory.mktemp("run") / "work"
    ranker = {"ranker": {"endpoint": {"backend": "fake-ranker", "model": "fake-ranker-1"}, "concurrency": 2}}
    recipe = validate(RewardRecipe, recipe_data(tiny_base, pairs_repo, work, eval=ranker))
    folder = train_reward(recipe)
    untrained_card = (folder / "README.md").read_text()
    results = evaluate_reward(recipe)
    return recipe, folder, untrained_card, results


def test_loss_falls_and_the_folder_is_a_reward_model_repo(trained):
    recipe, folder, _, _ = trained
    report = json.loads((folder / "train_results.json").read_text())
    losses = report["logged_losses"]
    assert report["global_step"] == 15 and len(losses) == 15
    assert sum(losses[-3:]) / 3 < 0.5 * sum(losses[:3]) / 3, losses  # separable pairs: the BT loss falls
    config = json.loads((folder / "config.json").read_text())
    assert config["architectures"] == ["LlamaForSequenceClassification"]
    assert config["id2label"] == {"0": "reward"} and config["pad_token_id"] == 0
    assert (folder / "model.safetensors").is_file() and not (folder / "adapter").exists()
    assert "chat_template" in (folder / "tokenizer_config.json").read_text() or (folder / "chat_template.jinja").is_file()
    published = yaml.safe_load((folder / "recipe.yaml").read_text())
    assert "work_dir" not in published and "output_dir" not in published["training"]
    assert published["training"]["learning_rate"] == 5e-3 and "warmup_steps" in published["training"]  # defaults written out
    assert report["train_pairs"] + report["dev_pairs"] == 48 and report["dev_pairs"] > 0
    assert report["effective_batch_size"] == 8


def test_the_chat_template_is_in_tokenizer_config_json_too(trained, tmp_path):
    check_chat_template_everywhere(trained[1], tmp_path / "tokenizer-only")


def test_no_published_file_names_a_path_of_this_machine(trained, tiny_base, pairs_repo):
    recipe, folder, _, _ = trained
    assert files_naming_machine_paths(folder, machine_roots(tiny_base, pairs_repo, recipe.work_dir)) == []
    published = yaml.safe_load((folder / "recipe.yaml").read_text())
    assert published["model"]["name_or_path"] == "test-org/tiny-llama" and published["data"]["path"] == "test-org/TinyPref"
    assert published["push"]["hub_dir"] is None  # reproduced elsewhere, it publishes to the Hub


def test_evaluation_on_separable_pairs(trained):
    _, folder, _, results = trained
    test = results["test"]
    assert test["n_pairs"] == 20
    assert test["accuracy"] >= 0.9 and test["roc_auc"] >= 0.9
    assert 0 <= test["ece"] <= 1 and 0 <= test["brier"] <= 0.25
    assert results["calibrated"]["dev_pairs"] > 0 and results["calibrated"]["temperature"] > 0
    assert set(results["per_topic"]) == {"Mental Issues", "Relationships"}
    assert sum(t["n"] for t in results["per_topic"].values()) == 20
    assert sum(b["count"] for b in results["reliability"]["raw"]) == 40  # both orders
    assert results["ranker"]["accuracy"] == 1.0 and results["ranker"]["n_pairs"] == 20  # the fake ranker reads content
    assert json.loads((folder / "eval_results.json").read_text()) == results
    assert (folder / "figures" / "reliability.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_card_before_and_after_evaluation(trained):
    recipe, folder, untrained_card, results = trained
    assert "Not evaluated yet" in untrained_card and "model-index" not in untrained_card
    card = (folder / "README.md").read_text()
    meta = yaml.safe_load(card.split("---")[1])
    assert meta["pipeline_tag"] == "text-classification" and meta["library_name"] == "transformers"
    assert meta["base_model"] == "test-org/tiny-llama" and meta["datasets"] == ["test-org/TinyPref"]
    assert {"psycopref", "reward-model"} <= set(meta["tags"]) and meta["license"] == "cc-by-nc-4.0"
    report = json.loads((folder / "train_results.json").read_text())  # the licence comes from the dataset's card:
    assert report["licenses"] == {"dataset": "cc-by-nc-4.0", "base_model": "apache-2.0"}
    metrics = {m["type"]: m["value"] for m in meta["model-index"][0]["results"][0]["metrics"]}
    assert metrics["accuracy"] == round(results["test"]["accuracy"], 4) and set(metrics) == {"accuracy", "roc_auc", "ece", "brier_score"}
    assert "figures/reliability.png" in card and "Demo build" in card and "`fake-ranker-1`" in card
    assert "None" not in card and "](https://huggingface.co/None)" not in card
    assert recipe.repo_id == "Psychotherapy-LLM/PsyCoPref-tiny-llama-Reward" and recipe.repo_id in card


def test_card_is_rebuilt_byte_for_byte(trained):
    from hub_tools.reward.card import write_card

    recipe, folder, _, _ = trained
    before = {p: (folder / p).read_bytes() for p in ("README.md", "figures/reliability.png")}
    write_card(recipe, folder, recipe.repo_id)
    assert {p: (folder / p).read_bytes() for p in before} == before


def test_usage_snippet_scores_a_conversation_from_the_local_hub(trained, capsys):
    from hub_tools.reward.artifact import push_reward
    from hub_tools.reward.score import RewardScorer

    recipe, folder, _, _ = trained
    result = push_reward(recipe)
    assert result.changed and result.url.endswith("models/Psychotherapy-LLM/PsyCoPref-tiny-llama-Reward")
    assert not push_reward(recipe).changed  # unchanged folder: no new version
    snippet = re.search(r"```python\n(.*?)```", (folder / "README.md").read_text(), re.S).group(1)
    assert f'repo = "{recipe.repo_id}"' in snippet
    exec(compile(snippet.replace(recipe.repo_id, result.url), "card-snippet", "exec"), {})  # as written, local repo
    out = capsys.readouterr().out.splitlines()
    rewards = json.loads(out[-2])
    prob = float(out[-1].split("=")[1])
    scorer = RewardScorer.from_pretrained(result.url)
    speech = re.search(r'speech = "(.*?)"', snippet).group(1)
    answers = re.findall(r'^    "(.*?)",$', snippet, re.M)
    expected = scorer.score([[{"role": "user", "content": speech}, {"role": "assistant", "content": a}] for a in answers])
    assert rewards == pytest.approx(expected.tolist(), abs=1e-4)  # padded batch = scorer = training's tokenisation
    assert prob == pytest.approx(float(torch.sigmoid(torch.tensor(expected[0] - expected[1]))), abs=1e-4)


def test_eval_needs_a_trained_folder(tiny_base, pairs_repo, tmp_path):
    from hub_tools.errors import MissingInput
    from hub_tools.reward.evaluate import evaluate_reward

    recipe = validate(RewardRecipe, recipe_data(tiny_base, pairs_repo, tmp_path / "empty"))
    with pytest.raises(MissingInput, match="psycopref reward train"):
        evaluate_reward(recipe)


def test_local_base_needs_its_hub_id(tiny_base, pairs_repo, tmp_path):
    from hub_tools.reward.train import train_reward

    data = recipe_data(tiny_base, pairs_repo, tmp_path / "w")
    data["model"].pop("hub_id")
    with pytest.raises(RecipeError, match="model.hub_id"):
        train_reward(validate(RewardRecipe, data))


def test_qlora_nf4_on_cpu(tiny_base, pairs_repo, tmp_path):
    """4-bit NF4 base (bitsandbytes' CPU backend) + LoRA via peft; the adapter is merged when saved."""
    pytest.importorskip("bitsandbytes", reason="QLoRA needs bitsandbytes (the `train` extra)")
    from hub_tools.reward.score import RewardScorer
    from hub_tools.reward.train import train_reward

    lora = {"r": 4, "lora_alpha": 8, "lora_dropout": 0.0, "target_modules": "all-linear", "task_type": "SEQ_CLS"}
    data = recipe_data(tiny_base, pairs_repo, tmp_path / "w", model={"quantization": "nf4", "lora": lora,
                                                                       "dtype": "bfloat16"},
                       training={"max_steps": 4, "learning_rate": 1e-2})
    recipe = validate(RewardRecipe, data)
    from bitsandbytes.nn import Linear4bit

    from hub_tools.reward.modeling import load_reward_model

    loaded = load_reward_model(recipe, str(tiny_base), pad_token_id=0)
    assert isinstance(loaded.model.layers[0].self_attn.q_proj, Linear4bit)  # what training gets: a 4-bit base
    assert loaded.model.layers[0].self_attn.q_proj.weight.quant_type == "nf4"
    folder = train_reward(recipe)
    assert recipe.repo_id.endswith("-Reward-QLoRA")
    adapter = json.loads((folder / "adapter" / "adapter_config.json").read_text())
    assert adapter["base_model_name_or_path"] == "test-org/tiny-llama" and adapter["r"] == 4
    assert "modules_to_save" in json.dumps(adapter) or adapter["task_type"] == "SEQ_CLS"
    config = json.loads((folder / "config.json").read_text())
    assert "quantization_config" not in config  # merged into the unquantised base
    scores = RewardScorer.from_pretrained(folder).score([[{"role": "user", "content": "i feel sad"},
                                                          {"role": "assistant", "content": "i hear you"}]])
    assert scores.shape == (1,) and float(scores[0]) == float(scores[0])  # finite, not NaN
    shutil.rmtree(folder)


def test_pairs_longer_than_max_length_are_counted_per_split(tiny_base, pairs_repo, tmp_path):
    """TRL's RewardTrainer filters out (does not truncate) pairs with a side over max_length: the run says how many."""
    from transformers import AutoTokenizer

    from hub_tools.reward.train import train_reward
    from hub_tools.training.preference_data import load_pairs

    limit = 18
    recipe = validate(RewardRecipe, recipe_data(tiny_base, pairs_repo, tmp_path / "w",
                                                training={"max_steps": 1, "max_length": limit}))
    tok = AutoTokenizer.from_pretrained(str(tiny_base))
    pairs = load_pairs(recipe.data, recipe.seed)

    def too_long(ex) -> bool:
        return any(len(tok.apply_chat_template(ex["prompt"] + ex[side], tokenize=True, return_dict=True)["input_ids"])
                   > limit for side in ("chosen", "rejected"))

    expected = {split: sum(map(too_long, pairs[split])) for split in ("train", "dev")}
    assert 0 < expected["train"] < len(pairs["train"])  # the limit bites, but not on every pair
    folder = train_reward(recipe)
    report = json.loads((folder / "train_results.json").read_text())
    assert report["dropped_long_pairs"] == expected and report["max_length"] == limit
    card = (folder / "README.md").read_text()
    assert f"{limit} tokens (longer pairs are dropped: {expected['train']} train, {expected['dev']} dev)" in card
