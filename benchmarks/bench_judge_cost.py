"""Judge tokens per speech by protocol, and what the paper's 26,483-speech build would cost.

The same speeches and pool answers are judged by SmolLM2-135M-Instruct on the local llama.cpp server
in three ways: `per_principle` (the paper's protocol: 7 calls, the Rating Prompt with one principle's
Box B text each), `all_principles` with the paper's keys nested per principle (1 call), and
`all_principles` compact (1 call). Rationales are capped at the same length for all three, so the
comparison is of protocols, not of how long a small model rambles. Prompt tokens depend on the
prompt and the answers shown (counted by SmolLM2's BPE tokenizer, close to GPT-4o's for English);
completion tokens depend on the judge, so treat the projection for GPT-4o as an estimate.

The projection multiplies tokens per speech by 26,483 speeches and the price table of the paper
recipe (`recipes/psycopref/dataset/config_paper.yaml`: GPT-4o list prices), online and through the
Batch API (`judge.batch: true`, the table's `batch_discount`).

    python benchmarks/bench_judge_cost.py --speeches 3 [--rationale-chars 120]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

from bench_judge import REPO, judge_section, prepare_inputs, run

from hub_tools.dataset.pipeline import load_recipe

PAPER_SPEECHES = 26_483  # client speeches in the paper's build
MODES = (("per_principle (paper)", "per_principle", False), ("all_principles, keyed", "all_principles", False),
         ("all_principles, compact", "all_principles", True))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--speeches", type=int, default=3)
    p.add_argument("--rationale-chars", type=int, default=120, help="the same cap for every protocol")
    args = p.parse_args()
    prices = load_recipe(REPO / "recipes/psycopref/dataset/config_paper.yaml").judge.prices
    root = Path(tempfile.mkdtemp(prefix="bench-judge-cost-"))
    prepare_inputs(root / "inputs", args.speeches)
    rows = []
    for label, mode, compact in MODES:
        section = judge_section(args.rationale_chars, compact) | {"mode": mode}
        section["endpoint"]["params"] = {**section["endpoint"]["params"], "max_tokens": 1400}
        res = run(REPO, root / "inputs", section, 2, 1)
        n = res["speeches"]
        prompt, completion = res["prompt_tokens"] / n, res["completion_tokens"] / n
        online = prices.cost(prompt, completion) * PAPER_SPEECHES
        rows.append((label, res["calls"] / n, prompt, completion, res["seconds"] / n, online,
                     prices.cost(prompt, completion, batch=True) * PAPER_SPEECHES))
    shutil.rmtree(root, ignore_errors=True)
    print(f"\n{args.speeches} speeches, rationales <= {args.rationale_chars} chars; prices: "
          f"${prices.prompt_per_1m}/M prompt, ${prices.completion_per_1m}/M completion, batch x{prices.batch_discount}\n")
    print("| protocol | calls / speech | prompt tokens / speech | completion tokens / speech | s / speech (SmolLM2) "
          "| 26,483 speeches online | with judge.batch |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for label, calls, prompt, completion, secs, online, batch in rows:
        print(f"| {label} | {calls:.0f} | {prompt:,.0f} | {completion:,.0f} | {secs:.1f} | ${online:,.0f} | ${batch:,.0f} |")


if __name__ == "__main__":
    main()
