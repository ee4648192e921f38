"""Win rates of policies against a reference model (paper §4.2, Table 2: `psycopref policy eval`).

    config.py    the eval recipe: test speeches, policies, reference, pairwise judge, settings, bootstrap
    held_out.py  the test speeches, one row per speech
    evaluate.py  policies and reference answer (the generate stage), the judge compares, results are written
    pairwise.py  the pairwise judge in both orders (the paper's Box B principles)
    stats.py     win rates, ties, swap consistency, bootstrap intervals, the length-controlled win rate
    report.py    the markdown table and the per-topic figure
"""
