"""Evaluation: the expert-validation kit (paper §3.4, annotate.py) and the win-rate evaluation of policies
against a reference model (paper §4.2, Table 2: `psycopref policy eval`, policy.py)."""
