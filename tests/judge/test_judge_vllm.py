"""The judge on an in-process vLLM engine (the stand-in of tests/helpers/fake_vllm): every first attempt
reaches the engine in one batch, schema-constrained through `structured_outputs`, each answer cached under
the key of its online call, so the rating pass reads them all from the cache and a rerun asks nothing."""

from __future__ import annotations

import pytest
from test_judge import make_recipe, write_inputs

from hub_tools.judge.stage import run_judge
from hub_tools.serving.runtime import Runtime


@pytest.mark.parametrize("mode", ["per_principle", "all_principles"])
def test_first_attempts_reach_the_engine_in_one_batch(fake_vllm, tmp_path, mode):
    write_inputs(tmp_path, n_speeches=3)
    recipe = make_recipe(tmp_path, mode, endpoint={"backend": "vllm", "model": "/models/judge",
                                                   "params": {"temperature": 0.0, "seed": 5, "max_tokens": 512}})
    with Runtime(tmp_path, [recipe.judge.endpoint]) as rt:
        ratings = run_judge(recipe.judge, tmp_path, rt, seed=recipe.seed)
        assert rt.cache.ledger("judge")["calls"] == (21 if mode == "per_principle" else 3)
    (call,) = fake_vllm.LLM.calls  # one engine call for the whole stage
    assert len(call["conversations"]) == (21 if mode == "per_principle" else 3)
    assert all(p.structured_outputs is not None and p.structured_outputs.json for p in call["sampling_params"])
    assert len(ratings) == 3 * 4 and (tmp_path / "quarantine.jsonl").read_text() == ""
    with Runtime(tmp_path, [recipe.judge.endpoint]) as rt:
        assert run_judge(recipe.judge, tmp_path, rt, seed=recipe.seed).to_list() == ratings.to_list()
    assert len(fake_vllm.LLM.calls) == 1
