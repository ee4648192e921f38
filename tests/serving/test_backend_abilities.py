"""The `Backend` base class declares every optional ability with a default, so no caller probes a backend:
a plug-in that only answers `chat` streams (its whole answer once), reports itself ready, refuses the Batch
API with a clear error; and a plug-in that says it runs in-process is treated as one everywhere."""

from __future__ import annotations

import pytest

from hub_tools.config import Endpoint, RecipeError, ServerConfig, validate
from hub_tools.serving import Backend, BackendError, Completion, in_process, make_backend, register_backend
from hub_tools.serving.base import BACKENDS
from hub_tools.serving.policy_client import PolicyClient
from hub_tools.serving.runtime import Runtime, endpoint_identity


class ChatOnly(Backend):
    """A plug-in that implements nothing but `chat`."""

    name = "chat-only"

    def chat(self, messages, params, json_schema=None):
        return Completion(f"answer to {messages[-1]['content'][-12:]}", 3, 4)


class LocalToy(ChatOnly):
    """A plug-in that loads its model itself, from a local folder."""

    name = "local-toy"
    in_process = True


@pytest.fixture
def plugins():
    register_backend("chat-only")(ChatOnly)
    register_backend("local-toy")(LocalToy)
    register_backend("not-a-backend")(lambda endpoint, managed_url=None: object())
    yield
    BACKENDS.unregister("chat-only", "local-toy", "not-a-backend")


def test_a_chat_only_backend_has_every_ability_by_default(plugins):
    client = PolicyClient(Endpoint(backend="chat-only", model="m"))
    assert client.label == "chat-only model m"
    assert list(client.stream("I cannot sleep before exams")) == [client.answer("I cannot sleep before exams").text]
    health = client.health()
    assert health.ready and health.detail == "no readiness route"
    with pytest.raises(BackendError, match="'chat-only' cannot build Batch API requests"):
        client.backend.request_body([], {})
    assert not client.backend.supports_batch and not client.backend.in_process


def test_the_judge_batch_refuses_a_backend_without_the_batch_api(plugins, tmp_path):
    from hub_tools.judge.batch import run_batch
    from hub_tools.judge.config import JudgeConfig

    cfg = JudgeConfig(endpoint=Endpoint(backend="chat-only", model="m", base_url="http://127.0.0.1:9/v1"), batch=True)
    with Runtime(tmp_path, [cfg.endpoint]) as rt, pytest.raises(RecipeError, match="judge.batch needs an OpenAI-compatible"):
        run_batch(cfg, tmp_path, rt, [[{"role": "user", "content": "x"}]], {}, None)


def test_a_backend_must_be_a_backend(plugins):
    with pytest.raises(BackendError, match="'not-a-backend' made a object, not a hub_tools.serving.Backend"):
        make_backend(Endpoint(backend="not-a-backend", model="m"))


def test_in_process_is_one_fact_of_the_backend_class(plugins, tmp_path):
    assert in_process("transformers") and in_process("vllm") and in_process("local-toy")
    assert not in_process("openai") and not in_process("chat-only") and not in_process("not-a-backend")
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    # a local model folder is fingerprinted for the cache (a checkpoint rebuilt in place is a new model) ...
    assert "fingerprint" in endpoint_identity(Endpoint(backend="local-toy", model=str(folder)), ServerConfig())
    assert "fingerprint" not in endpoint_identity(Endpoint(backend="chat-only", model=str(folder)), ServerConfig())
    # ... a Space column needs no base_url ...
    from hub_tools.arena.config import SpacePolicy

    assert SpacePolicy(name="p", backend="local-toy", model=str(folder)).resolved().base_url is None
    with pytest.raises(RecipeError, match="has no base_url"):
        SpacePolicy(name="p", backend="chat-only", model="m").resolved()
    # ... and DPO-Iter may sample its rounds with it
    pytest.importorskip("trl")
    from hub_tools.policy.config import GenerationSection

    assert validate(GenerationSection, {"backend": "local-toy"}).backend == "local-toy"
    with pytest.raises(RecipeError, match="'chat-only' is not an in-process backend"):
        validate(GenerationSection, {"backend": "chat-only"})
