"""Stage 2: the model pool answers each client speech (paper §3.3); also how a policy under evaluation or
an iterative-DPO round answers speeches."""
