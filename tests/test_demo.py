"""`psycopref demo` ends with a Space config that compares the base model with the policies it published."""

from __future__ import annotations

from transformers import AutoModelForSequenceClassification

from hub_tools.arena.compare import Policies
from hub_tools.arena.config import load_space_config
from hub_tools.demo import Demo, write_space_config

from tiny_models import save_tiny_llama

WORDS = "I hear you tell me more about how that feels it sounds hard and what happens next".split()
SPEECH = "I moved here for work two years ago and I still don't have a single friend I could call."


def publish(demo: Demo, step: str, seed: int) -> str:
    """A tiny model where the demo's step pushes its artifact in the mirror."""
    return str(save_tiny_llama(demo.hub / "models" / demo.recipe(step).repo_id, words=WORDS, seed=seed))


def test_no_space_config_before_a_policy_is_published(tmp_path):
    demo = Demo(tmp_path / "runs", tmp_path / "hub")
    publish(demo, "reward", 1)  # a reward model alone has nothing to compare
    assert write_space_config(demo) is None
    assert not (demo.work / "space.yaml").exists()


def test_the_space_config_shows_the_published_policies_scored_by_the_reward_model(tmp_path):
    demo = Demo(tmp_path / "runs", tmp_path / "hub")
    dpo, dpo_iter = publish(demo, "dpo", 2), publish(demo, "dpo-iter", 3)
    reward = publish(demo, "reward", 4)
    AutoModelForSequenceClassification.from_pretrained(reward, num_labels=1).save_pretrained(reward)

    cfg = load_space_config(write_space_config(demo))  # validated as `psycopref space run --config` reads it
    assert [p.name for p in cfg.policies] == ["SmolLM2-135M-Instruct", "DPO", "DPO-Iter"]
    assert cfg.policies[0].base_url == "managed"  # the base model behind the Space's own llama.cpp server
    assert [p.model for p in cfg.policies[1:]] == [dpo, dpo_iter]
    assert cfg.reward.model == reward
    assert str(demo.work) in cfg.votes.local_file  # votes stay in the demo's work dir

    # the trained columns answer in-process from the mirror and get the reward model's score
    local = cfg.model_copy(update={"policies": [p.model_copy(update={"params": {"max_tokens": 6, "temperature": 0}})
                                                for p in cfg.policies[1:]]})
    with Policies(local) as policies:
        *_, columns = policies.stream(policies.names, SPEECH)
    assert all(c.done and c.text.strip() and c.reward is not None for c in columns)


def test_without_a_reward_model_the_space_shows_no_scores(tmp_path):
    demo = Demo(tmp_path / "runs", tmp_path / "hub")
    publish(demo, "dpo", 2)
    cfg = load_space_config(write_space_config(demo))
    assert [p.name for p in cfg.policies] == ["SmolLM2-135M-Instruct", "DPO"] and cfg.reward.model is None
