"""The policy client (TGI Messages API / vLLM / llama.cpp through InferenceClient): what it sends, streaming,
readiness, and its behaviour under faults (429/503 with Retry-After, slow and broken streams) against the
fault-injecting server; then the same client, and `psycopref chat`, against the real llama.cpp server."""

from __future__ import annotations

import threading
import time

import pytest

from hub_tools.cli import main
from hub_tools.config import Endpoint, ServerConfig
from hub_tools.paper.prompts import RESPONDING_PROMPT
from hub_tools.serving import BackendError
from hub_tools.serving.llama_server import LlamaServer
from hub_tools.serving.policy_client import PolicyClient

from fault_server import Answer, BrokenStream, Hang, Status, refused_url, serve_faults

pytestmark = pytest.mark.timeout(120)

SPEECH = "I keep rehearsing every phone call in my head before I make it."
FAST = {"timeout": 1.0, "max_retries": 2, "max_retry_wait": 2.0}


def client(base_url: str, system_prompt: str | None = None, length_words: int | None = None, **over) -> PolicyClient:
    ep = Endpoint(backend="tgi", model="tgi", base_url=base_url, **(FAST | over))
    return PolicyClient(ep, system_prompt, length_words)


@pytest.fixture
def server():
    with serve_faults(responder=lambda body: "I hear how tiring that rehearsing must be. What happens after the call?") as srv:
        yield srv


def test_sends_the_responding_prompt_system_prompt_length_and_recipe_params(server):
    policy = client(server.url, "Be warm.", 120, params={"max_tokens": 64, "temperature": 0.7, "seed": 3, "top_k": 20})
    out = policy.answer(SPEECH)
    assert out.text.startswith("I hear how tiring") and out.completion_tokens > 0
    req = server.calls()[-1]
    assert req.path == "/v1/chat/completions"  # a TGI root URL gets the Messages API route
    assert req.body["messages"] == [
        {"role": "system", "content": "Be warm."},
        {"role": "user", "content": RESPONDING_PROMPT.format(client_speech=SPEECH) + "\n\nAnswer in about 120 words."}]
    assert (req.body["max_tokens"], req.body["temperature"], req.body["seed"], req.body["top_k"]) == (64, 0.7, 3, 20)
    assert not req.body.get("stream")
    assert "authorization" not in req.headers  # no key named: none sent, not even an HF token
    policy.answer(SPEECH, length_words=30, max_tokens=8)  # per-call overrides
    assert server.calls()[-1].body["max_tokens"] == 8
    assert server.calls()[-1].body["messages"][-1]["content"].endswith("Answer in about 30 words.")


def test_streams_piece_by_piece_as_the_server_sends(server):
    server.token_delay = 0.05
    pieces, arrivals, start = [], [], time.monotonic()
    for piece in client(server.base_url).stream(SPEECH):
        pieces.append(piece)
        arrivals.append(time.monotonic() - start)
    assert "".join(pieces) == "I hear how tiring that rehearsing must be. What happens after the call?"
    assert len(pieces) == 13 and server.calls()[-1].body["stream"] is True
    assert arrivals[-1] - arrivals[0] >= 0.4  # pieces arrived spread out, as generated, not at the end


def test_stream_opening_honours_retry_after_on_429_and_503(server):
    server.script(Status(429, retry_after="0.4"), Status(503, retry_after="0.3"))
    text = "".join(client(server.base_url).stream(SPEECH))
    assert text.startswith("I hear how tiring")
    times = [r.at for r in server.calls()]
    assert [r.behaviour for r in server.calls()] == ["status 429", "status 503", "answer"]
    assert times[1] - times[0] >= 0.38 and times[2] - times[1] >= 0.28


def test_a_server_that_stays_unavailable_is_one_error_naming_it(server):
    server.fallback = Status(503)
    with pytest.raises(BackendError, match=rf"{server.base_url} \(model tgi\) failed after 3 attempts: HTTP 503"):
        list(client(server.base_url, max_retry_wait=0.05).stream(SPEECH))
    assert len(server.calls()) == 3


def test_a_hang_before_the_stream_opens_times_out_and_is_retried(server):
    server.script(Hang(5), Hang(5))
    start = time.monotonic()
    text = "".join(client(server.base_url, max_retry_wait=0.05).stream(SPEECH))
    assert text and 1.9 <= time.monotonic() - start < 4.5  # two 1 s timeouts, then the answer
    assert [r.behaviour for r in server.calls()] == ["hang", "hang", "answer"]


@pytest.mark.parametrize("fault, why", [
    (Answer(token_delay=3.0), "no answer within the 1 s timeout"),  # a stall between two pieces
    (BrokenStream(tokens=3), "ended without a finish_reason"),
    (BrokenStream(tokens=2, error="CUDA out of memory", error_type="generation"), "GenerationError"),
])
def test_a_stream_that_breaks_off_is_not_retried(server, fault, why):
    server.script(fault)
    pieces = []
    with pytest.raises(BackendError, match="the stream broke off after") as err:
        for piece in client(server.base_url).stream(SPEECH):
            pieces.append(piece)
    assert why in str(err.value) and pieces  # shown text is never repeated by a retry
    assert len(server.calls()) == 1


def test_closing_a_stream_early_hangs_up_so_the_server_stops(server):
    server.token_delay = 0.05
    server.responder = lambda body: "word " * 200
    stream = client(server.base_url).stream(SPEECH)
    assert next(stream) and next(stream)
    stream.close()
    deadline = time.monotonic() + 3
    while not server.calls()[-1].aborted and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.calls()[-1].aborted


def test_health_and_waiting_until_ready(server):
    policy = client(server.base_url)
    assert policy.health().ready and policy.health().detail == "ready"
    server.health = 503
    assert (policy.health().ready, policy.health().status, policy.health().detail) == (False, 503, "loading")
    threading.Timer(0.6, lambda: setattr(server, "health", 200)).start()
    start = time.monotonic()
    assert policy.wait_ready(timeout=10, interval=0.2).ready and time.monotonic() - start >= 0.5
    server.health = 503
    with pytest.raises(BackendError, match=rf"{server.base_url} \(model tgi\) is not ready after 0.5 s: loading"):
        policy.wait_ready(timeout=0.5, interval=0.2)
    with refused_url() as url:
        down = client(url).health()
        assert not down.ready and down.status is None and "could not connect" in down.detail


def test_health_sends_only_the_named_key(server, monkeypatch):
    monkeypatch.setenv("PSYCOPREF_TGI_KEY", "hf_secretTokenForTheEndpoint1234567")
    client(server.base_url, api_key_env="PSYCOPREF_TGI_KEY").health()
    client(server.base_url).health()
    keyed, anonymous = [r for r in server.requests if r.path == "/health"][-2:]
    assert keyed.headers["authorization"] == "Bearer hf_secretTokenForTheEndpoint1234567"
    assert "authorization" not in anonymous.headers


def test_transformers_policy_streams_the_same_answer_it_gives_whole(tmp_path):
    from tiny_models import save_tiny_llama

    words = "I hear you tell me more about how that feels it sounds hard and what happens next".split()
    folder = save_tiny_llama(tmp_path / "policy", words=words, seed=3)  # a seed whose greedy answer has words
    policy = PolicyClient(Endpoint(backend="transformers", model=str(folder), params={"max_tokens": 12, "temperature": 0}))
    pieces = list(policy.stream(SPEECH))
    assert len(pieces) > 1 and "".join(pieces).strip() == policy.answer(SPEECH).text
    assert policy.health().ready and policy.health().detail == "in-process model"


def test_chat_cli_streams_an_answer_and_names_a_failing_endpoint(server, capsys):
    assert main(["chat", "--endpoint", server.url, "--max-tokens", "32", "--length-words", "50", SPEECH]) == 0
    out, err = capsys.readouterr()
    assert out.strip() == "I hear how tiring that rehearsing must be. What happens after the call?"
    assert "13 words" in err and server.calls()[-1].body["max_tokens"] == 32
    assert server.calls()[-1].body["messages"][-1]["content"].endswith("Answer in about 50 words.")
    server.fallback = Status(503)
    assert main(["chat", "--endpoint", server.url, "--max-retries", "0", "--example", "3"]) == 2
    assert f"{server.url} (model tgi) failed: HTTP 503" in capsys.readouterr().err


def test_chat_cli_takes_a_policy_from_a_space_config(server, tmp_path, monkeypatch, capsys):
    import yaml

    monkeypatch.setenv("PSYCOPREF_TEST_POLICY_URL", server.url)
    config = {"policies": [{"name": name, "backend": "tgi", "model": "tgi", "base_url_env": "PSYCOPREF_TEST_POLICY_URL",
                            "system_prompt": f"Answer as the {name} one.", "params": {"max_tokens": 40 + i, "seed": 7}}
                           for i, name in enumerate(["warm", "brief"])]}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    assert main(["chat", "--config", str(tmp_path / "config.yaml"), "--policy", "brief", "--temperature", "0.2",
                 SPEECH]) == 0
    body = server.calls()[-1].body
    assert body["messages"][0] == {"role": "system", "content": "Answer as the brief one."}
    assert (body["max_tokens"], body["seed"], body["temperature"]) == (41, 7, 0.2)  # the config's, then the flag
    assert main(["chat", "--config", str(tmp_path / "config.yaml"), "--policy", "nobody", SPEECH]) == 2
    assert "no policy named 'nobody' (there are: warm, brief)" in capsys.readouterr().err


# --- the real llama.cpp server (xllamacpp) with SmolLM2 ---------------------------------------------------------

@pytest.fixture(scope="module")
def llama(tmp_path_factory):
    with LlamaServer(ServerConfig(ctx_size=4096, n_parallel=2), tmp_path_factory.mktemp("logs")) as srv:
        yield srv


@pytest.mark.server
def test_real_server_answers_streams_and_is_ready(llama):
    policy = PolicyClient(Endpoint(backend="llamacpp", model="smollm2", base_url=llama.base_url,
                                   params={"max_tokens": 24, "temperature": 0.0, "seed": 1}), "Be kind.")
    assert policy.health().ready
    whole = policy.answer(SPEECH)
    pieces = list(policy.stream(SPEECH))
    assert len(pieces) > 3 and whole.text.strip() and 0 < whole.completion_tokens <= 24
    assert "".join(pieces).strip() == whole.text.strip()  # greedy: the stream is the same answer


@pytest.mark.server
def test_chat_cli_against_the_real_server(llama, tmp_path, capsys):
    assert main(["chat", "--endpoint", llama.base_url, "--backend", "llamacpp", "--model", "smollm2",
                 "--max-tokens", "16", "--temperature", "0", "--wait-ready", "10", "--example", "1"]) == 0
    out, err = capsys.readouterr()
    assert out.strip() and "words in" in err
    # 'managed': the toolkit starts its own llama.cpp server for the one answer, and stops it
    assert main(["chat", "--endpoint", "managed", "--backend", "llamacpp", "--model", "smollm2", "--max-tokens", "8",
                 "--log-dir", str(tmp_path), "Say hello to a new client."]) == 0
    assert capsys.readouterr().out.strip() and (tmp_path / "llama-server.log").stat().st_size > 0
