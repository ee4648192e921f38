"""Choosing what a policy publishes on the dev set: offline DPO's best checkpoint (not its last) with every
evaluated checkpoint recorded in checkpoints.json and the card; DPO-Iter's round by the judge's dev win rate
rather than by the reward model; and the rules themselves on constructed numbers."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from test_dpo import CPU, policy_recipe
from test_dpo_iter import generated, iter_recipe, tiny_reward  # noqa: F401  (tiny_reward: a fixture used here)

from hub_tools.config import validate
from hub_tools.policy.config import DevJudgeSection, DPORecipe
from hub_tools.policy.selection import choose_round, dev_checkpoints

torch = pytest.importorskip("torch")
pytest.importorskip("trl")

PNG = b"\x89PNG\r\n\x1a\n"


def test_dev_checkpoints_record_every_evaluation_and_the_rule():
    history = [{"loss": 0.69, "step": 1}, {"eval_loss": 0.6, "eval_rewards/accuracies": 0.5, "eval_rewards/margins": 0.2,
                                           "eval_runtime": 1.0, "step": 2, "epoch": 0.5},
               {"eval_loss": 0.7, "eval_rewards/accuracies": 0.25, "eval_rewards/margins": -0.1, "step": 4, "epoch": 1.0}]
    best = SimpleNamespace(metric_for_best_model="rewards/accuracies", greater_is_better=True, load_best_model_at_end=True)
    record = dev_checkpoints(history, best, "/w/trainer/checkpoint-2", 4)
    assert [c["step"] for c in record["checkpoints"]] == [2, 4] and record["chosen_step"] == 2
    assert [c["chosen"] for c in record["checkpoints"]] == [True, False] and record["final_step"] == 4
    assert record["metric"] == "eval_rewards/accuracies" and "highest" in record["rule"]
    assert record["checkpoints"][0] == {"step": 2, "epoch": 0.5, "loss": 0.6, "accuracy": 0.5, "margin": 0.2, "chosen": True}
    last = SimpleNamespace(metric_for_best_model=None, greater_is_better=None, load_best_model_at_end=False)
    record = dev_checkpoints(history, last, None, 4)
    assert record["chosen_step"] == 4 and record["rule"].startswith("last step") and record["metric"] is None
    assert dev_checkpoints(history[:1], best, None, 1) is None  # never evaluated: nothing to record


def test_the_judge_rule_and_the_reward_rule_choose_differently():
    rounds = [{"round": 0, "dev_reward": 5.0, "dev_winrate": None},  # the start is never a candidate
              {"round": 1, "dev_reward": 0.4, "dev_winrate": 0.75},
              {"round": 2, "dev_reward": 0.9, "dev_winrate": 0.25},  # the reward model likes it: reward hacking
              {"round": 3, "dev_reward": 0.9, "dev_winrate": 0.75}]
    assert choose_round(rounds, "reward") == 2  # earliest of the tied best
    assert choose_round(rounds, "judge") == 1
    assert choose_round([{"round": 0}, {"round": 1}, {"round": 2}], "judge") == 2  # nothing scored: the last


@pytest.fixture(scope="module")
def flipped_dev_repo(tmp_path_factory):
    """Pairs whose dev speeches (seed 42, 25%) prefer the curt answer: the longer DPO trains toward the warm
    answers of train, the worse it does on dev, so the best checkpoint on dev is not the last."""
    from hub_tools.training.preference_data import dev_speeches

    from preference_data import make_pairs, write_pairs_repo

    ids = sorted({r["ID"] for r in make_pairs(24, seed=1)})
    return write_pairs_repo(tmp_path_factory.mktemp("flipped") / "datasets" / "test-org" / "TinyPref",
                            flip=dev_speeches(ids, 0.25, 42))


def test_dpo_publishes_its_best_checkpoint_on_dev_and_records_every_candidate(tiny_base, flipped_dev_repo, tmp_path):
    from safetensors.torch import load_file

    from hub_tools.policy.train import train_dpo

    work = tmp_path / "work"
    training = {**CPU, "max_steps": 6, "per_device_train_batch_size": 8, "learning_rate": 5e-3,
                "eval_strategy": "steps", "eval_steps": 2, "save_strategy": "steps", "save_steps": 2,
                "save_total_limit": 1, "load_best_model_at_end": True, "metric_for_best_model": "rewards/margins",
                "per_device_eval_batch_size": 8}
    recipe = validate(DPORecipe, policy_recipe(tiny_base, flipped_dev_repo, work, training=training,
                                               data={"dev_fraction": 0.25}))
    folder = train_dpo(recipe)
    record = json.loads((folder / "checkpoints.json").read_text())
    rows = record["checkpoints"]
    assert [c["step"] for c in rows] == [2, 4, 6] and record["final_step"] == 6
    margins = {c["step"]: c["margin"] for c in rows}
    assert record["chosen_step"] == max(margins, key=margins.get) != 6, margins  # the best on dev, not the last
    assert [c["step"] for c in rows if c["chosen"]] == [record["chosen_step"]]
    assert all({"loss", "accuracy", "margin", "chosen_reward", "rejected_reward"} <= set(c) for c in rows)
    # the published weights are the chosen checkpoint's (transformers keeps the best beside save_total_limit)
    published = load_file(folder / "model.safetensors")
    chosen = load_file(work / "trainer" / f"checkpoint-{record['chosen_step']}" / "model.safetensors")
    assert all(torch.equal(published[k], chosen[k]) for k in chosen)
    # the card lists every candidate with the rule, and shows the curves drawn from the log history
    card = (folder / "README.md").read_text()
    assert "Checkpoint selection (dev set)" in card and "best rewards/margins on dev" in card
    assert card.count("| **yes** |") == 1 and all(f"\n| {s} | " in card for s in (2, 4, 6))
    history = json.loads((folder / "log_history.json").read_text())["log_history"]
    assert sum("eval_rewards/margins" in e for e in history) == 3 and sum("loss" in e for e in history) == 6
    assert not any(k.endswith("_runtime") or k.endswith("_per_second") for e in history for k in e)
    assert "figures/training_curves.png" in card and (folder / "figures" / "training_curves.png").read_bytes()[:8] == PNG


# --- DPO-Iter: the round chosen by the judge --------------------------------------------------------------

def _shown(prompt: str) -> tuple[str, str]:
    a = prompt.split("\n\nResponse A: ", 1)[1].split("\n\nResponse B: ", 1)
    return a[0], a[1].split("\n\nAnswer with", 1)[0]


def _dev_answers(work, k: int) -> dict[str, str]:
    from datasets import load_from_disk

    responses = load_from_disk(str(work / f"round-{k}" / "dev" / "responses"))
    return dict(zip(responses["speech_id"], responses["response"]))


def test_dpo_iter_round_chosen_by_the_judge_not_the_reward_model(tiny_base, tiny_reward, pairs_repo, tmp_path):  # noqa: F811
    from hub_tools.policy.iterate import train_dpo_iter

    from fakes import SCRIPT

    work = tmp_path / "work"
    by_reward = iter_recipe(tiny_base, tiny_reward, pairs_repo, work)
    folder = train_dpo_iter(by_reward)
    rounds = {r["round"]: r for r in json.loads((folder / "rounds.json").read_text())}
    picked = json.loads((folder / "train_results.json").read_text())
    assert picked["selected_by"] == "reward" and all(rounds[k]["dev_winrate"] is None for k in rounds)
    assert "chosen by **the mean dev reward**" in (folder / "README.md").read_text()
    other = 3 - picked["best_round"]  # the round the reward model did not pick: the judge will prefer it

    favourite, start = set(_dev_answers(work, other).values()), set(_dev_answers(work, 0).values())
    assert not favourite & (start | set(_dev_answers(work, 3 - other).values())), "the rounds' dev answers must differ"

    def judge(call: dict) -> str:  # the favourite round's answer beats the initial policy's; any other loses to it
        a, b = _shown(call["messages"][-1]["content"])
        better = "A" if a in favourite else "B" if b in favourite else "A" if a in start and b not in start else \
            "B" if b in start and a not in start else "tie"
        return json.dumps({"better": better})

    SCRIPT.reset()
    SCRIPT.answer = judge
    try:
        dev_judge = validate(DevJudgeSection, {"judge": {"endpoint": {"backend": "fake-judge", "model": "judge",
                                                                      "params": {"seed": 5}}}})
        by_judge = by_reward.model_copy(update={"iter": by_reward.iter.model_copy(update={"dev_judge": dev_judge})})
        calls = generated(work)
        folder = train_dpo_iter(by_judge)  # resumes: only the judge step is new
    finally:
        SCRIPT.reset()
    assert generated(work) == calls  # nothing sampled or trained again
    report = json.loads((folder / "train_results.json").read_text())
    rounds = {r["round"]: r for r in json.loads((folder / "rounds.json").read_text())}
    assert report["selected_by"] == "judge" and report["best_round"] == other != picked["best_round"]
    assert rounds[other]["dev_winrate"] == 1.0 and rounds[3 - other]["dev_winrate"] <= 0.5
    assert rounds[0]["dev_winrate"] is None and all(rounds[k]["dev_reward"] is not None for k in (0, 1, 2))
    assert rounds[other]["dev_swap_consistency"] == 1.0
    verdicts = (work / f"round-{other}" / "dev" / "verdicts.jsonl").read_text().splitlines()
    assert len(verdicts) == 2  # dev_limit: 2 speeches, both orders in each record
    card = (folder / "README.md").read_text()
    assert "chosen by **the judge's dev win rate**" in card and "compared by `judge` with the initial policy" in card
    assert "| Dev win rate (%) |" in card and "| 100.0 |" in card
    assert "figures/rounds.png" in card and (folder / "figures" / "rounds.png").read_bytes()[:8] == PNG


def test_dpo_with_a_dev_judge_publishes_the_checkpoint_the_judge_prefers(tiny_base, pairs_repo, tmp_path):
    """The judge sees the policy's answers at each evaluation; this one favours the first evaluation's."""
    from hub_tools.policy.train import train_dpo

    from fakes import SCRIPT

    evaluation_calls = 2 * 3  # 3 dev speeches, both orders, one call each (concurrency 1: in order)

    def judge(call: dict) -> str:  # the policy is shown as A in odd calls, as B in even ones (judge_pairs' order)
        n = len(SCRIPT.calls)
        policy = "A" if n % 2 else "B"
        return json.dumps({"better": policy if n <= evaluation_calls else "B" if policy == "A" else "A"})

    training = {**CPU, "max_steps": 4, "per_device_train_batch_size": 8, "learning_rate": 5e-3,
                "eval_strategy": "steps", "eval_steps": 2, "save_strategy": "steps", "save_steps": 2,
                "load_best_model_at_end": True, "metric_for_best_model": "dev_winrate"}
    dev_judge = {"judge": {"endpoint": {"backend": "fake-judge", "model": "judge", "params": {"seed": 5}},
                           "concurrency": 1}, "speeches": 3, "max_tokens": 4}
    recipe = validate(DPORecipe, policy_recipe(tiny_base, pairs_repo, tmp_path / "work", training=training,
                                               data={"dev_fraction": 0.25}, dev_judge=dev_judge))
    SCRIPT.reset()
    SCRIPT.answer = judge
    try:
        folder = train_dpo(recipe)
        assert len(SCRIPT.calls) == 2 * evaluation_calls  # two evaluations, each judged in both orders
    finally:
        SCRIPT.reset()
    record = json.loads((folder / "checkpoints.json").read_text())
    assert [(c["step"], c["winrate"]) for c in record["checkpoints"]] == [(2, 1.0), (4, 0.0)]
    assert record["chosen_step"] == 2 and record["metric"] == "eval_dev_winrate"
    card = (folder / "README.md").read_text()
    assert "Dev win rate (%)" in card and "| 100.0 | **yes** |" in card and "| 0.0 |  |" in card
    history = json.loads((folder / "log_history.json").read_text())["log_history"]
    assert [e["eval_dev_winrate"] for e in history if "eval_loss" in e] == [1.0, 0.0]


def test_a_dev_winrate_metric_needs_a_dev_judge_and_dpo_iter_keeps_its_judge_in_iter(tiny_base, pairs_repo, tmp_path):
    from hub_tools.config import RecipeError
    from hub_tools.policy.config import DPOIterRecipe

    data = policy_recipe(tiny_base, pairs_repo, tmp_path, training={"metric_for_best_model": "dev_winrate"})
    with pytest.raises(RecipeError, match="dev_winrate is the dev judge's number; set dev_judge"):
        validate(DPORecipe, data)
    judge = {"judge": {"endpoint": {"backend": "fake-judge", "model": "judge"}}}
    data = {**policy_recipe(tiny_base, pairs_repo, tmp_path), "dev_judge": judge,
            "iter": {"reward_model": "r", "generation": {"backend": "transformers"}}}
    with pytest.raises(RecipeError, match="move it there"):
        validate(DPOIterRecipe, data)
    data = {**data, "dev_judge": None, "iter": {**data["iter"], "dev_judge": judge}}
    assert validate(DPOIterRecipe, data).endpoints()[0].backend == "fake-judge"
    from hub_tools.policy.train import train_dpo

    no_eval = validate(DPORecipe, {**policy_recipe(tiny_base, pairs_repo, tmp_path / "w"), "dev_judge": judge})
    with pytest.raises(RecipeError, match="needs dev pairs .* and training.eval_strategy"):
        train_dpo(no_eval)  # before any model is loaded
