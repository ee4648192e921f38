"""No answer can stop a run in a way a rerun cannot fix. Answers that break `json`, pydantic and `int()` in
every way we could think of (huge and non-finite numbers, booleans as ratings, deep nesting, huge strings,
lone surrogates, non-objects, wrong and duplicated keys, fences, NUL bytes, ...) are read by every reader
of model output (judge, pairwise win-rate judge, ranker, topic classifier) as "invalid", never as a crash;
served by a real HTTP server through the real client, they end in the judge's quarantine with the reason
on the first run, and a rerun over the cached answers sends no request and ends the same way."""

from __future__ import annotations

import json
import random
import re

import pytest
from test_judge import quarantine, write_inputs

from hub_tools.dataset.pipeline import validate_recipe
from hub_tools.judge.schema import InvalidAnswer, parse_answer
from hub_tools.judge.stage import run_judge
from hub_tools.paper.principles import PRINCIPLE_NAMES
from hub_tools.policy.winrate.config import PairwiseJudgeConfig
from hub_tools.policy.winrate.pairwise import Pair, judge_pairs
from hub_tools.policy.winrate.pairwise import parse_verdict as parse_pairwise
from hub_tools.reward.ranker import parse_verdict as parse_ranker
from hub_tools.serving.answers import MAX_ANSWER_CHARS, MAX_DEPTH, extract_json
from hub_tools.serving.runtime import Runtime
from hub_tools.speeches.topics import parse_topic

from fakes import one_principle, reading_judge
from fault_server import serve_faults

pytestmark = pytest.mark.timeout(300)

SLOT = "__SLOT__"
DEEP = "[" * 50_000 + "]" * 50_000


def with_raw(obj, path: list, raw: str) -> str:
    """`obj` as JSON with the value at `path` replaced by the raw JSON text `raw` (which json.dumps could not write)."""
    obj = json.loads(json.dumps(obj))
    target = obj
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = SLOT
    return json.dumps(obj).replace(json.dumps(SLOT), raw, 1)


# A rating (or a whole rating slot) that is not an integer 1-5: (name, raw JSON, what the reason says).
BAD_RATINGS = [
    ("5001-digit int", "1" * 5001, "number of 5001 characters"),
    ("4300-digit int", "9" * 4300, "number of 4300 characters"),
    ("40-digit int", "1" * 40, "number of 40 characters"),
    ("20-digit int", "1" * 20, "less than or equal to 5"),
    ("1e999", "1e999", "out of range"),
    ("-1e999", "-1e999", "out of range"),
    ("NaN", "NaN", "NaN is not a JSON value"),
    ("Infinity", "Infinity", "Infinity is not a JSON value"),
    ("-Infinity", "-Infinity", "-Infinity is not a JSON value"),
    ("true", "true", "valid integer"),
    ("false", "false", "valid integer"),
    ("null", "null", "valid integer"),
    ("string digit", '"4"', "valid integer"),
    ("arabic digit", '"\\u0664"', "valid integer"),
    ("float 4.0", "4.0", "valid integer"),
    ("float 4.5", "4.5", "valid integer"),
    ("exponent 4e0", "4e0", "valid integer"),
    ("1e-999", "1e-999", "valid integer"),
    ("zero", "0", "greater than or equal to 1"),
    ("negative zero", "-0", "greater than or equal to 1"),
    ("six", "6", "less than or equal to 5"),
    ("list", "[4]", "valid integer"),
    ("object", '{"value": 4}', "valid integer"),
    ("50,000 nested arrays", DEEP, f"at most {MAX_DEPTH} are read"),
    ("20,000 nested objects", '{"a":' * 20_000 + "4" + "}" * 20_000, f"at most {MAX_DEPTH} are read"),
]
# A rationale that is not text any file can hold, or too much of it.
BAD_RATIONALES = [
    ("lone high surrogate", '"why \\ud800"', "not valid Unicode"),
    ("lone low surrogate", '"why \\udfff"', "not valid Unicode"),
    ("raw NUL in a string", '"why \x00 not"', "Invalid control character"),
    ("huge string", '"' + "x" * MAX_ANSWER_CHARS + '"', f"at most {MAX_ANSWER_CHARS:,} are read"),
    ("number", "7", "valid string"),
    ("nested", '{"text": "why"}', "valid string"),
]


def good_paper() -> dict:
    return one_principle([5, 1, 4, 2], "empathy")


# Whole answers that are not the object asked for: (name, text, what the reason says).
BAD_TEXTS = [
    ("empty", "", "no JSON object found"),
    ("prose", "I would rate them all 4.", "no JSON object found"),
    ("list of ratings", "[4, 2, 3, 1]", "no JSON object found"),
    ("bare number", "4", "no JSON object found"),
    ("bare string", '"4"', "no JSON object found"),
    ("null", "null", "no JSON object found"),
    ("truncated", json.dumps(good_paper())[:90], "no JSON object found"),
    ("unbalanced", "{" + json.dumps(good_paper()), "not JSON"),
    ("wrong keys", json.dumps({"rating": 4, "rationale": "fine"}), "response_1_rating"),
    ("duplicated key", json.dumps(good_paper())[:-1] + ', "response_1_rating": 1}', "appears twice"),
    ("fence with bad content", "```json\n" + with_raw(good_paper(), ["response_1_rating"], "1" * 5001) + "\n```",
     "number of 5001 characters"),
    ("NUL between tokens", json.dumps(good_paper()).replace(", ", ",\x00 ", 1), "not JSON"),
    ("1 MB of prose", "I hear you. " * 90_000, f"at most {MAX_ANSWER_CHARS:,} are read"),
    ("brackets only", "{" * 60_000 + "}" * 60_000, f"at most {MAX_DEPTH} are read"),
]


def paper_cases() -> list[tuple[str, str, str]]:
    """Every bad case as a per-principle judge answer (the paper's keys)."""
    cases = [(name, with_raw(good_paper(), ["response_1_rating"], raw), says) for name, raw, says in BAD_RATINGS]
    cases += [(f"rationale: {name}", with_raw(good_paper(), ["rationale_2"], raw), says)
              for name, raw, says in BAD_RATIONALES]
    return cases + BAD_TEXTS


PAPER_CASES = paper_cases()
assert len(PAPER_CASES) >= 40


@pytest.mark.parametrize("name, text, says", PAPER_CASES, ids=[c[0] for c in PAPER_CASES])
def test_every_bad_judge_answer_is_invalid_with_its_reason(name, text, says):
    with pytest.raises(InvalidAnswer) as err:
        parse_answer(text, all_principles=False)
    assert says in str(err.value) and "\n" not in str(err.value) and len(str(err.value)) < 300


SCHEMA_LEVEL = ("valid integer", "valid string", "greater than", "less than", "response_1_rating")
JSON_CASES = [(n, t) for n, t, says in PAPER_CASES if not any(w in says for w in SCHEMA_LEVEL)]


@pytest.mark.parametrize("name, text", JSON_CASES, ids=[n for n, _ in JSON_CASES])
def test_every_reader_of_model_output_refuses_what_breaks_json(name, text):
    """What breaks JSON itself is refused by the pairwise judge, the ranker and the topic classifier too, with
    the poison under their own answer key."""
    with pytest.raises(InvalidAnswer):
        parse_pairwise(text.replace('"response_1_rating"', '"better"'))
    assert parse_ranker(text.replace('"response_1_rating"', '"better"')) is None
    assert parse_topic(text.replace('"response_1_rating"', '"topic"')) is None


@pytest.mark.parametrize("raw", ["1" * 5001, "1e999", "NaN", DEEP, '"\\ud800"', "true"])
def test_the_other_readers_refuse_a_poisoned_value_under_their_own_key(raw):
    with pytest.raises(InvalidAnswer):
        parse_pairwise(with_raw({"better": "A"}, ["better"], raw))
    assert parse_ranker(with_raw({"better": 1}, ["better"], raw)) is None
    assert parse_topic(with_raw({"topic": "Anxiety"}, ["topic"], raw)) is None


def test_valid_edges_are_still_read():
    good = good_paper()
    assert parse_answer(json.dumps(good | {"rationale_1": "nul \u0000 and emoji \U0001f600"}), False)[""][0][0] == 5
    assert extract_json("```\n" + json.dumps({"a": [[[1]]]}) + "\n```") == {"a": [[[1]]]}
    assert extract_json(json.dumps({"a": -12345678901234567890})) == {"a": -12345678901234567890}
    assert parse_topic('{"topic": "anxiety"}') == "Anxiety" and parse_ranker('{"better": 2}') == 2


def test_a_fuzzed_answer_is_either_valid_or_invalid_never_a_crash():
    """Seeded mutations of valid answers (cut, duplicated, poisoned at random places): every result is a
    rating 1-5 with savable text, or InvalidAnswer."""
    rng = random.Random(16)
    poisons = ["1" * 5001, "1e999", "NaN", "[" * 3000, "{" * 3000, '"\\ud800"', "\x00", "true", "-0", "]", "}",
               '"', "\\", ",", ":", '{"a":1,"a":2}', "```", "\\u0000", "4.0", "null"]
    seen = {"valid": 0, "invalid": 0}
    for _ in range(3000):
        text = json.dumps(good_paper() if rng.random() < 0.5 else {p: one_principle([1, 2, 3, 4], p)
                                                                 for p in PRINCIPLE_NAMES})
        for _ in range(rng.randint(1, 3)):
            at = rng.randrange(len(text) + 1)
            op = rng.random()
            if op < 0.6:
                text = text[:at] + rng.choice(poisons) + text[at:]
            elif op < 0.8:
                text = text[:at] + text[at + rng.randint(1, 20):]
            else:
                text = text[:at] + text[at:at + rng.randint(1, 40)] * 2 + text[at:]
        for all_principles in (False, True):
            try:
                parsed = parse_answer(text, all_principles)
            except InvalidAnswer:
                seen["invalid"] += 1
                continue
            seen["valid"] += 1
            for rows in parsed.values():
                assert all(type(r) is int and 1 <= r <= 5 for r, _ in rows)
                assert all(isinstance(t, str) and t.encode("utf-8") for _, t in rows)
    assert seen["valid"] > 50 and seen["invalid"] > 3000


# --- the judge stage over real HTTP: first run, then a rerun over the cached answers -------------------------

def compact_cases() -> list[tuple[str, str, str]]:
    """Bad cases as answers in the judge's default all-principles (compact) format: (name, poison, reason)."""
    cases = [(f"rating {n}", raw, says) for n, raw, says in BAD_RATINGS]
    cases += [(f"rationale {n}", raw, says) for n, raw, says in BAD_RATIONALES if n != "number"]
    return cases + [("text " + n, text, says) for n, text, says in BAD_TEXTS if n not in ("wrong keys", "duplicated key")]


STAGE_CASES = compact_cases()


def poisoned(body: dict) -> str:
    """The judge's answer: valid for speeches past the cases, else the case's poison in every attempt."""
    good = reading_judge(body)
    prompt = body["messages"][-1]["content"]
    number = int(re.search(r"Client (\d+) cannot sleep", prompt).group(1))
    if number >= len(STAGE_CASES):
        return good
    name, raw, _ = STAGE_CASES[number]
    if name.startswith("rating"):
        return with_raw(json.loads(good), [PRINCIPLE_NAMES[3], 2, 0], raw)
    if name.startswith("rationale"):
        return with_raw(json.loads(good), [PRINCIPLE_NAMES[6], 1, 1], raw)
    return raw


def test_bad_answers_end_in_quarantine_and_a_rerun_over_the_cache_sends_nothing(tmp_path):
    n_good = 2
    write_inputs(tmp_path, n_speeches=len(STAGE_CASES) + n_good)
    with serve_faults(responder=poisoned) as server:
        recipe = validate_recipe({"work_dir": str(tmp_path), "seed": 3, "judge": {
            "endpoint": {"backend": "openai", "model": "judge", "base_url": server.base_url, "timeout": 20,
                         "max_retries": 0}, "mode": "all_principles", "max_attempts": 2, "concurrency": 2}})

        def judge():
            with Runtime(recipe.work_dir, [recipe.judge.endpoint]) as rt:
                return run_judge(recipe.judge, recipe.work_dir, rt, seed=recipe.seed)

        first = judge()
        asked = len(server.calls())
        assert asked == 2 * len(STAGE_CASES) + n_good
        held = {q["speech_id"]: q for q in quarantine(tmp_path)}
        assert sorted(held, key=lambda s: int(s[3:])) == [f"sp-{i}" for i in range(len(STAGE_CASES))]
        for i, (name, _, says) in enumerate(STAGE_CASES):
            errors = held[f"sp-{i}"]["errors"]
            assert len(errors) == 2 and all(e and "\n" not in e for e in errors), (name, errors)
            if not any(w in says for w in SCHEMA_LEVEL):  # the compact format words schema problems its own way
                assert says in errors[0], (name, errors)
        complete = {r["speech_id"]: r["complete"] for r in first}
        assert [s for s, ok in complete.items() if ok] == [f"sp-{len(STAGE_CASES) + i}" for i in range(n_good)]

        again = judge()  # every answer, good or poisoned, now comes from the cache
        assert len(server.calls()) == asked  # zero requests
        assert {q["speech_id"]: q["errors"] for q in quarantine(tmp_path)} == {s: q["errors"] for s, q in held.items()}
        assert again["overall"] == first["overall"]
        ledger = json.loads((tmp_path / "judge_ledger.json").read_text())
        assert ledger["quarantined"] == len(STAGE_CASES) and ledger["calls"] == asked


def test_a_lone_surrogate_in_the_served_text_is_cached_and_rated(tmp_path):
    """A server whose JSON escapes a lone surrogate in the answer text (\\ud800): the text is kept with U+FFFD
    in its place, so the call is cached (a rerun pays nothing) and the ratings save."""
    write_inputs(tmp_path, n_speeches=1)
    served = {}

    def responder(body):
        good = json.loads(reading_judge(body))
        good[PRINCIPLE_NAMES[0]][0][1] = SLOT
        served["text"] = json.dumps(good).replace(SLOT, "why \ud800 this")
        return served["text"]

    with serve_faults(responder=responder) as server:
        recipe = validate_recipe({"work_dir": str(tmp_path), "judge": {
            "endpoint": {"backend": "openai", "model": "judge", "base_url": server.base_url, "max_retries": 0},
            "mode": "all_principles", "max_attempts": 1}})
        for _ in range(2):
            with Runtime(recipe.work_dir, [recipe.judge.endpoint]) as rt:
                ds = run_judge(recipe.judge, recipe.work_dir, rt, seed=1)
        assert len(server.calls()) == 1 and all(ds["complete"])
    assert "why \ufffd this" in "".join(r[f"{PRINCIPLE_NAMES[0]}_rationale"] for r in ds)


@pytest.mark.parametrize("raw", ["1" * 5001, DEEP, "NaN", '"\\ud800"'])
def test_the_pairwise_judge_reports_a_poisoned_verdict_missing_and_reruns_for_free(tmp_path, raw):
    with serve_faults(responder=lambda body: with_raw({"better": "A"}, ["better"], raw)) as server:
        cfg = PairwiseJudgeConfig(endpoint={"backend": "openai", "model": "j", "base_url": server.base_url,
                                            "max_retries": 0}, max_attempts=2)
        pairs = [Pair("s-1", "I feel alone.", "I hear you.", "Cheer up.")]
        for _ in range(2):
            with Runtime(tmp_path, [cfg.endpoint]) as rt:
                [row] = judge_pairs(cfg, rt, pairs)
        assert len(server.calls()) == 2 * 2  # two orders x two attempts, none asked again
    assert row["verdict_A"] is None and row["verdict_B"] is None and len(row["errors_A"]) == 2
