"""A secret goes only where its owner named it: four endpoints on one server and one model, two with their own
planted keys and two without any, each request recognisable at a recording server by its member (system
prompt, or the judge's JSON request). Every request must carry exactly its own member's key, or no
Authorization header at all (not the user's Hugging Face token either): in the generate and judge stages,
the Space's policies and the policy client."""

from __future__ import annotations

import json

import pytest
from datasets import Dataset

from hub_tools.arena.compare import Policies
from hub_tools.arena.config import SpaceConfig
from hub_tools.config import Endpoint
from hub_tools.dataset.pipeline import run_stages, validate_recipe
from hub_tools.io import save_atomic
from hub_tools.serving.policy_client import PolicyClient
from hub_tools.serving.runtime import Runtime, client_identity, endpoint_identity

from fakes import reading_judge
from fault_server import prompt_of, serve_faults

pytestmark = pytest.mark.timeout(120)

KEYS = {"KEY_A": "sk-planted-key-A-4f1c", "KEY_B": "sk-planted-key-B-9e2d"}
MEMBERS = {"a": "KEY_A", "b": "KEY_B", "c": None, "d": None}  # member -> the variable its key is in
HF_TOKEN = "hf_plantedUserToken-must-not-leave"


def expected(env: str | None) -> str | None:
    return f"Bearer {KEYS[env]}" if env else None


def system_of(body: dict | None) -> str:
    messages = (body or {}).get("messages") or []
    return next((m["content"] for m in messages if m.get("role") == "system"), "")


def respond(body: dict) -> str:
    if body.get("response_format"):  # the judge asks for JSON
        return reading_judge(body)
    return f"quality {'abcd'.index(system_of(body)[-1]) + 1} reply to {prompt_of(body)[-30:]}"


@pytest.fixture
def server(monkeypatch):
    for env, key in KEYS.items():
        monkeypatch.setenv(env, key)
    monkeypatch.setenv("HF_TOKEN", HF_TOKEN)  # a logged-in Hub user: their token must stay home
    with serve_faults(responder=respond) as srv:
        yield srv


def member(base_url: str, name: str, **over) -> dict:
    """One of four members that differ only in their key, system prompt and params (same server, model)."""
    return {"backend": "openai", "model": "shared-model", "base_url": base_url, "api_key_env": MEMBERS[name],
            "name": f"member-{name}", "system_prompt": f"member {name}", "params": {"temperature": 0.1 * (ord(name) - 96)},
            "timeout": 5, "max_retries": 0} | over


def assert_own_keys(requests, who) -> None:
    """Each request carried exactly the key of the member `who(request)` names, or no Authorization header."""
    assert requests
    wrong = [(who(r), r.headers.get("authorization")) for r in requests
             if r.headers.get("authorization") != expected(MEMBERS.get(who(r)))]
    assert wrong == []
    seen = {r.headers.get("authorization") for r in requests}
    assert HF_TOKEN not in json.dumps(sorted(map(str, seen)))


def write_speeches(work, n: int = 2) -> None:
    save_atomic(Dataset.from_list([{"id": f"sp-{i}", "text": f"Speech {i}: I cannot sleep since the move.",
                                    "source": "test", "topic_fine": "sleep", "topic_coarse": "health"}
                                   for i in range(n)]), work / "speeches")


def test_client_identity_holds_every_setting_but_never_the_key_in_the_cache_identity(monkeypatch):
    monkeypatch.setenv("KEY_A", KEYS["KEY_A"])
    base = Endpoint(model="m", base_url="http://x/v1")
    variants = [base.model_copy(update={field: value}) for field, value in (
        ("api_key_env", "KEY_A"), ("timeout", 7.0), ("max_retries", 9), ("max_retry_wait", 1.0))]
    idents = {client_identity(e) for e in [base, *variants]}
    assert len(idents) == 5  # each setting makes its own client
    assert client_identity(base.model_copy(update={"params": {"temperature": 0.9}})) == client_identity(base)
    cache_ident = json.dumps(endpoint_identity(variants[0], None))
    assert "KEY_A" not in cache_ident and KEYS["KEY_A"] not in cache_ident  # cache keys never hold a key
    assert KEYS["KEY_A"] not in "".join(idents)  # nor does the client table


def test_generate_members_each_send_their_own_key_or_none(tmp_path, server):
    work = tmp_path / "work"
    write_speeches(work)
    recipe = validate_recipe({"work_dir": str(work), "stages": ["generate"], "generate": {
        "members_per_speech": 4, "concurrency": 4, "pool": [member(server.base_url, m) for m in MEMBERS]}})
    run_stages(recipe, ["generate"])
    calls = server.calls()
    assert len(calls) == 8 and {system_of(r.body) for r in calls} == {f"member {m}" for m in MEMBERS}
    assert_own_keys(calls, lambda r: system_of(r.body)[-1])


@pytest.mark.parametrize("judge_key", ["KEY_A", None])
def test_the_judge_sends_its_own_key_not_a_pool_members(tmp_path, server, judge_key):
    work = tmp_path / "work"
    write_speeches(work)
    judge = {"backend": "openai", "model": "shared-model", "base_url": server.base_url, "api_key_env": judge_key,
             "timeout": 5, "max_retries": 0}
    recipe = validate_recipe({"work_dir": str(work), "stages": ["generate", "judge"], "generate": {
        "members_per_speech": 4, "concurrency": 4, "pool": [member(server.base_url, m) for m in "dbca"]},
        "judge": {"endpoint": judge, "mode": "all_principles", "concurrency": 2}})
    out = run_stages(recipe, ["generate", "judge"])
    assert all(out["judge"]["complete"])
    judged = [r for r in server.calls() if r.body.get("response_format")]
    assert len(judged) == 2
    assert {r.headers.get("authorization") for r in judged} == {expected(judge_key)}
    assert_own_keys([r for r in server.calls() if r not in judged], lambda r: system_of(r.body)[-1])


def test_one_runtime_keeps_separate_clients_in_any_order(tmp_path, server):
    eps = [Endpoint.model_validate({k: v for k, v in member(server.base_url, m).items()
                                    if k not in ("name", "system_prompt")}) for m in MEMBERS]
    with Runtime(tmp_path, eps) as rt:
        for name, ep in reversed(list(zip(MEMBERS, eps))):  # the key-less ones first, as in the report
            rt.call(ep, [{"role": "system", "content": f"member {name}"}, {"role": "user", "content": "hi"}], stage="t")
    assert_own_keys(server.calls(), lambda r: system_of(r.body)[-1])


def test_the_space_policies_send_their_own_keys(tmp_path, server):
    policies = [member(server.base_url, m, backend="tgi") for m in MEMBERS]
    cfg = SpaceConfig.model_validate({"policies": policies, "votes": {"local_file": str(tmp_path / "v" / "v.jsonl")}})
    with Policies(cfg) as space:
        final = list(space.stream(space.names, "I have not slept for a week."))[-1]
    assert [c.error for c in final] == [None] * 4 and all(c.text for c in final)
    assert len(server.calls()) == 4
    assert_own_keys(server.calls(), lambda r: system_of(r.body)[-1])


def test_the_policy_client_sends_its_own_key_when_asking_streaming_and_probing(server):
    for name in MEMBERS:
        ep = Endpoint.model_validate({k: v for k, v in member(server.base_url, name).items()
                                      if k not in ("name", "system_prompt")})
        client = PolicyClient(ep, system_prompt=f"member {name}")
        before = len(server.requests)
        assert client.answer("I feel alone.").text and "".join(client.stream("I feel alone."))
        assert client.health().ready
        sent = server.requests[before:]
        assert [r.path for r in sent] == ["/v1/chat/completions", "/v1/chat/completions", "/health"]
        assert {r.headers.get("authorization") for r in sent} == {expected(MEMBERS[name])}
        client.close()
