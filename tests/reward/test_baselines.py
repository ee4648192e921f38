"""Other reward models on the same test pairs, and RewardBench-format data: a tiny random reward model with its
own chat template stands in for Skywork-Reward; RewardBench pairs are written as jsonl, parquet and a folder."""

from __future__ import annotations

import json
import random

import pytest
import yaml

from hub_tools.config import RecipeError, validate

from preference_data import CURT, SPEECH_WORDS, WARM
from reward_helpers import recipe_data

torch = pytest.importorskip("torch")
pytest.importorskip("trl")

from hub_tools.reward.config import RewardBenchSection, RewardRecipe  # noqa: E402
from hub_tools.reward.rewardbench import (  # noqa: E402
    EXAMPLE_COUNTS,
    RewardBenchError,
    load_rewardbench,
    rewardbench_metrics,
    section_scores,
)

OWN_TEMPLATE = ("{% for m in messages %}<system> {{ m['role'] }} : {{ m['content'] }} {% endfor %}")
# subset -> does the chosen answer hold the warm words (what the trained model prefers)?
BENCH = {"alpacaeval-easy": True, "mt-bench-hard": False, "donotanswer": True, "math-prm": True, "hep-python": False,
         "anthropic_helpful": True, "psy-extra": True}


def bench_rows(n: int = 3, seed: int = 5) -> list[dict]:
    rng = random.Random(seed)
    rows = []
    for subset, warm_chosen in BENCH.items():
        for _ in range(n):
            warm = " ".join(rng.choice(WARM) for _ in range(rng.randint(3, 8)))
            curt = " ".join(rng.choice(CURT) for _ in range(rng.randint(3, 8)))
            rows.append({"prompt": " ".join(rng.choice(SPEECH_WORDS) for _ in range(6)), "subset": subset,
                         "chosen": warm if warm_chosen else curt, "rejected": curt if warm_chosen else warm})
    return rows


def unbatched_margins(path, prompts, chosen, rejected):
    """r_chosen − r_rejected one conversation at a time, through plain transformers and the model's own template."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tok, model = AutoTokenizer.from_pretrained(str(path)), AutoModelForSequenceClassification.from_pretrained(str(path))

    def reward(prompt, answer):
        conv = prompt + answer
        ids = tok.apply_chat_template(conv, tokenize=True, return_dict=True, return_tensors="pt")
        with torch.no_grad():
            return float(model(input_ids=ids["input_ids"]).logits[0, 0])

    return [reward(p, c) - reward(p, r) for p, c, r in zip(prompts, chosen, rejected)]


def test_sections_weight_subsets_by_rewardbench_example_counts():
    acc = {"alpacaeval-easy": 1.0, "mt-bench-easy": 0.5, "math-prm": 0.9, "hep-python": 0.3, "donotanswer": 0.25}
    out = section_scores(acc)
    assert out["sections"]["Chat"] == pytest.approx(100 * (1.0 * 100 + 0.5 * 28) / 128)
    assert out["sections"]["Reasoning"] == pytest.approx(100 * (0.9 * 984 + 0.3 * 164) / (984 + 164))  # math upweighted
    assert out["sections"]["Safety"] == pytest.approx(25.0) and "Chat Hard" not in out["sections"]
    assert out["score"] == pytest.approx(sum(out["sections"].values()) / 3)
    prior = section_scores({**acc, "anthropic_helpful": 0.8, "shp": 0.6})
    assert prior["sections"]["Prior Sets"] == pytest.approx(70.0)
    assert prior["score"] == pytest.approx((sum(out["sections"].values()) + 0.5 * 70.0) / 3.5)  # half weight
    assert EXAMPLE_COUNTS["math-prm"] == 6 * EXAMPLE_COUNTS["hep-cpp"]


def test_rewardbench_accuracy_counts_a_tie_as_wrong():
    out = rewardbench_metrics([1.0, 0.0, -1.0, 2.0], ["math-prm", "math-prm", "hep-go", "odd"])
    assert out["subsets"]["math-prm"] == {"accuracy": 0.5, "n": 2} and out["subsets"]["hep-go"]["accuracy"] == 0.0
    assert out["unmapped_subsets"] == ["odd"] and out["n_pairs"] == 4


@pytest.mark.parametrize("kind", ["jsonl", "parquet", "disk"])
def test_rewardbench_data_from_a_file_or_a_folder(tmp_path, kind):
    from datasets import Dataset, DatasetDict

    rows = bench_rows(2)
    ds = Dataset.from_list(rows)
    path = tmp_path / f"bench.{kind}"
    if kind == "jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    elif kind == "parquet":
        ds.to_parquet(str(path))
    else:
        DatasetDict({"filtered": ds}).save_to_disk(str(path))
    data = load_rewardbench(RewardBenchSection(path=str(path)))
    assert len(data) == len(rows) and data[0]["prompt"] == [{"role": "user", "content": rows[0]["prompt"]}]
    assert data[3]["chosen"] == [{"role": "assistant", "content": rows[3]["chosen"]}] and data[3]["subset"] == rows[3]["subset"]
    assert len(load_rewardbench(RewardBenchSection(path=str(path), max_pairs=5))) == 5


def test_rewardbench_data_errors_name_the_problem(tmp_path):
    bad = tmp_path / "bench.jsonl"
    bad.write_text(json.dumps({"prompt": "p", "chosen": "a", "rejected": "b"}) + "\n")
    with pytest.raises(RewardBenchError, match="missing column.*subset"):
        load_rewardbench(RewardBenchSection(path=str(bad)))
    with pytest.raises(RewardBenchError, match="cannot be read"):
        load_rewardbench(RewardBenchSection(path=str(tmp_path / "nowhere")))
    (tmp_path / "x.csv").write_text("a,b\n")
    with pytest.raises(RewardBenchError, match=r"\.jsonl, \.json or \.parquet"):
        load_rewardbench(RewardBenchSection(path=str(tmp_path / "x.csv")))


@pytest.fixture(scope="module")
def evaluated(tiny_base, pairs_repo, tmp_path_factory):
    """A trained tiny reward model evaluated with two baselines (an off-the-shelf-like random reward model
    with its own chat template, and the trained folder itself) and RewardBench jsonl pairs."""
    from hub_tools.reward.evaluate import evaluate_reward
    from hub_tools.reward.train import train_reward

    from tiny_models import save_tiny_reward_model

    root = tmp_path_factory.mktemp("baselines")
    corpus = [" ".join(SPEECH_WORDS), " ".join(WARM), " ".join(CURT), "user assistant :"]
    other = save_tiny_reward_model(root / "hub" / "other-org" / "Tiny-Reward", corpus, OWN_TEMPLATE, seed=3)
    bench = root / "bench.jsonl"
    bench.write_text("".join(json.dumps(r) + "\n" for r in bench_rows()))
    work = root / "work"
    data = recipe_data(tiny_base, pairs_repo, work)
    recipe = validate(RewardRecipe, data)
    folder = train_reward(recipe)
    data["eval"] = {**data["eval"], "rewardbench": {"path": str(bench)},
                    "baselines": [{"name_or_path": str(other), "name": "other-org/Tiny-Reward"},
                                  {"name_or_path": str(folder)}]}
    recipe = validate(RewardRecipe, data)
    return recipe, folder, other, bench, evaluate_reward(recipe)


def test_a_baseline_is_scored_through_its_own_template_on_the_same_pairs(evaluated):
    from hub_tools.reward.metrics import accuracy_by_group, preference_metrics
    from hub_tools.training.preference_data import load_pairs

    recipe, folder, other, _, results = evaluated
    test = load_pairs(recipe.data, recipe.seed)["test"]
    mine, other_row = results["baselines"][1], results["baselines"][0]
    assert other_row["model"] == "other-org/Tiny-Reward" and other_row["name_or_path"] == str(other)
    assert mine["model"] == str(folder) and mine["test"] == results["test"]  # the same model: the same row
    expected = unbatched_margins(other, test["prompt"], test["chosen"], test["rejected"])
    assert other_row["test"] == pytest.approx(preference_metrics(expected, recipe.eval.ece_bins), abs=1e-6)
    assert other_row["per_topic"] == accuracy_by_group(expected, test["topic_coarse"])  # 10 pairs a topic: exact
    assert other_row["test"]["n_pairs"] == 20 and other_row["test"] != results["test"]


def test_rewardbench_results_of_this_model_and_every_baseline(evaluated):
    recipe, folder, other, bench, results = evaluated
    rb = results["rewardbench"]
    assert rb["path"] == str(bench) and rb["n_pairs"] == 3 * len(BENCH)
    assert [m["model"] for m in rb["models"]] == ["This model", "other-org/Tiny-Reward", str(folder)]
    rows = bench_rows()
    prompts = [[{"role": "user", "content": r["prompt"]}] for r in rows]
    for m, path in zip(rb["models"], (folder, other, folder)):
        margins = unbatched_margins(path, prompts, [[{"role": "assistant", "content": r["chosen"]}] for r in rows],
                                    [[{"role": "assistant", "content": r["rejected"]}] for r in rows])
        for subset in BENCH:
            got = [mg > 0 for mg, r in zip(margins, rows) if r["subset"] == subset]
            assert m["subsets"][subset] == {"accuracy": pytest.approx(sum(got) / 3, abs=1e-6), "n": 3}, subset
        assert m["sections"] == pytest.approx(section_scores({s: v["accuracy"] for s, v in m["subsets"].items()})["sections"])
        assert set(m["sections"]) == {"Chat", "Chat Hard", "Safety", "Reasoning", "Prior Sets"}
        assert m["unmapped_subsets"] == ["psy-extra"]
    assert rb["models"][0]["subsets"]["alpacaeval-easy"]["accuracy"] > rb["models"][0]["subsets"]["mt-bench-hard"]["accuracy"]


def test_card_shows_baseline_rows_topics_and_rewardbench(evaluated):
    _, folder, _, _, results = evaluated
    card = (folder / "README.md").read_text()
    assert "| `other-org/Tiny-Reward` (baseline) |" in card
    acc = f"{results['baselines'][0]['test']['accuracy'] * 100:.1f}"
    assert f"| `other-org/Tiny-Reward` (baseline) | {acc} |" in card
    assert "| Coarse topic | Test pairs | Accuracy (%) | `other-org/Tiny-Reward` (%) |" in card
    rb = results["rewardbench"]["models"][1]
    assert (f"| other-org/Tiny-Reward | {rb['score']:.1f} | {rb['sections']['Chat']:.1f} | "
            f"{rb['sections']['Chat Hard']:.1f} |") in card
    assert "| psy-extra | 3 |" in card and "no RewardBench section (reported alone): psy-extra" in card
    meta = yaml.safe_load(card.split("---")[1])
    assert {m["type"] for m in meta["model-index"][0]["results"][0]["metrics"]} == {"accuracy", "roc_auc", "ece",
                                                                                  "brier_score"}


def test_a_baseline_that_is_not_a_reward_model_is_a_recipe_error(evaluated, tmp_path):
    from hub_tools.reward.evaluate import evaluate_reward

    recipe, *_ = evaluated
    data = recipe.model_dump()
    data["eval"]["baselines"] = [{"name_or_path": str(tmp_path / "missing")}]
    data["eval"]["rewardbench"] = None
    with pytest.raises(RecipeError, match=r"eval.baselines\[0\].name_or_path .*missing.* cannot be loaded"):
        evaluate_reward(validate(RewardRecipe, data))


def test_card_names_local_models_and_data_by_their_last_part(evaluated):
    _, folder, _, bench, _ = evaluated
    card = (folder / "README.md").read_text().split("## Evaluation")[1].split("## Training")[0]
    assert str(folder.parent) not in card and str(bench.parent) not in card  # (the recipe lists them as given)
    assert "| `reward_model` (baseline) |" in card and "pairs of `bench.jsonl`" in card


def test_reward_eval_command_prints_the_baselines_and_rewardbench(evaluated, tmp_path, capsys):
    from hub_tools.cli import main

    recipe, *_ = evaluated
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe.model_dump(mode="json")))
    assert main(["reward", "eval", str(path)]) == 0
    out = capsys.readouterr().out
    assert "  baseline other-org/Tiny-Reward: accuracy" in out
    assert "  RewardBench This model: score" in out and "Chat Hard" in out
