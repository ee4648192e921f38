"""Stage 3 (judge) with fake judges: answer validation, JSON schema, shuffle mapping in both modes,
retries and quarantine, provenance, token ledger and budget cap."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from datasets import Dataset, load_from_disk

from hub_tools.dataset.pipeline import run_stages, validate_recipe
from hub_tools.errors import StageError
from hub_tools.generate.stage import RESPONSE_FEATURES
from hub_tools.io import save_atomic
from hub_tools.judge.schema import InvalidAnswer, json_schema, parse_answer
from hub_tools.judge.stage import BudgetExceeded, run_judge, shuffle_order
from hub_tools.paper.principles import PRINCIPLE_NAMES
from hub_tools.paper.prompts import ALL_PRINCIPLES_COMPACT_PROMPT, ALL_PRINCIPLES_PROMPT, RATING_PROMPT, template_hash
from hub_tools.serving import Completion
from hub_tools.serving.runtime import Runtime

from fakes import SCRIPT, expected_rating, one_principle, principle_of, rationale, reading_judge

PARAMS = {"temperature": 0.0, "seed": 5, "max_tokens": 512}
MODES = ["per_principle", "all_principles"]


@pytest.fixture(autouse=True)
def _script():
    SCRIPT.reset()
    yield
    SCRIPT.reset()


# --- building the stage inputs -------------------------------------------------------------------------

def write_inputs(work: Path, n_speeches: int = 3, drop_last: bool = False) -> dict[str, int]:
    """Speeches and 4 responses each; a response's text starts with its quality. Returns quality by id."""
    speeches, responses, quality = [], [], {}
    for s in range(n_speeches):
        sid = f"sp-{s}"
        speeches.append({"id": sid, "text": f"Client {s} cannot sleep since the move and feels alone."})
        qualities = ([5, 4, 3, 2, 1] * 2)[s % 5:s % 5 + 4]  # 4 distinct qualities, different per speech
        for m, q in enumerate(qualities):
            rid = f"{sid}:member-{m}"
            quality[rid] = q
            responses.append({"speech_id": sid, "response_id": rid, "member": f"member-{m}", "model": f"model-{m}",
                              "response": f"quality {q} reply of member-{m} to {sid}",
                              "prompt_tokens": 10, "completion_tokens": 20})
    if drop_last:
        responses.pop()
    save_atomic(Dataset.from_list(speeches), work / "speeches")
    save_atomic(Dataset.from_list(responses, features=RESPONSE_FEATURES), work / "responses")
    return quality


def make_recipe(work: Path, mode: str = "per_principle", **judge):
    cfg = {"endpoint": {"backend": "fake-judge", "model": "judge-x", "params": PARAMS},
           "mode": mode, "concurrency": 2} | judge
    return validate_recipe({"work_dir": str(work), "seed": 11, "stages": ["judge"], "judge": cfg})


def judge(recipe) -> Dataset:
    with Runtime(recipe.work_dir, [recipe.judge.endpoint]) as rt:
        return run_judge(recipe.judge, recipe.work_dir, rt, seed=recipe.seed)


def quarantine(work: Path) -> list[dict]:
    return [json.loads(line) for line in (work / "quarantine.jsonl").read_text().splitlines()]


def seen(call: dict, mode: str) -> tuple[str, list[str]]:
    """(principle or 'all', response texts at positions 1..4) of one judge prompt."""
    prompt = call["messages"][-1]["content"]
    shown = dict(re.findall(r"^Response (\d): (.*)$", prompt, re.M))
    key = principle_of(prompt) if mode == "per_principle" else "all"
    return key, [shown[str(i)] for i in range(1, 5)]


def valid_one(rating: object = 3) -> dict:
    return {k: v for i in range(1, 5) for k, v in ((f"response_{i}_rating", rating), (f"rationale_{i}", f"why {i}"))}


# --- parse_answer / json_schema ------------------------------------------------------------------------

def test_parse_answer_accepts_valid_json_and_fenced_blocks():
    obj = one_principle([5, 1, 4, 2], "empathy")
    want = [(5, rationale(5, "empathy")), (1, rationale(1, "empathy")), (4, rationale(4, "empathy")),
            (2, rationale(2, "empathy"))]
    assert parse_answer(json.dumps(obj), all_principles=False) == {"": want}
    fenced = f"Here are my ratings:\n```json\n{json.dumps(obj, indent=2)}\n```\nHope this helps."
    assert parse_answer(fenced, all_principles=False) == {"": want}
    braces_outside = f"Ratings {{as asked}}:\n```\n{json.dumps(obj)}\n```\n{{end}}"
    assert parse_answer(braces_outside, all_principles=False) == {"": want}
    assert parse_answer(json.dumps(obj | {"note": "extra keys are ignored"}), all_principles=False) == {"": want}


@pytest.mark.parametrize("bad, where", [
    (valid_one() | {"response_2_rating": "4"}, "response_2_rating"),
    (valid_one() | {"response_1_rating": 4.5}, "response_1_rating"),
    (valid_one() | {"response_1_rating": 4.0}, "response_1_rating"),
    (valid_one() | {"response_3_rating": True}, "response_3_rating"),
    (valid_one() | {"response_4_rating": 0}, "response_4_rating"),
    (valid_one() | {"response_4_rating": 6}, "response_4_rating"),
    ({k: v for k, v in valid_one().items() if k != "response_3_rating"}, "response_3_rating"),
    ({k: v for k, v in valid_one().items() if k != "rationale_2"}, "rationale_2"),
    (valid_one() | {"rationale_1": 7}, "rationale_1"),
])
def test_parse_answer_rejects_bad_ratings(bad, where):
    with pytest.raises(InvalidAnswer, match=where):
        parse_answer(json.dumps(bad), all_principles=False)


@pytest.mark.parametrize("text", ["I would rate them all 4.", "", "{not json}", "[1, 2, 3, 4]"])
def test_parse_answer_rejects_non_json(text):
    with pytest.raises(InvalidAnswer):
        parse_answer(text, all_principles=False)


def test_parse_answer_all_principles_shape():
    obj = {p: one_principle([1, 2, 3, 4], p) for p in PRINCIPLE_NAMES}
    got = parse_answer(json.dumps(obj), all_principles=True)
    assert list(got) == list(PRINCIPLE_NAMES)
    for p in PRINCIPLE_NAMES:
        assert got[p] == [(expected_rating(q, p), rationale(q, p)) for q in [1, 2, 3, 4]]
    with pytest.raises(InvalidAnswer, match="safety"):
        parse_answer(json.dumps({p: v for p, v in obj.items() if p != "safety"}), all_principles=True)
    with pytest.raises(InvalidAnswer, match=r"staging\.response_2_rating"):
        parse_answer(json.dumps(obj | {"staging": valid_one() | {"response_2_rating": "2"}}), all_principles=True)
    with pytest.raises(InvalidAnswer):  # a single-principle answer is not an all-principles answer
        parse_answer(json.dumps(valid_one()), all_principles=True)


def test_json_schema_contents():
    one = json_schema(all_principles=False)
    assert one["type"] == "object" and one["additionalProperties"] is False
    assert sorted(one["required"]) == sorted(valid_one())
    for i in range(1, 5):
        assert one["properties"][f"response_{i}_rating"] == {"type": "integer", "minimum": 1, "maximum": 5}
        assert one["properties"][f"rationale_{i}"] == {"type": "string"}
    capped = json_schema(all_principles=False, rationale_max_chars=200)
    assert all(capped["properties"][f"rationale_{i}"] == {"type": "string", "maxLength": 200} for i in range(1, 5))
    every = json_schema(all_principles=True, rationale_max_chars=200)
    assert every["required"] == list(PRINCIPLE_NAMES) and every["additionalProperties"] is False
    assert all(every["properties"][p] == capped for p in PRINCIPLE_NAMES)
    assert "$ref" not in json.dumps(every)


def test_compact_answers_parse_to_the_same_ratings_as_keyed_ones():
    keyed = {p: one_principle([3, 1, 4, 2], p) for p in PRINCIPLE_NAMES}
    compact = {p: [[expected_rating(q, p), rationale(q, p)] for q in [3, 1, 4, 2]] for p in PRINCIPLE_NAMES}
    assert parse_answer(json.dumps(compact), True, compact=True) == parse_answer(json.dumps(keyed), True)
    assert len(json.dumps(compact, separators=(",", ":"))) < 0.6 * len(json.dumps(keyed, separators=(",", ":")))
    with pytest.raises(InvalidAnswer, match=r"empathy"):  # three pairs where four responses were shown
        parse_answer(json.dumps(compact | {"empathy": compact["empathy"][:3]}), True, compact=True)
    with pytest.raises(InvalidAnswer, match=r"clarity\.1\.0"):  # a rating out of range
        parse_answer(json.dumps(compact | {"clarity": [[3, "a"], [6, "b"], [1, "c"], [2, "d"]]}), True, compact=True)
    with pytest.raises(InvalidAnswer):  # the keyed format is not the compact one
        parse_answer(json.dumps(keyed), True, compact=True)
    schema = json_schema(True, 24, compact=True)
    pair = schema["properties"]["safety"]["items"]
    assert schema["required"] == list(PRINCIPLE_NAMES) and schema["properties"]["safety"]["minItems"] == 4
    assert pair["prefixItems"] == [{"type": "integer", "minimum": 1, "maximum": 5}, {"type": "string", "maxLength": 24}]


# --- shuffling -----------------------------------------------------------------------------------------

def test_shuffle_order_is_a_seeded_permutation():
    order = shuffle_order(1, "sp-0", "empathy")
    assert sorted(order) == [0, 1, 2, 3] and order == shuffle_order(1, "sp-0", "empathy")
    orders = {tuple(shuffle_order(seed, sid, key)) for seed in (1, 2) for sid in ("a", "b", "c")
              for key in PRINCIPLE_NAMES}
    assert len(orders) > 5


@pytest.mark.parametrize("mode", MODES)
def test_ratings_map_back_to_the_response_shown_whatever_the_shuffle(tmp_path, mode):
    quality = write_inputs(tmp_path, n_speeches=4)
    SCRIPT.answer = reading_judge
    ds = judge(make_recipe(tmp_path, mode))

    assert len(ds) == 16
    for row in ds:
        q = quality[row["response_id"]]
        for p in PRINCIPLE_NAMES:
            assert row[f"{p}_rating"] == expected_rating(q, p), (row["response_id"], p)
            assert row[f"{p}_rationale"] == rationale(q, p)
        assert row["complete"] is True
        assert row["overall"] == pytest.approx(sum(expected_rating(q, p) for p in PRINCIPLE_NAMES) / 7)

    # the stored positions are where the judge really saw each response, and they vary across calls
    speech_of = {r["response"]: r["speech_id"] for r in ds}
    where = {}  # (response text, principle) -> position shown
    orders = set()
    for call in SCRIPT.calls:
        key, shown = seen(call, mode)
        orders.add(tuple(quality[f"{speech_of[t]}:{t.split()[4]}"] for t in shown))
        for pos, text in enumerate(shown, start=1):
            for p in (PRINCIPLE_NAMES if key == "all" else [key]):
                where[(text, p)] = pos
    for row in ds:
        positions = json.loads(row["judge_positions"])
        assert positions == {p: where[(row["response"], p)] for p in PRINCIPLE_NAMES}
    assert len(orders) > 1
    identity = {tuple(quality[f"sp-{s}:member-{m}"] for m in range(4)) for s in range(4)}
    assert orders - identity  # some call showed the responses out of their stored order
    assert len(SCRIPT.calls) == (4 * 7 if mode == "per_principle" else 4)


# --- retries and quarantine ----------------------------------------------------------------------------

def test_invalid_principle_is_quarantined_never_defaulted(tmp_path):
    write_inputs(tmp_path, n_speeches=3)
    bad = json.dumps(valid_one("4"))  # ratings as strings

    def answer(call):
        return bad if principle_of(call["messages"][-1]["content"]) == "safety" else reading_judge(call)

    SCRIPT.answer = answer
    recipe = make_recipe(tmp_path, max_attempts=2)
    ds = judge(recipe)
    safety_calls = [c for c in SCRIPT.calls if principle_of(c["messages"][-1]["content"]) == "safety"]
    assert len(safety_calls) == 3 * 2 and len(SCRIPT.calls) == 3 * 6 + 3 * 2
    assert [c["params"]["seed"] for c in safety_calls].count(PARAMS["seed"] + 1) == 3  # retries re-seeded

    q = quarantine(tmp_path)
    assert sorted(x["speech_id"] for x in q) == ["sp-0", "sp-1", "sp-2"]
    for x in q:
        assert x["principle"] == "safety" and x["raw"] == bad
        assert len(x["errors"]) == 2 and all("response_1_rating" in e for e in x["errors"])
    for row in ds:
        assert row["safety_rating"] is None and row["safety_rationale"] is None
        assert row["empathy_rating"] is not None and row["staging_rating"] is not None
        assert row["complete"] is False and row["overall"] is None
    assert json.loads((tmp_path / "judge_ledger.json").read_text())["quarantined"] == 3

    SCRIPT.reset()  # a rerun replays the same answers from the cache
    again = judge(recipe)
    assert SCRIPT.calls == [] and quarantine(tmp_path) == q and again["safety_rating"] == ds["safety_rating"]


def test_all_principles_invalid_answer_quarantines_all_seven(tmp_path):
    write_inputs(tmp_path, n_speeches=2)
    SCRIPT.answer = lambda call: "I think response 2 is the best one."
    ds = judge(make_recipe(tmp_path, "all_principles", max_attempts=3))
    assert len(SCRIPT.calls) == 2 * 3
    assert sorted(c["params"]["seed"] for c in SCRIPT.calls) == [5, 5, 6, 6, 7, 7]
    q = quarantine(tmp_path)
    assert len(q) == 2 and all(x["principle"] == "all" and x["raw"].startswith("I think") for x in q)
    assert all(len(x["errors"]) == 3 for x in q)
    for row in ds:
        assert all(row[f"{p}_rating"] is None for p in PRINCIPLE_NAMES)
        assert row["complete"] is False and row["overall"] is None


def test_invalid_then_valid_is_kept_and_not_quarantined(tmp_path):
    quality = write_inputs(tmp_path, n_speeches=2)
    asked: set[str] = set()

    def answer(call):
        prompt = call["messages"][-1]["content"]
        if prompt not in asked:
            asked.add(prompt)
            return json.dumps(valid_one(4.5))
        return reading_judge(call)

    SCRIPT.answer = answer
    ds = judge(make_recipe(tmp_path, max_attempts=3))
    assert len(SCRIPT.calls) == 2 * 2 * 7
    assert quarantine(tmp_path) == []
    for row in ds:
        assert row["complete"] is True
        assert row["clarity_rating"] == expected_rating(quality[row["response_id"]], "clarity")


# --- provenance, ledger, budget ------------------------------------------------------------------------

@pytest.mark.parametrize("mode, compact, template", [("per_principle", True, RATING_PROMPT),
                                                    ("all_principles", True, ALL_PRINCIPLES_COMPACT_PROMPT),
                                                    ("all_principles", False, ALL_PRINCIPLES_PROMPT)],
                         ids=["per_principle", "all_principles-compact", "all_principles-nested"])
def test_provenance_columns(tmp_path, mode, compact, template):
    write_inputs(tmp_path, n_speeches=2)
    SCRIPT.answer = reading_judge
    before = datetime.now(UTC).replace(microsecond=0)
    judge(make_recipe(tmp_path, mode, rationale_max_chars=120, compact=compact))
    after = datetime.now(UTC)

    contract = {"speech_id": "string", "response_id": "string", "member": "string", "model": "string",
                "response": "string", **{f"{p}_rating": "int64" for p in PRINCIPLE_NAMES},
                **{f"{p}_rationale": "string" for p in PRINCIPLE_NAMES}, "overall": "float64", "complete": "bool",
                "judge_model": "string", "judge_mode": "string", "judge_prompt_hash": "string",
                "judge_params": "string", "rated_at": "string"}
    on_disk = load_from_disk(str(tmp_path / "ratings"))
    assert {k: on_disk.features[k].dtype for k in contract} == contract
    assert len({template_hash(t) for t in (RATING_PROMPT, ALL_PRINCIPLES_PROMPT, ALL_PRINCIPLES_COMPACT_PROMPT)}) == 3
    for row in on_disk:
        assert row["judge_model"] == "judge-x" and row["judge_mode"] == mode
        assert row["judge_prompt_hash"] == template_hash(template)
        assert json.loads(row["judge_params"]) == PARAMS
        at = datetime.fromisoformat(row["rated_at"])
        assert at.utcoffset().total_seconds() == 0 and before <= at <= after
    # constrained decoding: the backend got the schema for this mode, rationale cap included
    assert all(c["schema"] == json_schema(mode == "all_principles", 120, compact) for c in SCRIPT.calls)
    assert json.loads((tmp_path / "judge_ledger.json").read_text())["prompt_hash"] == template_hash(template)


def test_unconstrained_judge_gets_no_schema(tmp_path):
    write_inputs(tmp_path, n_speeches=1)
    SCRIPT.answer = reading_judge
    judge(make_recipe(tmp_path, "all_principles", constrained=False))
    assert SCRIPT.calls and all(c["schema"] is None for c in SCRIPT.calls)


def test_ledger_totals_match_usage_and_prices(tmp_path):
    write_inputs(tmp_path, n_speeches=2)
    SCRIPT.answer = reading_judge
    judge(make_recipe(tmp_path, prices={"prompt_per_1m": 1000.0, "completion_per_1m": 3000.0}))
    ledger = json.loads((tmp_path / "judge_ledger.json").read_text())
    prompt = sum(c["usage"][0] for c in SCRIPT.calls)
    completion = sum(c["usage"][1] for c in SCRIPT.calls)
    assert prompt > 0 and completion > 0
    assert ledger["calls"] == len(SCRIPT.calls) == 14 and ledger["prompts"] == 14
    assert ledger["prompt_tokens"] == prompt and ledger["completion_tokens"] == completion
    assert ledger["cost_usd"] == pytest.approx((prompt * 1000.0 + completion * 3000.0) / 1e6, abs=1e-6)
    assert ledger["quarantined"] == 0 and ledger["model"] == "judge-x" and ledger["mode"] == "per_principle"


def test_budget_stops_the_stage_and_a_bigger_budget_resumes(tmp_path):
    quality = write_inputs(tmp_path, n_speeches=3)
    SCRIPT.answer = lambda call: Completion(reading_judge(call), prompt_tokens=1000, completion_tokens=0)
    prices = {"prompt_per_1m": 1.0, "completion_per_1m": 0.0}  # $0.001 a call
    allowed, concurrency = 4, 2  # spent stays under $0.0035 for 3 calls, so the 4th may start
    with pytest.raises(BudgetExceeded, match="budget_usd"):
        judge(make_recipe(tmp_path, prices=prices, budget_usd=0.0035, concurrency=concurrency))
    paid = len(SCRIPT.calls)
    assert allowed <= paid <= allowed + concurrency - 1
    assert not (tmp_path / "ratings").exists()

    SCRIPT.reset()
    SCRIPT.answer = lambda call: Completion(reading_judge(call), prompt_tokens=1000, completion_tokens=0)
    ds = judge(make_recipe(tmp_path, prices=prices, budget_usd=1.0, concurrency=concurrency))
    assert len(SCRIPT.calls) == 3 * 7 - paid  # every paid call re-used
    assert all(r["complete"] and r["autonomy_rating"] == expected_rating(quality[r["response_id"]], "autonomy")
               for r in ds)
    assert json.loads((tmp_path / "judge_ledger.json").read_text())["cost_usd"] == pytest.approx(0.021)


# --- bad input -----------------------------------------------------------------------------------------

def test_wrong_number_of_responses_is_a_stage_error(tmp_path):
    write_inputs(tmp_path, n_speeches=2, drop_last=True)
    SCRIPT.answer = reading_judge
    with pytest.raises(StageError, match="sp-1 has 3 responses, expected 4"):
        judge(make_recipe(tmp_path))
    assert SCRIPT.calls == []


def test_members_per_speech_other_than_four_is_refused(tmp_path):
    write_inputs(tmp_path, n_speeches=1)
    recipe = validate_recipe({"work_dir": str(tmp_path), "judge": {"endpoint": {"backend": "fake-judge", "model": "j"}},
                              "generate": {"pool": [{"backend": "fake-gen", "model": "m", "name": "a"}],
                                           "members_per_speech": 3}})
    with pytest.raises(ValueError, match="members_per_speech must be 4"):
        run_stages(recipe, ["judge"])  # the pipeline checks the generate and judge sections agree
