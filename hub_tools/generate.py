"""Stage 2: the model pool answers each client speech (paper §3.3).

For each speech, `members_per_speech` pool members are sampled with a seed derived from the recipe seed
and the speech id (stable under re-ordering and subsetting), and each answers with the paper's
Responding Prompt. Every call goes through the on-disk cache, so a killed run resumes where it stopped.
"""

from __future__ import annotations

import logging
import random
from datasets import Dataset, Features, Value
from .config import GenerateConfig, PoolMember, Recipe
from .io import load_stage, save_atomic
from .prompts import responding_messages
from .runtime import Runtime, run_parallel

log = logging.getLogger("psycopref")

RESPONSE_FEATURES = Features({
    "speech_id": Value("string"), "response_id": Value("string"), "member": Value("string"),
    "model": Value("string"), "response": Value("string"),
    "prompt_tokens": Value("int64"), "completion_tokens": Value("int64"),
})


def sample_members(speech_id: str, pool: list[PoolMember], k: int, seed: int) -> list[PoolMember]:
    """The k members that answer one speech: seeded by (seed, speech id), in a random order."""
    if k > len(pool):
        raise ValueError(f"generate.members_per_speech={k} but the pool has only {len(pool)} members")
    return random.Random(f"{seed}:{speech_id}").sample(pool, k)


def select_speeches(speeches: Dataset, max_speeches: int | None, seed: int) -> Dataset:
    """A seeded subset (or all) of the speeches, in their original order."""
    if max_speeches is None or max_speeches >= len(speeches):
        return speeches
    keep = sorted(random.Random(seed).sample(range(len(speeches)), max_speeches))
    return speeches.select(keep)


def _check_pool(cfg: GenerateConfig) -> None:
    names = [m.name for m in cfg.pool]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"generate.pool: member names must be unique, repeated: {', '.join(dupes)}")


def run_generate(recipe: Recipe, rt: Runtime) -> Dataset:
    cfg = recipe.generate
    if cfg is None:
        raise ValueError("the recipe has no `generate` section")
    _check_pool(cfg)
    speeches = select_speeches(load_stage(recipe.work_dir, "speeches", "speeches"), cfg.max_speeches, recipe.seed)
    tasks = [(row["id"], row["text"], m) for row in speeches
             for m in sample_members(row["id"], cfg.pool, cfg.members_per_speech, recipe.seed)]

    def answer(i: int) -> tuple[dict, bool]:
        speech_id, text, member = tasks[i]
        messages = responding_messages(text, member.system_prompt)
        completion, hit = rt.call(member, messages, stage="generate",
                                  extra_key={"member": member.name, "system_prompt": member.system_prompt})
        return {"speech_id": speech_id, "response_id": f"{speech_id}:{member.name}", "member": member.name,
                "model": member.model, "response": completion.text.strip(),
                "prompt_tokens": completion.prompt_tokens, "completion_tokens": completion.completion_tokens}, hit

    results = run_parallel(answer, len(tasks), cfg.concurrency, "generate", "resp")
    cached = sum(hit for _, hit in results)
    ds = Dataset.from_list([row for row, _ in results], features=RESPONSE_FEATURES)
    save_atomic(ds, recipe.work_path / "responses")
    log.info("generate: %d responses to %d speeches (%d from cache) -> %s", len(ds), len(speeches), cached,
             recipe.work_path / "responses")
    return ds
