"""Stage 2 (generate) with fake pool members: seeded sampling, output contract, cache, resume after errors
and after a real SIGKILL, plus the runtime's cache identity of an endpoint."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from datasets import Dataset, load_from_disk

from hub_tools.config import Endpoint, ServerConfig
from hub_tools.dataset.pipeline import validate_recipe
from hub_tools.errors import StageError
from hub_tools.generate.stage import run_generate, sample_members, select_speeches
from hub_tools.io import save_atomic
from hub_tools.serving.runtime import Runtime, endpoint_identity

from fakes import SCRIPT

REPO = Path(__file__).resolve().parents[2]

POOL = [
    {"backend": "fake-gen", "model": "model-a", "name": "alpha"},
    {"backend": "fake-gen", "model": "model-b", "name": "beta"},
    {"backend": "fake-gen", "model": "model-a", "name": "alpha-brief", "system_prompt": "Be brief."},
    {"backend": "fake-gen", "model": "model-c", "name": "gamma"},
    {"backend": "fake-gen", "model": "model-d", "name": "delta"},
]
CONTRACT = {"speech_id": "string", "response_id": "string", "member": "string", "model": "string",
            "response": "string", "prompt_tokens": "int64", "completion_tokens": "int64"}


@pytest.fixture(autouse=True)
def _script():
    SCRIPT.reset()
    yield
    SCRIPT.reset()


def speech_rows(n: int) -> list[dict]:
    return [{"id": f"sp-{i:02d}", "text": f"Speech {i}: I have felt anxious about my family for {i + 2} weeks."}
            for i in range(n)]


def write_speeches(work: Path, rows: list[dict]) -> None:
    save_atomic(Dataset.from_list(rows), work / "speeches")


def make_recipe(work: Path, seed: int = 7, **generate):
    return validate_recipe({"work_dir": str(work), "seed": seed, "stages": ["generate"],
                            "generate": {"pool": POOL, "members_per_speech": 2, "concurrency": 2} | generate})


def generate(recipe) -> Dataset:
    with Runtime(recipe.work_dir, recipe.generate.pool) as rt:
        return run_generate(recipe.generate, recipe.work_dir, rt, seed=recipe.seed)


def members_by_speech(ds: Dataset) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for row in ds:
        out.setdefault(row["speech_id"], []).append(row["member"])
    return out


# --- sampling ------------------------------------------------------------------------------------------

def test_sample_members_is_seeded_by_seed_and_speech_id(tmp_path):
    pool = make_recipe(tmp_path).generate.pool
    ids = [f"sp-{i}" for i in range(12)]
    first = {sid: [m.name for m in sample_members(sid, pool, 3, seed=1)] for sid in ids}
    again = {sid: [m.name for m in sample_members(sid, pool, 3, seed=1)] for sid in reversed(ids)}
    assert first == again
    assert all(len(set(names)) == 3 for names in first.values())  # k distinct members
    assert len({tuple(v) for v in first.values()}) > 1  # depends on the speech id
    other_seed = {sid: [m.name for m in sample_members(sid, pool, 3, seed=2)] for sid in ids}
    assert other_seed != first
    assert sorted(m.name for m in sample_members("x", pool, len(pool), seed=1)) == sorted(p["name"] for p in POOL)
    with pytest.raises(ValueError, match="only 5 members"):
        sample_members("sp-0", pool, 6, seed=1)


def test_members_of_a_speech_do_not_depend_on_order_or_subset(tmp_path):
    rows = speech_rows(6)
    write_speeches(tmp_path / "all", rows)
    write_speeches(tmp_path / "some", [rows[5], rows[2], rows[0]])
    full = members_by_speech(generate(make_recipe(tmp_path / "all")))
    part = members_by_speech(generate(make_recipe(tmp_path / "some")))
    assert set(part) == {"sp-05", "sp-02", "sp-00"}
    assert all(part[sid] == full[sid] for sid in part)
    pool = make_recipe(tmp_path).generate.pool
    assert full["sp-03"] == [m.name for m in sample_members("sp-03", pool, 2, seed=7)]


def test_select_speeches_is_a_seeded_ordered_subset(tmp_path):
    ds = Dataset.from_list(speech_rows(20))
    a = select_speeches(ds, 5, seed=3)["id"]
    assert a == select_speeches(ds, 5, seed=3)["id"]
    assert len(a) == 5 and len(set(a)) == 5 and a == sorted(a)  # original order kept
    assert select_speeches(ds, 5, seed=4)["id"] != a
    assert select_speeches(ds, None, seed=3)["id"] == ds["id"]
    assert select_speeches(ds, 50, seed=3)["id"] == ds["id"]

    write_speeches(tmp_path, speech_rows(20))
    out = generate(make_recipe(tmp_path, seed=3, max_speeches=5))
    assert sorted(set(out["speech_id"])) == a
    assert len(SCRIPT.calls) == 5 * 2


# --- output contract -----------------------------------------------------------------------------------

def test_responses_dataset_follows_the_contract(tmp_path):
    rows = speech_rows(4)
    write_speeches(tmp_path, rows)
    ds = generate(make_recipe(tmp_path, members_per_speech=3))
    on_disk = load_from_disk(str(tmp_path / "responses"))
    assert {k: v.dtype for k, v in on_disk.features.items()} == CONTRACT
    assert on_disk.to_list() == ds.to_list()
    assert len(ds) == 4 * 3
    text = {r["id"]: r["text"] for r in rows}
    members = {m["name"]: m for m in POOL}
    for row in ds:
        member = members[row["member"]]
        assert row["response_id"] == f"{row['speech_id']}:{row['member']}"
        assert row["model"] == member["model"]
        # the fake echoes model|system|speech: the right member answered the right speech, stripped
        assert row["response"] == f"{member['model']}|{member.get('system_prompt') or ''}|{text[row['speech_id']]}"
        assert row["prompt_tokens"] == len(text[row["speech_id"]]) and row["completion_tokens"] == 7
    assert all(len(set(m)) == 3 for m in members_by_speech(ds).values())
    assert len(SCRIPT.calls) == 12


def test_duplicate_member_names_are_an_error(tmp_path):
    write_speeches(tmp_path, speech_rows(2))
    pool = POOL + [{"backend": "fake-gen", "model": "model-z", "name": "beta"}]
    with pytest.raises(ValueError, match="unique.*beta"):
        generate(make_recipe(tmp_path, pool=pool))
    assert SCRIPT.calls == []


# --- cache and resume ----------------------------------------------------------------------------------

def test_rerun_is_served_entirely_from_the_cache(tmp_path):
    write_speeches(tmp_path, speech_rows(5))
    first = generate(make_recipe(tmp_path))
    assert len(SCRIPT.calls) == 10
    SCRIPT.reset()
    second = generate(make_recipe(tmp_path))
    assert SCRIPT.calls == []
    assert second.to_list() == first.to_list()


def test_changed_decoding_params_are_asked_again_and_the_rest_comes_from_the_cache(tmp_path):
    """The cache key holds the params: a recipe that changes one member's temperature gets fresh answers from
    that member (never its answers at the old temperature); every other member's come from the cache."""
    write_speeches(tmp_path, speech_rows(5))
    pool = [m | {"params": {"temperature": 0.2, "max_tokens": 64}} for m in POOL]
    generate(make_recipe(tmp_path, pool=pool))
    SCRIPT.reset()
    pool[0] = pool[0] | {"params": {"temperature": 0.9, "max_tokens": 64}}
    ds = generate(make_recipe(tmp_path, pool=pool))
    alpha = [r for r in ds if r["member"] == "alpha"]
    assert alpha and len(SCRIPT.calls) == len(alpha)
    assert all(c["params"]["temperature"] == 0.9 and c["model"] == "model-a" for c in SCRIPT.calls)


def test_backend_failure_stops_with_progress_and_rerun_calls_only_missing(tmp_path):
    write_speeches(tmp_path, speech_rows(5))
    recipe = make_recipe(tmp_path, concurrency=1)  # one at a time: exactly 3 calls succeed
    SCRIPT.fail_from = 4
    with pytest.raises(StageError, match=r"\b3 of 10 calls finished"):
        generate(recipe)
    assert not (tmp_path / "responses").exists()
    answered = {(c["model"], json.dumps(c["messages"])) for c in SCRIPT.calls[:3]}

    SCRIPT.reset()
    ds = generate(recipe)
    assert len(SCRIPT.calls) == 10 - 3
    assert answered.isdisjoint((c["model"], json.dumps(c["messages"])) for c in SCRIPT.calls)
    assert len(ds) == 10 and len(set(ds["response_id"])) == 10


KILL_SCRIPT = textwrap.dedent(r'''
    import json, pathlib, sys, threading, time
    from hub_tools.serving import Backend, Completion, register_backend
    from hub_tools.dataset.pipeline import validate_recipe
    from hub_tools.generate.stage import run_generate
    from hub_tools.serving.runtime import Runtime

    work, log, blocked, stop_after = sys.argv[1], pathlib.Path(sys.argv[2]), pathlib.Path(sys.argv[3]), int(sys.argv[4])
    lock, started = threading.Lock(), [0]

    @register_backend("fake-slow")
    class Slow(Backend):
        name, supports_json_schema = "fake-slow", False
        def chat(self, messages, params, json_schema=None):
            with lock:
                started[0] += 1
                n = started[0]
            if n > stop_after:  # hang mid-call until the test kills us
                with lock, blocked.open("a") as f:
                    f.write(f"{n}\n")
                time.sleep(300)
            time.sleep(0.05)
            key = json.dumps([self.endpoint.model, messages])
            with lock, log.open("a") as f:
                f.write(key + "\n")
            return Completion("answer " + key, 3, 5)
        def close(self):
            pass

    pool = [{"backend": "fake-slow", "model": f"m{i}", "name": f"member-{i}"} for i in range(3)]
    recipe = validate_recipe({"work_dir": work, "seed": 1,
                              "generate": {"pool": pool, "members_per_speech": 2, "concurrency": 2}})
    with Runtime(recipe.work_dir, recipe.generate.pool) as rt:
        run_generate(recipe.generate, recipe.work_dir, rt, seed=recipe.seed)
''')


def _spawn(tmp_path: Path, stop_after: int, tag: str) -> subprocess.Popen:
    env = os.environ | {"PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    return subprocess.Popen(
        [sys.executable, "-c", KILL_SCRIPT, str(tmp_path / "work"), str(tmp_path / "calls.log"),
         str(tmp_path / "blocked.log"), str(stop_after)],
        stdout=subprocess.DEVNULL, stderr=(tmp_path / f"{tag}.err").open("w"), env=env)


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def test_resume_after_a_real_kill_never_answers_a_prompt_twice(tmp_path):
    write_speeches(tmp_path / "work", speech_rows(6))
    n_tasks, stop_after = 6 * 2, 4
    proc = _spawn(tmp_path, stop_after, "first")
    deadline = time.monotonic() + 60
    # both workers hanging in a new call => every earlier call has returned and been committed
    while len(_lines(tmp_path / "blocked.log")) < 2:
        assert proc.poll() is None, (tmp_path / "first.err").read_text()
        assert time.monotonic() < deadline, "the first run never reached the kill point"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=30) == -signal.SIGKILL
    assert len(_lines(tmp_path / "calls.log")) == stop_after
    assert not (tmp_path / "work" / "responses").exists()

    rerun = _spawn(tmp_path, 10**6, "rerun")
    assert rerun.wait(timeout=120) == 0, (tmp_path / "rerun.err").read_text()
    calls = _lines(tmp_path / "calls.log")
    assert len(calls) == n_tasks and len(set(calls)) == n_tasks  # no prompt answered twice
    ds = load_from_disk(str(tmp_path / "work" / "responses"))
    assert len(ds) == n_tasks
    assert sorted(ds["response"]) == sorted("answer " + c for c in calls)


# --- endpoint identity ---------------------------------------------------------------------------------

def test_endpoint_identity_has_no_api_key(monkeypatch):
    monkeypatch.setenv("PSYCOPREF_TEST_KEY", "sk-very-secret-123")
    ep = Endpoint(backend="openai", model="gpt-4o", base_url="https://api.example.com/v1",
                  api_key_env="PSYCOPREF_TEST_KEY")
    ident = endpoint_identity(ep, ServerConfig())
    blob = json.dumps(ident)
    assert "sk-very-secret-123" not in blob and "PSYCOPREF_TEST_KEY" not in blob
    assert ident["model"] == "gpt-4o" and ident["base_url"] == "https://api.example.com/v1"
    other_key = ep.model_copy(update={"api_key_env": "ANOTHER_KEY"})
    assert endpoint_identity(other_key, ServerConfig()) == ident  # rotating a key keeps the cache


def test_managed_endpoint_identity_uses_gguf_not_port():
    ep = Endpoint(backend="openai", model="smollm2", base_url="managed")
    a = endpoint_identity(ep, ServerConfig(gguf="/models/a.gguf", port=8123))
    assert a["base_url"] == "managed" and a["gguf"] == "/models/a.gguf"
    assert "8123" not in json.dumps(a)
    assert endpoint_identity(ep, ServerConfig(gguf="/models/a.gguf", port=9456)) == a
    assert endpoint_identity(ep, ServerConfig(gguf="/models/b.gguf", port=8123)) != a


def test_a_local_model_rebuilt_in_place_is_another_model_to_the_cache(tmp_path):
    """An in-process policy is named by its folder, and a DPO-Iter round trained again writes new weights to the
    same folder: its cache identity follows the weights, so the old round's answers are never served for it."""
    folder = tmp_path / "policy"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    (folder / "model.safetensors").write_bytes(b"round 1 weights")
    ep = Endpoint(backend="transformers", model=str(folder))
    first = endpoint_identity(ep, ServerConfig())
    assert endpoint_identity(ep, ServerConfig()) == first  # untouched: the same model, answers stay cached
    (folder / "model.safetensors").write_bytes(b"round 2 weights, retrained")
    assert endpoint_identity(ep, ServerConfig()) != first
