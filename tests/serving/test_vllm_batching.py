"""In-process vLLM against a stand-in `vllm` package that implements vLLM's documented offline API
(tests/helpers/fake_vllm): a stage's generation reaches the engine in one `LLM.chat` per model, answers
map back to their speech, member and sample, each is cached under the key a single call would use, and
structured output is asked for with vLLM >= 0.12's `structured_outputs`."""

from __future__ import annotations

import pytest
from datasets import Dataset

from hub_tools.config import Endpoint, Responder
from hub_tools.generate.config import GenerateConfig
from hub_tools.generate.stage import run_generate
from hub_tools.paper.prompts import responding_messages
from hub_tools.serving import ChatRequest, make_backend
from hub_tools.serving.runtime import Runtime


@pytest.fixture
def vllm(fake_vllm):
    return fake_vllm


SPEECHES = Dataset.from_list([{"id": f"s{i}", "text": f"I feel stuck at step {i} of my life."} for i in range(6)])


def pool(seed: int | None = 7) -> list[Responder]:
    params = {"temperature": 0.8, "max_tokens": 64, "tensor_parallel_size": 1, **({"seed": seed} if seed is not None else {})}
    return [Responder(backend="vllm", model="/models/policy", name="plain", params=params),
            Responder(backend="vllm", model="/models/policy", name="brief", system_prompt="Be brief.", params=params)]


def test_a_stage_reaches_the_engine_in_one_call_and_answers_map_back(vllm, tmp_path):
    cfg = GenerateConfig(pool=pool(), members_per_speech=2, samples_per_member=3)
    with Runtime(tmp_path, cfg.pool) as rt:
        ds = run_generate(cfg, tmp_path, rt, speeches=SPEECHES)
        assert len(ds) == 6 * 2 * 3
        assert len(vllm.LLM.instances) == 1  # both members use one engine (same model and settings)
        assert len(vllm.LLM.calls) == 1 and len(vllm.LLM.calls[0]["conversations"]) == 36
        sent = vllm.LLM.calls[0]["sampling_params"]
        assert sorted({p.seed for p in sent}) == [7, 8, 9] and {p.max_tokens for p in sent} == {64}
        for row in ds:  # every answer is its own speech's, member's and sample's
            speech, rest = row["response_id"].split(":")
            member, sample = rest.split("#")
            assert row["speech_id"] == speech and row["member"] == member
            assert f"step {speech[1:]} of my life.]" in row["response"]
            assert ("system=Be brief." in row["response"]) == (member == "brief")
            assert f"seed={7 + int(sample)} " in row["response"]
            assert row["prompt_tokens"] > 0 and row["completion_tokens"] > 0
        # each answer is cached under the key of a single call: the one-call path finds it
        member = cfg.pool[1]
        messages = responding_messages(SPEECHES[2]["text"], member.system_prompt, None)
        single, hit = rt.call(member, messages, stage="generate", params={**member.params, "seed": 8},
                              extra_key={"member": "brief", "system_prompt": "Be brief.", "sample": 1})
        assert hit and single.text == ds.filter(lambda r: r["response_id"] == "s2:brief#1")[0]["response"]
    with Runtime(tmp_path, cfg.pool) as rt:  # a rerun asks the engine nothing
        again = run_generate(cfg, tmp_path, rt, speeches=SPEECHES)
    assert len(vllm.LLM.calls) == 1 and again.to_list() == ds.to_list()


def test_unseeded_samples_of_one_prompt_are_one_request_with_n(vllm, tmp_path):
    cfg = GenerateConfig(pool=pool(seed=None)[:1], members_per_speech=1, samples_per_member=4)
    with Runtime(tmp_path, cfg.pool) as rt:
        ds = run_generate(cfg, tmp_path, rt, speeches=SPEECHES)
    (call,) = vllm.LLM.calls
    assert len(call["conversations"]) == 6 and {p.n for p in call["sampling_params"]} == {4}
    by_speech = {}
    for row in ds:
        by_speech.setdefault(row["speech_id"], set()).add(row["response"])
    assert all(len(answers) == 4 for answers in by_speech.values())  # 4 distinct samples each, none lost


def test_engine_settings_and_structured_outputs_use_the_current_api(vllm):
    ep = Endpoint(backend="vllm", model="/models/judge", params={"tensor_parallel_size": 2, "max_model_len": 4096,
                                                                  "temperature": 0.0, "max_tokens": 32})
    backend = make_backend(ep)
    assert backend.batches and vllm.LLM.instances[0].engine_args == {"tensor_parallel_size": 2, "max_model_len": 4096}
    schema = {"type": "object", "properties": {"topic": {"type": "string", "enum": ["Aging", "Anxiety"]}},
              "required": ["topic"]}
    answers = backend.chat_many([ChatRequest([{"role": "user", "content": "classify me"}], ep.params, schema),
                                 ChatRequest([{"role": "user", "content": "hello"}], ep.params)])
    assert answers[0].text == '{"topic": "Aging"}' and answers[1].text.startswith("reply to [hello]")
    sent = vllm.LLM.calls[0]["sampling_params"]
    assert isinstance(sent[0].structured_outputs, vllm.StructuredOutputsParams)
    assert sent[0].structured_outputs.json == schema and sent[1].structured_outputs is None
    assert sent[0].temperature == 0.0 and not hasattr(sent[0], "guided_decoding")


def test_a_failed_engine_batch_keeps_the_batches_before_it_and_a_rerun_sends_only_the_rest(vllm, tmp_path, monkeypatch):
    import hub_tools.serving.runtime as runtime
    from hub_tools.errors import StageError

    monkeypatch.setattr(runtime, "ENGINE_BATCH", 5)  # 12 answers: engine calls of 5, 5 and 2
    cfg = GenerateConfig(pool=pool()[:1], members_per_speech=1, samples_per_member=2)
    real = vllm.LLM.chat

    def second_fails(self, messages, *args, **kwargs):
        if len(vllm.LLM.calls) == 1:
            vllm.LLM.calls.append({"failed": True})
            raise RuntimeError("CUDA out of memory")
        return real(self, messages, *args, **kwargs)

    monkeypatch.setattr(vllm.LLM, "chat", second_fails)
    with Runtime(tmp_path, cfg.pool) as rt, pytest.raises(StageError, match=r"5 of 12 calls finished and cached"):
        run_generate(cfg, tmp_path, rt, speeches=SPEECHES)
    monkeypatch.setattr(vllm.LLM, "chat", real)
    vllm.LLM.calls.clear()
    with Runtime(tmp_path, cfg.pool) as rt:
        ds = run_generate(cfg, tmp_path, rt, speeches=SPEECHES)
    assert [len(c["conversations"]) for c in vllm.LLM.calls] == [5, 2] and len(ds) == 12
