"""DPO-Iter on tiny random models: pair selection, two rounds that write manifests and pick the best round
by dev reward, and a run killed after round 1 (or inside round 2) resuming without regenerating."""

from __future__ import annotations

import json

import pytest
from datasets import Dataset, load_from_disk
from test_dpo import CPU

from hub_tools.config import validate
from hub_tools.policy.config import DPOIterRecipe
from hub_tools.policy.iterate import reward_pairs

torch = pytest.importorskip("torch")
pytest.importorskip("trl")


def test_pairs_are_each_speechs_best_and_worst_above_the_margin():
    speeches = Dataset.from_list([{"id": "a", "text": "i feel sad"}, {"id": "b", "text": "i feel lost"},
                                  {"id": "c", "text": "i feel tired"}])
    scored = Dataset.from_list([
        {"speech_id": "a", "response_id": "a:p#0", "response": "ok", "reward": 0.1},
        {"speech_id": "a", "response_id": "a:p#1", "response": "best", "reward": 2.0},
        {"speech_id": "a", "response_id": "a:p#2", "response": "worst", "reward": -1.0},
        {"speech_id": "b", "response_id": "b:p#0", "response": "x", "reward": 0.50},
        {"speech_id": "b", "response_id": "b:p#1", "response": "y", "reward": 0.45},  # margin 0.05 < 0.1
        {"speech_id": "c", "response_id": "c:p#0", "response": "only one", "reward": 1.0},  # no pair
    ])
    pairs, facts = reward_pairs(speeches, scored, min_margin=0.1)
    assert pairs["ID"] == ["a"] and facts == {"pairs": 1, "dropped_margin": 2, "mean_margin": 3.0}
    row = pairs[0]
    assert row["chosen"] == [{"role": "assistant", "content": "best"}]
    assert row["rejected"] == [{"role": "assistant", "content": "worst"}]
    assert row["prompt"][0]["content"].startswith("You are now a professional psychotherapist")
    assert row["prompt"][0]["content"].endswith("Client Speech: i feel sad")
    assert reward_pairs(speeches, scored, min_margin=0.0)[1]["pairs"] == 2


@pytest.fixture(scope="module")
def tiny_reward(tiny_base, tmp_path_factory):
    """A random score head on the tiny base: deterministic rewards, enough to rank samples."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    path = tmp_path_factory.mktemp("tiny-reward")
    torch.manual_seed(1)
    model = AutoModelForSequenceClassification.from_pretrained(tiny_base, num_labels=1, pad_token_id=0)
    model.save_pretrained(path)
    AutoTokenizer.from_pretrained(tiny_base).save_pretrained(path)
    return path


def iter_recipe(tiny_base, tiny_reward, pairs_repo, work, rounds=2):
    return validate(DPOIterRecipe, {
        "work_dir": str(work), "seed": 3,
        "model": {"name_or_path": str(tiny_base), "hub_id": "test-org/tiny-llama", "dtype": "float32",
                  "save_dtype": "float32"},
        "data": {"path": str(pairs_repo), "config": "pairs"},
        "iter": {"rounds": rounds, "speeches_per_round": 4, "reward_model": str(tiny_reward), "dev_fraction": 0.25,
                 "dev_limit": 2, "generation": {"backend": "transformers", "samples": 3,
                                                "params": {"temperature": 1.0, "max_tokens": 4}}},
        "training": {**CPU, "max_steps": 2, "per_device_train_batch_size": 2, "learning_rate": 1e-3},
        "push": {"hub_dir": str(work.parent / "hub")},
    })


def generated(work) -> int:
    """Model calls actually made (not answered from the cache) so far, per the work dir's ledger."""
    import sqlite3

    with sqlite3.connect(work / "cache.sqlite") as db:
        return db.execute("SELECT COUNT(*) FROM calls WHERE stage='generate'").fetchone()[0]


def test_two_rounds_write_manifests_and_keep_the_best(tiny_base, tiny_reward, pairs_repo, tmp_path):
    from hub_tools.policy.iterate import train_dpo_iter

    work = tmp_path / "work"
    recipe = iter_recipe(tiny_base, tiny_reward, pairs_repo, work)
    folder = train_dpo_iter(recipe)
    for k in (1, 2):
        m = json.loads((work / f"round-{k}" / "manifest.json").read_text())
        assert list(m["steps"]) == ["speeches", "generate", "score", "pairs", "train", "dev"]
        assert m["steps"]["speeches"]["n"] == 4 and m["steps"]["generate"]["samples"] == 3
        assert (work / f"round-{k}" / "checkpoint" / "model.safetensors").is_file()
    r2 = json.loads((work / "round-2" / "manifest.json").read_text())
    assert r2["steps"]["generate"]["policy"] == str(work / "round-1" / "checkpoint")  # round 2 samples round 1's policy
    assert len(set(load_from_disk(str(work / "round-1" / "speeches"))["id"])) == 4
    responses = load_from_disk(str(work / "round-1" / "responses"))
    assert len(responses) == 4 * 3 and set(responses["member"]) == {"policy-round-0"}
    rounds = json.loads((folder / "rounds.json").read_text())
    assert [r["round"] for r in rounds] == [0, 1, 2]
    devs = {r["round"]: r["dev_reward"] for r in rounds[1:]}
    report = json.loads((folder / "train_results.json").read_text())
    assert report["best_round"] == max(devs, key=devs.get) and report["rounds"] == 2
    assert report["global_step"] == 4
    card = (folder / "README.md").read_text()
    assert "iterative-dpo" in card and "Rounds (DPO-Iter)" in card and recipe.repo_id.endswith("-DPO-Iter")

    calls = generated(work)
    train_dpo_iter(recipe)  # a finished run: nothing is sampled or trained again
    assert generated(work) == calls


def test_a_killed_run_resumes_at_the_unfinished_step(tiny_base, tiny_reward, pairs_repo, tmp_path, monkeypatch):
    from hub_tools.policy import iterate

    work = tmp_path / "work"
    iterate.train_dpo_iter(iter_recipe(tiny_base, tiny_reward, pairs_repo, work, rounds=1))  # round 1 done
    round1 = (work / "round-1" / "checkpoint" / "model.safetensors").stat().st_mtime_ns
    calls_after_round1 = generated(work)

    real = iterate.train_checkpoint

    def killed(*args, **kwargs):  # dies inside round 2's training, after its samples were drawn and scored
        raise KeyboardInterrupt

    monkeypatch.setattr(iterate, "train_checkpoint", killed)
    with pytest.raises(KeyboardInterrupt):
        iterate.train_dpo_iter(iter_recipe(tiny_base, tiny_reward, pairs_repo, work, rounds=2))
    steps = json.loads((work / "round-2" / "manifest.json").read_text())["steps"]
    assert list(steps) == ["speeches", "generate", "score", "pairs"]
    sampled = generated(work)
    assert sampled == calls_after_round1 + 4 * 3  # round 2's samples, and only those

    monkeypatch.setattr(iterate, "train_checkpoint", real)
    folder = iterate.train_dpo_iter(iter_recipe(tiny_base, tiny_reward, pairs_repo, work, rounds=2))
    assert (work / "round-1" / "checkpoint" / "model.safetensors").stat().st_mtime_ns == round1  # round 1 untouched
    assert generated(work) == sampled + 2  # nothing regenerated: only round 2's dev answers are new
    assert json.loads((folder / "train_results.json").read_text())["rounds"] == 2


@pytest.mark.parametrize("reference", ["previous", "initial"])
def test_qlora_rounds_train_4_bit_and_hand_the_next_round_merged_weights(tiny_base, tiny_reward, pairs_repo, tmp_path,
                                                                         monkeypatch, reference):
    """The dpo-iter/config_qlora.yaml recipes on CPU (bitsandbytes): each round trains LoRA on a 4-bit NF4 load of
    the round's start, merges into unquantised weights, and the next round starts from those."""
    pytest.importorskip("bitsandbytes", reason="QLoRA needs bitsandbytes (the `train` extra)")
    from bitsandbytes.nn import Linear4bit

    from hub_tools.policy import iterate, train

    loads = []  # (start, is the policy 4-bit?) of every DPO model loaded: the policy, then any reference copy
    real_load = train.load_policy_model

    def load(section, path, **kw):
        model = real_load(section, path, **kw)
        if kw.get("for_training", True):  # not the unquantised load the adapters are merged into
            loads.append((str(path), isinstance(model.model.layers[0].self_attn.q_proj, Linear4bit)))
        return model

    monkeypatch.setattr(train, "load_policy_model", load)
    from preference_data import CURT, SPEECH_WORDS, WARM
    from tiny_models import save_tiny_llama

    # hidden 64: a frozen 4-bit reference runs bitsandbytes' CPU inference path, which packs 64 input features
    base = save_tiny_llama(tmp_path / "base", corpus=[" ".join(SPEECH_WORDS), " ".join(WARM), " ".join(CURT)],
                           hidden_size=64)
    recipe = iter_recipe(base, tiny_reward, pairs_repo, tmp_path / "work")
    recipe = validate(DPOIterRecipe, recipe.model_dump(mode="json", exclude_unset=True) | {
        "model": {**recipe.model.model_dump(mode="json", exclude_unset=True), "dtype": "bfloat16", "quantization": "nf4",
                  "lora": {"r": 4, "lora_alpha": 8, "lora_dropout": 0.0, "target_modules": "all-linear",
                           "task_type": "CAUSAL_LM"}},
        "iter": {**recipe.iter.model_dump(mode="json", exclude_unset=True), "reference": reference},
        "training": {**recipe.training.model_dump(mode="json", exclude_unset=True), "max_steps": 1}})
    folder = iterate.train_dpo_iter(recipe)

    round1 = str(tmp_path / "work" / "round-1" / "checkpoint")
    assert all(q for _, q in loads)  # every policy and reference copy loaded in 4-bit
    want = [str(base), round1] + ([str(base)] if reference == "initial" else [])
    assert [s for s, _ in loads] == want  # round 2 trains from round 1's merged weights (+ the initial reference)
    for k in (1, 2):
        config = json.loads((tmp_path / "work" / f"round-{k}" / "checkpoint" / "config.json").read_text())
        assert "quantization_config" not in config  # merged into unquantised weights, loadable anywhere
    assert recipe.repo_id.endswith("-DPO-Iter-QLoRA")
    assert json.loads((folder / "train_results.json").read_text())["rounds"] == 2
