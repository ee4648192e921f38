"""Stage 2: the model pool answers each client speech (paper §3.3).

For each speech, `members_per_speech` pool members are sampled with a seed derived from the run's seed
and the speech id (stable under re-ordering and subsetting), and each answers with the paper's
Responding Prompt, `samples_per_member` times. The dataset build samples 4 of 20 members once each; an
iterative-DPO round asks its one policy for K samples. A speeches dataset with a `length_words` column
asks for answers of about that many words per speech (the win-rate evaluation's length-constrained
setting). Every call goes through the Runtime's cache, so a killed run resumes where it stopped.
"""

from __future__ import annotations

import logging
import random
from pathlib import Path

from datasets import Dataset, Features, Value

from ..config import RecipeError, Responder
from ..io import RESPONSES, SPEECHES, load_stage, save_atomic
from ..paper.prompts import responding_messages
from ..serving.calls import Call, run_calls
from ..serving.runtime import Runtime
from .config import GenerateConfig

log = logging.getLogger("psycopref")

RESPONSE_FEATURES = Features({
    "speech_id": Value("string"), "response_id": Value("string"), "member": Value("string"),
    "model": Value("string"), "response": Value("string"),
    "prompt_tokens": Value("int64"), "completion_tokens": Value("int64"),
})


def sample_members(speech_id: str, pool: list[Responder], k: int, seed: int) -> list[Responder]:
    """The k members that answer one speech: seeded by (seed, speech id), in a random order."""
    if k > len(pool):
        raise RecipeError(f"generate.members_per_speech={k} but the pool has only {len(pool)} members")
    return random.Random(f"{seed}:{speech_id}").sample(pool, k)


def select_speeches(speeches: Dataset, max_speeches: int | None, seed: int) -> Dataset:
    """A seeded subset (or all) of the speeches, in their original order."""
    if max_speeches is None or max_speeches >= len(speeches):
        return speeches
    keep = sorted(random.Random(seed).sample(range(len(speeches)), max_speeches))
    return speeches.select(keep)


def _tasks(speeches: Dataset, cfg: GenerateConfig, seed: int) -> list[tuple[str, str, Responder, int | None, int | None]]:
    """(speech id, text, member, sample index or None when each member answers once, length in words or
    None when unconstrained) per call."""
    samples = [None] if cfg.samples_per_member == 1 else list(range(cfg.samples_per_member))
    return [(row["id"], row["text"], m, j, row.get("length_words")) for row in speeches
            for m in sample_members(row["id"], cfg.pool, cfg.members_per_speech, seed) for j in samples]


def run_generate(cfg: GenerateConfig, work_dir: str | Path, rt: Runtime, *, seed: int = 42,
                 speeches: Dataset | None = None) -> Dataset:
    """Answer `speeches` (default: `<work_dir>/speeches`); save and return `<work_dir>/responses`."""
    if speeches is None:
        speeches = load_stage(work_dir, SPEECHES, "dataset speeches")
    speeches = select_speeches(speeches, cfg.max_speeches, seed)
    tasks = _tasks(speeches, cfg, seed)

    calls = []
    for _, text, member, j, words in tasks:
        params, key = member.params, {"member": member.name, "system_prompt": member.system_prompt}
        if j is not None:  # one of several samples: its own cache entry and, where seeded, its own seed
            key["sample"] = j
            params = {**params, "seed": int(params["seed"]) + j} if "seed" in params else params
        calls.append(Call(member, responding_messages(text, member.system_prompt, words), params, extra_key=key))
    # every member's calls at once: an in-process vLLM member gets all of its calls in one engine batch
    results = run_calls(rt, calls, stage="generate", concurrency=cfg.concurrency, desc="generate", unit="resp")
    rows = [{"speech_id": speech_id, "response_id": f"{speech_id}:{member.name}" + ("" if j is None else f"#{j}"),
             "member": member.name, "model": member.model, "response": completion.text.strip(),
             "prompt_tokens": completion.prompt_tokens, "completion_tokens": completion.completion_tokens}
            for (speech_id, _, member, j, _), (completion, _) in zip(tasks, results)]
    cached = sum(hit for _, hit in results)
    ds = Dataset.from_list(rows, features=RESPONSE_FEATURES)
    out = save_atomic(ds, Path(work_dir) / RESPONSES)
    log.info("generate: %d responses to %d speeches (%d from cache) -> %s", len(ds), len(speeches), cached, out)
    return ds
