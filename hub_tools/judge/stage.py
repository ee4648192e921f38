"""Stage 3: the LLM judge rates every speech's 4 responses on the 7 principles (paper §3.3, App. A).

`per_principle` is the paper's protocol: one call per (speech, principle) with the Rating Prompt and
the principle's full Box B definition. `all_principles` (ours) rates all seven in one call. The 4
responses are shown in a seeded random order per call and ratings are mapped back, so position bias
does not follow a pool member. Invalid answers are retried, then quarantined with their raw text.
Every call is cached and priced in the token ledger; a budget cap stops the stage cleanly.
"""

from __future__ import annotations

import json
import logging
import random
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

from datasets import Dataset, Features, Value

from ..errors import StageError
from ..io import RATINGS, RESPONSES, SPEECHES, load_stage, save_atomic, write_json, write_jsonl
from ..paper.principles import PRINCIPLE_NAMES, by_short
from ..paper.prompts import all_principles_messages, rating_messages, rating_template, template_hash
from ..serving.calls import Call, batches, run_calls
from ..serving.runtime import Runtime, run_parallel
from .batch import run_batch
from .config import JudgeConfig
from .schema import N_RESPONSES, InvalidAnswer, json_schema, parse_answer

log = logging.getLogger("psycopref")
ALL = "all"  # call key of the all-principles mode

RATING_FEATURES = Features({
    "speech_id": Value("string"), "response_id": Value("string"), "member": Value("string"),
    "model": Value("string"), "response": Value("string"),
    **{f"{p}_rating": Value("int64") for p in PRINCIPLE_NAMES},
    **{f"{p}_rationale": Value("string") for p in PRINCIPLE_NAMES},
    "overall": Value("float64"), "complete": Value("bool"),
    "judge_model": Value("string"), "judge_mode": Value("string"), "judge_prompt_hash": Value("string"),
    "judge_params": Value("string"), "judge_seed": Value("int64"), "judge_positions": Value("string"),
    "rated_at": Value("string"),
})


class BudgetExceeded(StageError):
    """The judge's estimated cost reached `judge.budget_usd`."""


def prompt_hash(cfg: JudgeConfig) -> str:
    """The content hash of the prompt template this judge config sends."""
    return template_hash(rating_template(cfg.mode, cfg.compact))


def shuffle_order(seed: int, speech_id: str, key: str) -> list[int]:
    """Which response is shown at each position (0-based) for one call; seeded and reproducible."""
    order = list(range(N_RESPONSES))
    random.Random(f"{seed}:{speech_id}:{key}").shuffle(order)
    return order


def _group(responses: Dataset) -> dict[str, list[dict]]:
    groups: dict[str, list[dict]] = defaultdict(list)
    for row in responses:
        groups[row["speech_id"]].append(row)
    return groups


def run_judge(cfg: JudgeConfig, work_dir: str | Path, rt: Runtime, *, seed: int = 42,
              speeches: Dataset | None = None, responses: Dataset | None = None) -> Dataset:
    """Rate `responses` (default: `<work_dir>/responses`) to `speeches` (default: `<work_dir>/speeches`);
    save `<work_dir>/ratings`, `quarantine.jsonl` and `judge_ledger.json`; return the ratings."""
    work = Path(work_dir)
    if speeches is None:
        speeches = load_stage(work, SPEECHES, "dataset speeches")
    texts = {r["id"]: r["text"] for r in speeches}
    groups = _group(load_stage(work, RESPONSES, "dataset generate") if responses is None else responses)
    bad = [s for s, rs in groups.items() if len(rs) != N_RESPONSES]
    if bad:
        raise StageError(f"judge: speech {bad[0]} has {len(groups[bad[0]])} responses, expected {N_RESPONSES} "
                         f"({len(bad)} such speeches); generate {N_RESPONSES} per speech "
                         "(members_per_speech x samples_per_member) and rerun `psycopref dataset generate`")
    orphans = sorted(set(groups) - set(texts))
    if orphans:
        raise StageError(f"judge: responses name speech {orphans[0]!r}, which is not in {work / 'speeches'} "
                         f"({len(orphans)} such speeches); rerun `psycopref dataset generate` after `psycopref dataset speeches`")
    all_mode = cfg.mode == "all_principles"
    keys = [ALL] if all_mode else list(PRINCIPLE_NAMES)
    units = [(sid, key) for sid in groups for key in keys]
    schema = json_schema(all_mode, cfg.rationale_max_chars, cfg.compact) if cfg.constrained else None

    def price(c) -> float:
        return cfg.prices.cost(c.prompt_tokens, c.completion_tokens)

    def guard() -> None:
        if cfg.budget_usd is not None:
            spent = rt.cache.ledger("judge")["cost_usd"]
            if spent >= cfg.budget_usd:
                raise BudgetExceeded(f"judge budget reached: ${spent:.4f} of ${cfg.budget_usd:.4f} spent; finished calls "
                                     "are cached: raise judge.budget_usd and rerun to resume")

    def prompt(unit: tuple[str, str]) -> tuple[list[int], list[dict]]:
        """Which response is shown where, and the prompt showing them, for one call."""
        sid, key = unit
        order = shuffle_order(seed, sid, key)
        shown = [groups[sid][j]["response"] for j in order]
        return order, (all_principles_messages(texts[sid], shown, cfg.compact) if all_mode
                       else rating_messages(texts[sid], shown, by_short(key)))

    def params_for(attempt: int) -> dict:
        params = dict(cfg.endpoint.params)
        if attempt:  # a retry must be able to differ from the first answer
            params["seed"] = int(params.get("seed", seed)) + attempt
        return params

    if cfg.batch:  # first attempts through the Batch API, into the same cache the online calls read
        guard()
        run_batch(cfg, work, rt, [prompt(u)[1] for u in units], params_for(0), schema)
    elif batches(rt, cfg.endpoint):  # an in-process engine: every first attempt in one batch, into the cache
        guard()
        run_calls(rt, [Call(cfg.endpoint, prompt(u)[1], params_for(0), schema, {"attempt": 0}) for u in units],
                  stage="judge", concurrency=cfg.concurrency, desc=f"judge ({cfg.mode}, batched)", unit="call", price=price)

    def rate(i: int) -> dict:
        sid, key = units[i]
        order, messages = prompt(units[i])
        errors, text = [], ""
        for attempt in range(cfg.max_attempts):
            completion, _ = rt.call(cfg.endpoint, messages, stage="judge", params=params_for(attempt),
                                    json_schema=schema, extra_key={"attempt": attempt}, price=price, on_miss=guard)
            text = completion.text
            try:
                parsed = parse_answer(text, all_mode, cfg.compact)
            except InvalidAnswer as err:
                errors.append(str(err))
                continue
            return {"sid": sid, "key": key, "order": order, "parsed": parsed, "at": completion.created_at}
        return {"sid": sid, "key": key, "order": order, "quarantine": {
            "speech_id": sid, "principle": key, "attempts": cfg.max_attempts, "errors": errors, "raw": text,
            "response_ids": [groups[sid][j]["response_id"] for j in order]}}

    results = run_parallel(rate, len(units), cfg.concurrency, f"judge ({cfg.mode})", "call")
    ds = _assemble(cfg, seed, groups, results)
    save_atomic(ds, work / RATINGS)
    quarantined = [r["quarantine"] for r in results if "quarantine" in r]
    _write_reports(cfg, work, rt, quarantined, len(units))
    return ds


def _assemble(cfg: JudgeConfig, seed: int, groups: dict[str, list[dict]], results: list[dict]) -> Dataset:
    # scores[speech][response index][principle] = (rating, rationale); positions likewise
    scores: dict = defaultdict(lambda: defaultdict(dict))
    positions: dict = defaultdict(lambda: defaultdict(dict))
    stamps: dict = defaultdict(list)
    for res in results:
        if "parsed" not in res:
            continue
        stamps[res["sid"]].append(res["at"] or 0.0)
        for key, rows in res["parsed"].items():
            principle = key or res["key"]
            for pos, (rating, rationale) in enumerate(rows):
                idx = res["order"][pos]
                scores[res["sid"]][idx][principle] = (rating, rationale)
                positions[res["sid"]][idx][principle] = pos + 1
    common = {"judge_model": cfg.endpoint.model, "judge_mode": cfg.mode,
              "judge_prompt_hash": prompt_hash(cfg),
              "judge_params": json.dumps(cfg.endpoint.params, sort_keys=True), "judge_seed": seed}
    rows = []
    for sid, responses in groups.items():
        at = max(stamps[sid], default=0.0)
        rated_at = datetime.fromtimestamp(at, UTC).isoformat(timespec="seconds") if at else ""
        for idx, resp in enumerate(responses):
            got = scores[sid][idx]
            complete = all(p in got for p in PRINCIPLE_NAMES)
            row = {k: resp[k] for k in ("speech_id", "response_id", "member", "model", "response")}
            row |= {f"{p}_rating": got[p][0] if p in got else None for p in PRINCIPLE_NAMES}
            row |= {f"{p}_rationale": got[p][1] if p in got else None for p in PRINCIPLE_NAMES}
            row |= {"overall": sum(got[p][0] for p in PRINCIPLE_NAMES) / len(PRINCIPLE_NAMES) if complete else None,
                    "complete": complete, "judge_positions": json.dumps(positions[sid][idx], sort_keys=True),
                    "rated_at": rated_at, **common}
            rows.append(row)
    return Dataset.from_list(rows, features=RATING_FEATURES)


def _write_reports(cfg: JudgeConfig, work: Path, rt: Runtime, quarantined: list[dict], n_calls: int) -> None:
    write_jsonl(work / "quarantine.jsonl", quarantined)
    ledger = rt.cache.ledger("judge") | {"prompts": n_calls, "quarantined": len(quarantined),
                                         "model": cfg.endpoint.model, "mode": cfg.mode,
                                         "prompt_hash": prompt_hash(cfg)}
    write_json(work / "judge_ledger.json", ledger)
    log.info("judge: %d prompts, %d quarantined; ledger: %d calls, %d prompt + %d completion tokens, ~$%.4f",
             n_calls, len(quarantined), ledger["calls"], ledger["prompt_tokens"], ledger["completion_tokens"],
             ledger["cost_usd"])
