"""The stages as plain functions: generate -> judge -> pairs called directly, as an iterative-DPO round
calls them, with hand-made config sections, a fresh work folder and one pool member; plus the
pipeline's wiring of a recipe to the stages."""

from __future__ import annotations

import json
import re

import pytest
from datasets import Dataset

from hub_tools.config import Endpoint, RecipeError, Responder
from hub_tools.dataset.pipeline import STAGES, validate_recipe
from hub_tools.generate.config import GenerateConfig
from hub_tools.generate.stage import run_generate
from hub_tools.judge.config import JudgeConfig
from hub_tools.judge.stage import run_judge
from hub_tools.pairs.config import PairsConfig
from hub_tools.pairs.stage import run_pairs
from hub_tools.paper.principles import PRINCIPLE_NAMES
from hub_tools.serving import Backend, Completion, register_backend
from hub_tools.serving.runtime import Runtime

from fakes import SCRIPT, shown_qualities

QUALITY_OF_SEED = {11: 5, 12: 1, 13: 3, 14: 2}  # the policy's answer quality depends on its sampling seed


@register_backend("fake-policy")
class FakePolicy(Backend):
    """One policy whose answer quality follows the seed it is sampled with (like temperature sampling)."""

    name = "fake-policy"
    supports_json_schema = False

    def chat(self, messages, params, json_schema=None):
        SCRIPT.record({"model": self.endpoint.model, "messages": messages, "params": params})
        speech = messages[-1]["content"].split("Client Speech: ", 1)[1]
        return Completion(f"quality {QUALITY_OF_SEED[params['seed']]} answer to {speech[:20]}", 30, 8)

    def close(self):
        pass


def quality_judge(call: dict) -> str:
    """Rates each shown response by its quality on every principle, so overall scores differ by whole points."""
    qualities = shown_qualities(call["messages"][-1]["content"])
    return json.dumps({k: v for i, q in enumerate(qualities, start=1)
                       for k, v in ((f"response_{i}_rating", q), (f"rationale_{i}", f"quality {q}"))})


@pytest.fixture(autouse=True)
def _script():
    SCRIPT.reset()
    yield
    SCRIPT.reset()


def test_generate_judge_pairs_called_directly_for_one_policy(tmp_path):
    speeches = Dataset.from_list([{"id": f"sp-{i}", "text": f"Client {i}: I cannot stop worrying about my exams.",
                                   "source": "bundled", "topic_fine": "Anxiety",
                                   "topic_coarse": "Core Mental Health Issues"} for i in range(6)])
    policy = Responder(name="policy-round-1", backend="fake-policy", model="policy", params={"seed": 11})
    generate = GenerateConfig(pool=[policy], members_per_speech=1, samples_per_member=4, concurrency=2)
    judge = JudgeConfig(endpoint=Endpoint(backend="fake-judge", model="judge", params={"seed": 3}), concurrency=2)
    SCRIPT.answer = quality_judge
    work = tmp_path / "round-1"  # fresh: no speeches stage ran here, nothing else on disk

    with Runtime(work, [policy, judge.endpoint]) as rt:
        responses = run_generate(generate, work, rt, seed=7, speeches=speeches)
        ratings = run_judge(judge, work, rt, seed=7, speeches=speeches)
    pairs = run_pairs(PairsConfig(test_size=2), work, seed=7, speeches=speeches)

    # generate: 4 samples of the one policy per speech, each with its own seed and response id
    assert len(responses) == 6 * 4 and set(responses["member"]) == {"policy-round-1"}
    assert sorted(responses.filter(lambda r: r["speech_id"] == "sp-0")["response_id"]) == [
        f"sp-0:policy-round-1#{j}" for j in range(4)]
    policy_calls = [c for c in SCRIPT.calls if c["model"] == "policy"]
    assert sorted(c["params"]["seed"] for c in policy_calls) == sorted([11, 12, 13, 14] * 6)
    # judge: every response rated on all 7 principles by what it really is
    quality = {r["response_id"]: int(re.match(r"quality (\d)", r["response"]).group(1)) for r in responses}
    assert len(ratings) == 24 and all(ratings["complete"])
    for row in ratings:
        assert all(row[f"{p}_rating"] == quality[row["response_id"]] for p in PRINCIPLE_NAMES)
    # pairs: chosen is the better-rated answer; test holds each held-out speech's best vs worst
    assert {len(pairs["test"]), len(set(pairs["test"]["ID"]))} == {2}
    overall = {r["response_id"]: r["overall"] for r in ratings}
    for split in ("train", "test"):
        for row in pairs[split]:
            assert row["overall_chosen"] - row["overall_rejected"] >= 1 - 1e-9
            assert row["chosen_model"] == row["rejected_model"] == "policy-round-1"
    for row in pairs["test"]:
        mine = [v for k, v in overall.items() if k.startswith(row["ID"] + ":")]
        assert (row["overall_chosen"], row["overall_rejected"]) == (max(mine), min(mine))
    assert {p.name for p in work.iterdir()} >= {"responses", "ratings", "pairs", "cache.sqlite", "judge_ledger.json"}

    # a second round over the same folder repeats no call: the cache answers
    before = len(SCRIPT.calls)
    with Runtime(work, [policy, judge.endpoint]) as rt:
        again = run_generate(generate, work, rt, seed=7, speeches=speeches)
    assert len(SCRIPT.calls) == before and again.to_list() == responses.to_list()


def test_samples_per_member_without_a_seed_still_asks_each_sample(tmp_path):
    """Unseeded sampling (an API model at temperature 1): each sample is its own call and cache entry."""
    speeches = Dataset.from_list([{"id": "sp-0", "text": "I feel alone since my friend moved away."}])
    member = Responder(name="m", backend="fake-gen", model="model-a")
    cfg = GenerateConfig(pool=[member], members_per_speech=1, samples_per_member=3)
    with Runtime(tmp_path, [member]) as rt:
        out = run_generate(cfg, tmp_path, rt, speeches=speeches)
    assert len(out) == 3 and len(SCRIPT.calls) == 3
    assert len(set(out["response_id"])) == 3


def test_pipeline_wires_each_stage_to_its_section_and_endpoints():
    recipe = validate_recipe({
        "speeches": {"classifier": {"model": "c", "base_url": "managed"}},
        "generate": {"pool": [{"name": "a", "model": "m1", "base_url": "http://x"},
                              {"name": "b", "model": "m2", "base_url": "managed"}]},
        "judge": {"endpoint": {"model": "j", "base_url": "http://y"}},
    })
    assert [e.model for e in STAGES.get("speeches").endpoints(recipe)] == ["c"]
    assert [e.model for e in STAGES.get("generate").endpoints(recipe)] == ["m1", "m2"]
    assert [e.model for e in STAGES.get("judge").endpoints(recipe)] == ["j"]
    assert STAGES.get("pairs").endpoints(recipe) == []
    with pytest.raises(RecipeError, match="unknown stage 'nope'; available: dataset, generate"):
        STAGES.get("nope")


def test_moved_recipe_keys_say_where_they_went():
    with pytest.raises(RecipeError, match=r"dataset.scrub has moved to pairs.scrub"):
        validate_recipe({"dataset": {"scrub": False}})
    assert validate_recipe({"pairs": {"scrub": False}}).pairs.scrub is False
    assert json.dumps(validate_recipe({}).model_dump(mode="json"))  # defaults alone are a valid recipe


def test_the_stage_registry_drives_the_run_order(tmp_path):
    """A stage registered by a plug-in is accepted by a recipe and runs in the place its `order` gives it."""
    from hub_tools.dataset.pipeline import Stage, run_stages, stage_order

    assert stage_order() == ["speeches", "generate", "judge", "pairs", "dataset", "push"]
    recipe = {"work_dir": str(tmp_path / "w"), "stages": ["count", "speeches"],
              "speeches": {"sources": [{"name": "bundled", "limit": 5}]}}
    with pytest.raises(RecipeError, match="stages: unknown stage 'count'; available: dataset, generate"):
        validate_recipe(recipe)

    def count(r, rt):  # runs after the speeches stage, on its output
        from hub_tools.io import load_stage

        n = len(load_stage(r.work_dir, "speeches", "speeches"))
        (r.work_path / "count.txt").write_text(str(n))
        return n

    STAGES.register("count")(Stage(count, order=15, help="count the speeches"))
    try:
        assert stage_order() == ["speeches", "count", "generate", "judge", "pairs", "dataset", "push"]
        out = run_stages(validate_recipe(recipe), ["count", "speeches"])
        assert list(out) == ["speeches", "count"] and out["count"] == 5
        assert (tmp_path / "w" / "count.txt").read_text() == "5"
        from hub_tools.cli import main  # it is a command too

        path = tmp_path / "r.yaml"
        path.write_text(json.dumps({**recipe, "speeches": {"sources": [{"name": "bundled", "limit": 4}]}}))
        assert main(["dataset", "speeches", str(path)]) == 0 and main(["dataset", "count", str(path)]) == 0
        assert (tmp_path / "w" / "count.txt").read_text() == "4"
    finally:
        STAGES.unregister("count")
    assert "count" not in stage_order()
