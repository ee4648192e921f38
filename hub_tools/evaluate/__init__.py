"""Evaluation: the expert-validation kit (paper §3.4); win rates against a reference model follow."""
