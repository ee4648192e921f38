"""The judge's batch mode: every uncached first attempt in one OpenAI-compatible Batch API job.

The requests are exactly what the online path would send (same messages, parameters and schema, built
by the backend) and each answer is stored under the same cache key, priced at the batch discount, so
the online pass that follows finds them and only retries invalid answers (or asks what the batch could
not answer). The job's id lives in `<work_dir>/judge_batch.json` until its results are in.
"""

from __future__ import annotations

import logging
from pathlib import Path

from ..config import RecipeError
from ..serving.batch import BatchJob, BatchRequest
from ..serving.cache import cache_key
from ..serving.runtime import Runtime
from .config import JudgeConfig

log = logging.getLogger("psycopref")
STATE_FILE = "judge_batch.json"


def run_batch(cfg: JudgeConfig, work: Path, rt: Runtime, prompts: list[list[dict]], params: dict,
              schema: dict | None) -> int:
    """Submit (or resume) one batch for the prompts not in the cache yet; returns the answers stored."""
    endpoint = cfg.endpoint
    backend = rt.backend(endpoint)
    if not backend.supports_batch or not endpoint.base_url or endpoint.base_url == "managed":
        raise RecipeError(f"judge.batch needs an OpenAI-compatible endpoint with a base_url (backend "
                          f"{endpoint.backend!r}, base_url {endpoint.base_url!r} has no Batch API)")
    requests = []
    for messages in prompts:
        parts = rt.call_parts(endpoint, messages, stage="judge", params=params, json_schema=schema,
                              extra_key={"attempt": 0})
        key = cache_key(parts)
        if rt.cache.get(key) is None:
            requests.append(BatchRequest(key, backend.request_body(messages, params, parts["schema"])))
    job = BatchJob(endpoint.base_url, work / STATE_FILE, endpoint.api_key_env, poll_seconds=cfg.batch_poll_seconds,
                   max_wait_seconds=cfg.batch_max_wait_seconds, timeout=endpoint.timeout,
                   max_retries=endpoint.max_retries, max_retry_wait=endpoint.max_retry_wait)
    try:
        if not requests and not (job.state() and not job.state().get("collected")):
            return 0
        results = job.collect(requests, metadata={"tool": "psycopref", "stage": "judge"})
    finally:
        job.close()
    stored = 0
    for key, answer in results.items():
        if isinstance(answer, str):
            log.warning("batch: no answer for one prompt (%s); it is asked online", answer)
            continue
        if rt.cache.get(key) is None:
            rt.cache.put(key, "judge", answer, cfg.prices.cost(answer.prompt_tokens, answer.completion_tokens, batch=True))
            stored += 1
    log.info("batch: %d answers stored in the cache", stored)
    return stored
