"""Reward models (paper §4.1): Bradley–Terry training with TRL's `RewardTrainer`, calibration-aware
evaluation, an LLM-as-ranker baseline, other reward models and RewardBench-format data beside it, the model
card and the push.

    train_reward(recipe) -> folder      the pushable model folder (weights, tokenizer, card, recipe)
    evaluate_reward(recipe) -> metrics  test-pair metrics, written into that folder and its card
    push_reward(recipe) -> PushResult   the folder to the Hub or a local mirror

Import the functions from their modules (`hub_tools.reward.train`, ...): torch and TRL load only then.
"""
