"""What every trained model shares: recipe sections (base model + LoRA/QLoRA, preference pairs, hardware,
card, publishing) and reading the preference pairs. The reward and policy areas build on it."""
