"""The LLM-as-ranker baseline (paper Table 1, "Generative LLMs"): a chat model is shown the paper's
LLM-as-Ranker Prompt (Appendix A) for every test pair, once with the chosen response first and once
with it second, and answers JSON {"better": 1|2}.

A pair scores 1 when both verdicts pick the chosen response, 0 when both pick the rejected one, and
0.5 (a tie) when the verdict follows the position instead of the content, or an answer cannot be read.
Calls go through the backend layer's `Runtime`, so any backend works and every answer is cached in
the work dir: rerunning costs nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ..config import ServerConfig
from ..paper.prompts import RANKER_PROMPT, RANKER_SCHEMA, ranker_messages, template_hash
from ..serving.answers import InvalidAnswer, extract_json
from ..serving.runtime import Runtime, run_parallel
from .config import RankerSection


def parse_verdict(text: str) -> int | None:
    """1 or 2 from an answer holding {"better": 1|2} (bare, in prose or in a code fence); None otherwise."""
    try:
        better = str(extract_json(text).get("better")).strip()
    except InvalidAnswer:
        return None
    return int(better) if better in ("1", "2") else None


def pair_score(chosen_first: int | None, chosen_second: int | None) -> float:
    """The pair's outcome from the verdicts with the chosen response shown first and shown second."""
    if chosen_first == 1 and chosen_second == 2:
        return 1.0
    if chosen_first == 2 and chosen_second == 1:
        return 0.0
    return 0.5  # order-inconsistent, or unreadable: a tie


def rank_pairs(cfg: RankerSection, work_dir: str | Path, speeches: Sequence[str], chosen: Sequence[str],
               rejected: Sequence[str], server: ServerConfig | None = None) -> dict:
    """Accuracy of the ranker on the pairs (ties count half), with its order consistency."""
    n = len(speeches)

    def call(i: int) -> int | None:
        pair, swapped = divmod(i, 2)
        first, second = (rejected[pair], chosen[pair]) if swapped else (chosen[pair], rejected[pair])
        completion, _ = rt.call(cfg.endpoint, ranker_messages(speeches[pair], first, second), stage="reward-ranker",
                                json_schema=RANKER_SCHEMA)
        return parse_verdict(completion.text)

    with Runtime(work_dir, [cfg.endpoint], server) as rt:
        verdicts = run_parallel(call, 2 * n, cfg.concurrency, "Ranking test pairs", "call")
    scores = [pair_score(verdicts[2 * i], verdicts[2 * i + 1]) for i in range(n)]
    return {
        "model": cfg.endpoint.model,
        "prompt_hash": template_hash(RANKER_PROMPT),
        "n_pairs": n,
        "accuracy": sum(scores) / n if n else None,
        "consistent": sum(s != 0.5 for s in scores) / n if n else None,
        "invalid": sum(v is None for v in verdicts),
    }
