"""`psycopref policy eval RECIPE`: win rates of policies against a reference model (paper §4.2, Table 2).

The reference answers every test speech once; each policy answers them in each setting (free, and
length-matched: asked for about as many words as the reference's answer to that speech), through the
generate stage with the policy as its one pool member; the pairwise judge compares the two answers in
both orders; the statistics (winrate.py) give overall and per-topic win rates with bootstrap intervals,
swap consistency, the length-controlled win rate and the achieved length ratio. One Runtime serves every
endpoint and caches every call, so a rerun (or an added policy) only asks what is new.

Work dir: test_speeches/, reference/responses/, policies/<name>/<setting>/{responses/, verdicts.jsonl},
winrate.json, winrate.md, figures/winrate_topics.png, recipe.resolved.yaml, cache.sqlite, logs/.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from datasets import Dataset

from ...config import Responder, save_resolved
from ...generate.config import GenerateConfig
from ...generate.stage import run_generate
from ...io import run_log, save_atomic, write_json, write_jsonl, write_text
from ...paper.taxonomy import coarse_topics
from ...serving.runtime import Runtime
from .config import EvalRecipe
from .held_out import load_test_speeches, normalise
from .pairwise import STAGE, Pair, judge_pairs, prompt_hash
from .stats import summarize, words

log = logging.getLogger("psycopref")

RESULTS_JSON, RESULTS_MD = "winrate.json", "winrate.md"


@dataclass(frozen=True)
class EvalOutput:
    """What an evaluation produced: the results (as in winrate.json), the markdown table, and the files."""

    results: dict
    markdown: str
    json_path: Path
    markdown_path: Path
    figure_path: Path  # <work_dir>/figures/winrate_topics.png


def answer(member: Responder, speeches: Dataset, work_dir: Path, rt: Runtime, *, seed: int,
           concurrency: int) -> dict[str, str]:
    """speech id -> the member's answer, through the generate stage (cached) into `<work_dir>/responses`."""
    cfg = GenerateConfig(pool=[member], members_per_speech=1, concurrency=concurrency)
    responses = run_generate(cfg, work_dir, rt, seed=seed, speeches=speeches)
    return dict(zip(responses["speech_id"], responses["response"]))


def evaluate_policy(recipe: EvalRecipe, rt: Runtime, policy: Responder, speeches: Dataset,
                    reference: dict[str, str]) -> dict:
    """One policy in every setting of the recipe: {"model", "settings": {setting: summary}} (winrate.summarize)."""
    work = recipe.work_path / "policies" / policy.name
    out = {"model": policy.model, "settings": {}}
    ref_words = [words(reference[sid]) for sid in speeches["id"]]
    for setting in recipe.settings:
        asked = speeches if setting == "free" else speeches.add_column("length_words", ref_words)
        mine = answer(policy, asked, work / setting, rt, seed=recipe.seed, concurrency=recipe.concurrency)
        pairs = [Pair(row["id"], row["text"], mine[row["id"]], reference[row["id"]]) for row in speeches]
        records = judge_pairs(recipe.judge, rt, pairs, seed=recipe.seed, desc=f"judge {policy.name} ({setting})")
        for rec, row, pair in zip(records, speeches, pairs):
            rec |= {"topic_coarse": row["topic_coarse"], "policy_answer": pair.policy,
                    "reference_answer": pair.reference, "policy_words": words(pair.policy),
                    "reference_words": words(pair.reference)}
        write_jsonl(work / setting / "verdicts.jsonl", records)
        b = recipe.bootstrap
        out["settings"][setting] = summary = summarize(
            [r["score"] for r in records], [r["score_A"] for r in records], [r["score_B"] for r in records],
            [r["topic_coarse"] for r in records], [r["policy_words"] for r in records], ref_words,
            samples=b.samples, confidence=b.confidence, seed=recipe.seed, topic_order=coarse_topics(),
            lc_interval=b.length_controlled)
        summary["invalid_orders"] = sum(r[f"verdict_{p}"] is None for r in records for p in "AB")
        if summary["n_missing"]:
            log.warning("eval %s (%s): %d of %d speeches lack a valid verdict in one order or both and are excluded "
                        "(raw answers in %s)", policy.name, setting, summary["n_missing"], len(records),
                        work / setting / "verdicts.jsonl")
        log.info("eval %s (%s): win rate %s over %d speeches, swap consistency %s, length ratio %s", policy.name,
                 setting, summary["win_rate"], summary["n"], summary["swap_consistency"], summary["length_ratio"])
    return out


def evaluate_policies(recipe: EvalRecipe, *, speeches: Dataset | None = None) -> EvalOutput:
    """Evaluate every policy of `recipe` on its test speeches (or `speeches`: columns id, text, topic_coarse);
    write winrate.json, winrate.md and figures/winrate_topics.png into the work dir and return them."""
    from .report import markdown_table, topic_figure

    work = recipe.work_path
    save_resolved(recipe, work / "recipe.resolved.yaml")
    with run_log(work):
        given = speeches is not None  # bad test speeches stop the run before any server starts
        speeches = normalise(speeches, "speeches") if given else load_test_speeches(recipe.speeches, recipe.seed)
        save_atomic(speeches, work / "test_speeches")
        with Runtime(work, recipe.endpoints(), recipe.server) as rt:
            reference = answer(recipe.reference, speeches, work / "reference", rt, seed=recipe.seed,
                               concurrency=recipe.concurrency)
            policies = {p.name: evaluate_policy(recipe, rt, p, speeches, reference) for p in recipe.policies}
            ledger = rt.cache.ledger(STAGE)
    results = {
        "speeches": {**({"path": "given"} if given else recipe.speeches.model_dump()), "n": len(speeches)},
        "reference": {"name": recipe.reference.name, "model": recipe.reference.model},
        "judge": {"model": recipe.judge.endpoint.model, "prompt_hash": prompt_hash(recipe.judge),
                  "params": recipe.judge.endpoint.params, "ledger": ledger},
        "settings": list(recipe.settings),
        "bootstrap": {**recipe.bootstrap.model_dump(), "seed": recipe.seed},
        "policies": policies,
    }
    markdown = markdown_table(results)
    figure = work / topic_figure(work, results)
    out = EvalOutput(results, markdown, write_json(work / RESULTS_JSON, results), write_text(work / RESULTS_MD, markdown),
                     figure)
    log.info("eval: results in %s, %s and %s", out.json_path, out.markdown_path, out.figure_path)
    return out
