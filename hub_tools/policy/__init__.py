"""Policies (paper §4.2): offline DPO on the preference pairs, iterative DPO with a reward model, their
model folders and cards. The win-rate evaluation of a policy lives in `hub_tools.policy.winrate`."""
