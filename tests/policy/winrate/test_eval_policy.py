"""The win-rate evaluation with fake backends: the pairwise judge step (both orders, mapping back, swap
consistency, cache, invalid answers), the length-constrained prompt, the test-speech loader, the recipes,
and `psycopref policy eval` end to end (JSON, markdown, PNG)."""

from __future__ import annotations

import json
import re

import pytest
import yaml
from datasets import Dataset, DatasetDict

from hub_tools.cli import main
from hub_tools.config import Endpoint, RecipeError, load_any, validate
from hub_tools.paper.principles import principles
from hub_tools.paper.prompts import RESPONDING_PROMPT
from hub_tools.policy.winrate.config import EvalRecipe, EvalSpeeches, PairwiseJudgeConfig
from hub_tools.policy.winrate.evaluate import evaluate_policies
from hub_tools.policy.winrate.held_out import SpeechesError, load_test_speeches
from hub_tools.policy.winrate.pairwise import Pair, judge_pairs, verdict_schema
from hub_tools.policy.winrate.stats import words
from hub_tools.serving import Backend, Completion, register_backend
from hub_tools.serving.runtime import Runtime

from fakes import SCRIPT

GOOD, POOR = "[good]", "[poor]"  # what the fake judge rewards and punishes in an answer
_WANTED = re.compile(r"Answer in about (\d+) words\.$")


@register_backend("fake-counsellor")
class FakeCounsellor(Backend):
    """A policy: '[good]' for speeches tagged #win, '[poor]' for #lose; obeys a length constraint exactly,
    else answers in 30 words."""

    name = "fake-counsellor"
    supports_json_schema = False

    def chat(self, messages, params, json_schema=None):
        SCRIPT.record({"model": self.endpoint.model, "messages": messages, "params": params})
        prompt = messages[-1]["content"]
        tag = GOOD if "#win" in prompt else POOR if "#lose" in prompt else "plain"
        wanted = _WANTED.search(prompt)
        n = int(wanted.group(1)) if wanted else 30
        return Completion(" ".join([tag] + ["word"] * (n - 1)), 20, n)

    def close(self):
        pass


def shown(prompt: str) -> tuple[str, str]:
    """Response A and Response B as the pairwise prompt shows them."""
    a = prompt.split("\n\nResponse A: ", 1)[1].split("\n\nResponse B: ", 1)
    return a[0], a[1].split("\n\nAnswer with", 1)[0]


def marker_judge(call: dict) -> str:
    """Prefers the response holding [good] over one without, and one without [poor] over one with it."""
    a, b = shown(call["messages"][-1]["content"])
    va, vb = ((GOOD in r) - (POOR in r) for r in (a, b))
    return json.dumps({"better": "A" if va > vb else "B" if vb > va else "tie"})


@pytest.fixture(autouse=True)
def _script():
    SCRIPT.reset()
    yield
    SCRIPT.reset()


JUDGE = PairwiseJudgeConfig(endpoint=Endpoint(backend="fake-judge", model="judge", params={"seed": 5}),
                            max_attempts=2, concurrency=2)
PAIRS = [Pair("s-win", "I can't sleep.", f"{GOOD} you feel tired", "sleep more"),
         Pair("s-lose", "My mother is ill.", f"{POOR} deal with it", "that sounds hard"),
         Pair("s-tie", "I feel alone.", "tell me more", "who is around you?")]


def judge_calls() -> list[dict]:
    return [c for c in SCRIPT.calls if c["model"] == "judge"]


# --------------------------------------------------------------------------- the judge step

def test_both_orders_are_asked_and_mapped_back_to_the_policy(tmp_path):
    SCRIPT.answer = marker_judge
    with Runtime(tmp_path, [JUDGE.endpoint]) as rt:
        records = judge_pairs(JUDGE, rt, PAIRS, seed=1)
    assert len(judge_calls()) == 6
    for pair in PAIRS:  # the policy's answer once as A, once as B
        views = [shown(c["messages"][-1]["content"]) for c in judge_calls() if f"Client Speech: {pair.speech}" in c["messages"][-1]["content"]]
        assert sorted(views) == sorted([(pair.policy, pair.reference), (pair.reference, pair.policy)])
    by_id = {r["speech_id"]: r for r in records}
    assert (by_id["s-win"]["verdict_A"], by_id["s-win"]["verdict_B"], by_id["s-win"]["score"]) == ("A", "B", 1.0)
    assert (by_id["s-lose"]["verdict_A"], by_id["s-lose"]["verdict_B"], by_id["s-lose"]["score"]) == ("B", "A", 0.0)
    assert (by_id["s-tie"]["score_A"], by_id["s-tie"]["score_B"], by_id["s-tie"]["score"]) == (0.5, 0.5, 0.5)
    # the prompt carries every principle's Box B text; the schema asks for the verdict alone
    prompt = judge_calls()[0]["messages"][-1]["content"]
    assert all(p.full_text() in prompt for p in principles())
    assert judge_calls()[0]["schema"] == verdict_schema(None)
    assert judge_calls()[0]["schema"]["properties"]["better"]["enum"] == ["A", "B", "tie"]


def test_a_position_biased_judge_gives_ties_and_zero_swap_consistency(tmp_path):
    SCRIPT.answer = lambda call: '{"better": "A"}'  # always the first response, whatever it says
    with Runtime(tmp_path, [JUDGE.endpoint]) as rt:
        records = judge_pairs(JUDGE, rt, PAIRS, seed=1)
    assert [r["score"] for r in records] == [0.5, 0.5, 0.5]
    assert all(r["score_A"] != r["score_B"] for r in records)  # inconsistent in every speech


def test_a_rerun_asks_nothing_and_a_reason_is_a_separate_prompt(tmp_path):
    SCRIPT.answer = marker_judge
    with Runtime(tmp_path, [JUDGE.endpoint]) as rt:
        first = judge_pairs(JUDGE, rt, PAIRS, seed=1)
        again = judge_pairs(JUDGE, rt, PAIRS, seed=1)
        assert again == first and len(judge_calls()) == 6
        SCRIPT.answer = lambda call: json.dumps({**json.loads(marker_judge(call)), "reason": "warmer"})
        reasoned = JUDGE.model_copy(update={"reason_max_chars": 40})
        records = judge_pairs(reasoned, rt, PAIRS, seed=1)
    assert len(judge_calls()) == 12 and [r["score"] for r in records] == [r["score"] for r in first]
    assert records[0]["reason_A"] == "warmer"
    assert judge_calls()[-1]["schema"]["properties"]["reason"] == {"type": "string", "maxLength": 40}
    assert list(judge_calls()[-1]["schema"]["properties"]) == ["reason", "better"]  # the reason comes first


def test_invalid_answers_are_retried_with_the_next_seed_then_counted_missing(tmp_path):
    def flaky(call):
        prompt = call["messages"][-1]["content"]
        if "I feel alone" in prompt:
            return "I cannot decide."  # never valid
        if "I can't sleep" in prompt and call["params"]["seed"] == 5:
            return '{"better": "C"}'  # invalid on the first attempt only
        return marker_judge(call)

    SCRIPT.answer = flaky
    with Runtime(tmp_path, [JUDGE.endpoint]) as rt:
        records = judge_pairs(JUDGE, rt, PAIRS, seed=1)
    by_id = {r["speech_id"]: r for r in records}
    assert by_id["s-win"]["score"] == 1.0 and len(by_id["s-win"]["errors_A"]) == 1
    assert sorted(c["params"]["seed"] for c in judge_calls() if "I can't sleep" in c["messages"][-1]["content"]) == [5, 5, 6, 6]
    missing = by_id["s-tie"]
    assert missing["score"] is None and missing["verdict_A"] is None and missing["verdict_B"] is None
    assert missing["raw_A"] == "I cannot decide." and len(missing["errors_B"]) == JUDGE.max_attempts
    assert by_id["s-lose"]["score"] == 0.0


# --------------------------------------------------------------------------- test speeches and recipes

def _repo(tmp_path, speeches: list[dict], pairs: list[dict]):
    """A dataset repo folder with a `speeches` and a `pairs` config, each with a test split."""
    root = tmp_path / "repo"
    for config, rows in (("speeches", speeches), ("pairs", pairs)):
        (root / config).mkdir(parents=True)
        Dataset.from_list(rows).to_parquet(str(root / config / "test-00000-of-00001.parquet"))
    configs = [{"config_name": c, "data_files": [{"split": "test", "path": f"{c}/test-*.parquet"}]} for c in ("speeches", "pairs")]
    (root / "README.md").write_text("---\n" + yaml.safe_dump({"configs": configs}) + "---\n")
    return root


SPEECHES = [
    {"id": "sp-0", "text": "Speech zero #win: exams scare me.", "topic_coarse": "Core Mental Health Issues"},
    {"id": "sp-1", "text": "Speech one #lose: my partner left.", "topic_coarse": "Relationships and Interpersonal Dynamics"},
    {"id": "sp-2", "text": "Speech two: I moved to a new city.", "topic_coarse": "Core Mental Health Issues"},
    {"id": "sp-3", "text": "Speech three #win: my friend ignores me.", "topic_coarse": "Relationships and Interpersonal Dynamics"},
    {"id": "sp-4", "text": "Speech four #win: I lost my job.", "topic_coarse": None},
]


def test_test_speeches_from_a_repo_folder_its_pairs_config_and_a_saved_folder(tmp_path):
    pairs = [{"ID": s["id"], "question": s["text"], "prefID": k, "topic_coarse": s["topic_coarse"]}
             for s in SPEECHES for k in range(2)]  # two pairs per speech
    root = _repo(tmp_path, SPEECHES, pairs)
    from_speeches = load_test_speeches(EvalSpeeches(path=str(root)))
    from_pairs = load_test_speeches(EvalSpeeches(path=str(root), config="pairs"))
    assert from_speeches.to_list() == from_pairs.to_list()  # one row per speech ID
    assert from_speeches["id"] == [s["id"] for s in SPEECHES] and from_speeches["topic_coarse"][-1] == "Unlabelled"
    subset = load_test_speeches(EvalSpeeches(path=str(root), limit=3), seed=1)
    assert len(subset) == 3 and set(subset["id"]) < set(from_speeches["id"])
    assert load_test_speeches(EvalSpeeches(path=str(root), limit=3), seed=1).to_list() == subset.to_list()
    DatasetDict({"train": from_speeches.select([0]), "test": from_speeches}).save_to_disk(str(tmp_path / "split"))
    assert load_test_speeches(EvalSpeeches(path=str(tmp_path / "split"))).to_list() == from_speeches.to_list()
    with pytest.raises(SpeechesError, match=r"no split 'dev' \(has train, test\)"):
        load_test_speeches(EvalSpeeches(path=str(tmp_path / "split"), split="dev"))
    Dataset.from_list([{"speech": "x"}]).save_to_disk(str(tmp_path / "odd"))
    with pytest.raises(SpeechesError, match=r"columns \['speech'\]; expected id and text"):
        load_test_speeches(EvalSpeeches(path=str(tmp_path / "odd")))
    with pytest.raises(SpeechesError, match="speeches.path .*nowhere.* cannot be read"):
        load_test_speeches(EvalSpeeches(path=str(tmp_path / "nowhere")))


@pytest.mark.parametrize("path", sorted(__import__("pathlib").Path(__file__).parents[3].glob("recipes/*/eval/config_*.yaml")),
                         ids=lambda p: p.parent.parent.name + "/" + p.name)
def test_every_eval_recipe_parses(path):
    recipe = load_any(path)
    assert isinstance(recipe, EvalRecipe) and recipe.settings == ["free", "length_matched"]
    assert recipe.bootstrap.samples >= 1000 and recipe.bootstrap.confidence == 0.95
    for ep in recipe.endpoints():
        assert ep.base_url, f"{path}: {ep.model} has no base_url"


def test_recipe_rules_name_the_key():
    base = {"policies": [{"name": "p", "model": "m"}], "reference": {"name": "r", "model": "g"},
            "judge": {"endpoint": {"model": "j"}}}
    assert validate(EvalRecipe, base).settings == ["free", "length_matched"]
    with pytest.raises(RecipeError, match="names must be unique, repeated: p"):
        validate(EvalRecipe, {**base, "policies": [{"name": "p", "model": "m"}, {"name": "p", "model": "n"}]})
    with pytest.raises(RecipeError, match="a name is also a folder name"):
        validate(EvalRecipe, {**base, "policies": [{"name": "../p", "model": "m"}]})
    with pytest.raises(RecipeError, match="settings: .*must not repeat"):
        validate(EvalRecipe, {**base, "settings": ["free", "free"]})
    with pytest.raises(RecipeError, match="settings.0: Input should be 'free' or 'length_matched'"):
        validate(EvalRecipe, {**base, "settings": ["short"]})


# --------------------------------------------------------------------------- end to end

def _recipe(tmp_path, root) -> dict:
    return {
        "work_dir": str(tmp_path / "eval"), "seed": 3,
        "speeches": {"path": str(root), "config": "speeches", "split": "test"},
        "policies": [{"name": "counsellor", "backend": "fake-counsellor", "model": "counsellor-v1", "params": {"seed": 3}}],
        "reference": {"name": "reference", "backend": "fake-gen", "model": "model-ref"},
        "concurrency": 2,
        "judge": {"endpoint": {"backend": "fake-judge", "model": "judge", "params": {"seed": 5}}, "concurrency": 2},
        "bootstrap": {"samples": 200, "confidence": 0.9},
    }


def test_eval_policy_end_to_end(tmp_path, capsys):
    SCRIPT.answer = marker_judge
    root = _repo(tmp_path, SPEECHES, [])
    path = tmp_path / "recipes" / "m" / "eval" / "config_test.yaml"
    path.parent.mkdir(parents=True)
    path.write_text(yaml.safe_dump(_recipe(tmp_path, root)))
    assert main(["policy", "eval", str(path), "--bootstrap.samples", "100"]) == 0
    printed = capsys.readouterr().out
    work = tmp_path / "eval"
    results = json.loads((work / "winrate.json").read_text())
    # hand-made expectation: #win speeches are won, #lose lost, the plain one a tie, in both settings
    expected = {s["id"]: 1.0 if "#win" in s["text"] else 0.0 if "#lose" in s["text"] else 0.5 for s in SPEECHES}
    ref_calls = {c["messages"][-1]["content"]: c for c in SCRIPT.calls if c["model"] == "model-ref"}
    assert len(ref_calls) == len(SPEECHES)  # the reference answers once, for both settings
    for setting in ("free", "length_matched"):
        s = results["policies"]["counsellor"]["settings"][setting]
        assert s["win_rate"] == pytest.approx(sum(expected.values()) / len(SPEECHES))
        assert (s["wins"], s["ties"], s["losses"], s["n_missing"], s["swap_consistency"]) == (3, 1, 1, 0, 1.0)
        low, high = s["ci"]
        assert low <= s["win_rate"] <= high
        core = s["topics"]["Core Mental Health Issues"]
        assert (core["n"], core["win_rate"]) == (2, 0.75)
        assert list(s["topics"]) == ["Core Mental Health Issues", "Relationships and Interpersonal Dynamics", "Unlabelled"]
        rows = [json.loads(line) for line in (work / "policies" / "counsellor" / setting / "verdicts.jsonl").read_text().splitlines()]
        assert {r["speech_id"]: r["score"] for r in rows} == expected
    # the length-matched policy was asked for the reference's word count for its speech, and met it
    policy_calls = [c for c in SCRIPT.calls if c["model"] == "counsellor-v1"]
    rows = {json.loads(x)["speech_id"]: json.loads(x) for x in (work / "policies/counsellor/length_matched/verdicts.jsonl").read_text().splitlines()}
    for sp in SPEECHES:
        plain = RESPONDING_PROMPT.format(client_speech=sp["text"])
        asked = [c["messages"][-1]["content"] for c in policy_calls if c["messages"][-1]["content"].startswith(plain)]
        n_ref = words(rows[sp["id"]]["reference_answer"])
        assert sorted(asked) == [plain, plain + f"\n\nAnswer in about {n_ref} words."]  # free: the prompt unchanged
    settings = results["policies"]["counsellor"]["settings"]
    assert settings["length_matched"]["length_ratio"] == 1.0 != settings["free"]["length_ratio"]
    # markdown: printed and written, both settings, the topics as columns; figure written
    md = (work / "winrate.md").read_text()
    assert md in printed and "| counsellor | w/ length constraint | 70.0 [" in md
    assert ("| Policy | Setting | Core Mental Health Issues | Relationships and Interpersonal Dynamics | Unlabelled "
            "| Overall |") in md
    png = (work / "figures" / "winrate_topics.png").read_bytes()
    assert png.startswith(b"\x89PNG")
    assert results["judge"]["ledger"]["calls"] == 2 * 2 * len(SPEECHES)

    # a rerun asks no model anything and writes the same bytes
    before = len(SCRIPT.calls)
    out = evaluate_policies(load_any(path, {"bootstrap": {"samples": 100}}))
    assert len(SCRIPT.calls) == before
    assert out.results == results and out.figure_path.read_bytes() == png


def test_an_in_process_vllm_judge_gets_both_orders_of_every_pair_in_one_batch(fake_vllm, tmp_path):
    judge = PairwiseJudgeConfig(endpoint=Endpoint(backend="vllm", model="/models/judge", params={"seed": 5}))
    with Runtime(tmp_path, [judge.endpoint]) as rt:
        records = judge_pairs(judge, rt, PAIRS, seed=1)
        assert rt.cache.ledger()["calls"] == 6
    (call,) = fake_vllm.LLM.calls  # 3 pairs x 2 orders, one engine call
    assert len(call["conversations"]) == 6
    assert call["sampling_params"][0].structured_outputs.json == verdict_schema(None)
    assert [r["speech_id"] for r in records] == ["s-win", "s-lose", "s-tie"]
    assert all(r["verdict_A"] is not None and r["verdict_B"] is not None for r in records)  # read back from the cache
