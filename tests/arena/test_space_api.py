"""The Space at its API, as gradio_client sees it: launched on 127.0.0.1 (prevent_thread_lock) with policies
behind the fault server (fast, scripted) and, once, behind the real llama.cpp server with SmolLM2; plus
the offline path of a local transformers policy scored by a reward model."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from gradio_client import Client

from hub_tools.arena.compare import Policies

from fault_server import Status, serve_faults
from space_helpers import SPEECH, STYLES, launched, responder, space_config

pytestmark = pytest.mark.timeout(180)

CRISIS = "Lately I've been thinking that everyone would be better off without me."


def final(job) -> tuple:
    outputs = list(job)  # every streamed update
    assert outputs, "no update streamed"
    return outputs, job.result()


def test_compare_streams_every_policy_into_its_column(app, backend):
    space, url, _ = app
    outputs, result = final(Client(url, verbose=False).submit(SPEECH, api_name="/compare"))
    banner, *columns = result
    answers, stats = columns[0::2], columns[1::2]
    assert answers == list(STYLES.values())  # one column per policy, in the config's order
    assert [s.split(" · ")[0] for s in stats] == [f"{len(a.split())} words" for a in answers]
    assert banner.get("visible") is False  # no crisis, no banner
    assert len(outputs) > 3  # text arrived in several updates, not at the end
    partial = [o for o in outputs if any(a and a not in STYLES.values() for a in o[1::2])]
    assert partial, "no update showed an answer still being written"
    asked = backend.calls(SPEECH)[-3:]
    assert all(r.body["stream"] and r.body["max_tokens"] == 64 for r in asked)


def test_the_columns_stream_in_parallel(tmp_path):
    with serve_faults(responder=lambda body: "word " * 20, token_delay=0.05) as slow:  # ~1 s per answer
        with launched(space_config(slow.url, tmp_path)) as (_, url):
            start = time.monotonic()
            Client(url, verbose=False).predict(SPEECH, api_name="/compare")
            assert time.monotonic() - start < 2.5  # three 1 s answers side by side, not one after another
            starts = [r.at for r in slow.calls()]
            assert max(starts) - min(starts) < 0.5


def test_a_crisis_speech_shows_the_banner_first(app):
    _, url, _ = app
    outputs, (banner, *_) = final(Client(url, verbose=False).submit(CRISIS, api_name="/compare"))
    first = outputs[0]  # the banner is up before any answer text
    assert first[0]["visible"] is True and not any(first[1::2])
    assert "988" in first[0]["value"] and "local emergency services" in first[0]["value"]
    assert banner["visible"] is True  # and stays up


@pytest.mark.parametrize("speech, message", [("x" * 601, "under 600 characters"), ("hi", "at least 10 characters")])
def test_speech_length_is_limited(app, speech, message):
    _, url, _ = app
    with pytest.raises(Exception, match=message):
        Client(url, verbose=False).predict(speech, api_name="/compare")


def test_examples_come_from_the_bundled_speeches(app):
    _, url, _ = app
    examples = Client(url, verbose=False).predict(api_name="/examples")
    assert len(examples) == 8 and len({e["topic"] for e in examples}) == 8
    assert all(e["id"].startswith("bundled-") and len(e["text"]) > 100 for e in examples)


def test_blind_ab_then_vote_reveals_names_and_stores_the_preference(app):
    _, url, tmp = app
    client = Client(url, verbose=False)
    with pytest.raises(Exception, match="Get two answers first"):
        client.predict("A", api_name="/vote")
    banner, text_a, stats_a, text_b, stats_b, prompt, reveal, choice, *_ = client.predict(SPEECH, api_name="/ab")
    assert text_a != text_b and {text_a, text_b} <= set(STYLES.values())
    # blind: the length only (no score to sway the vote, no timing to tell the policies apart)
    assert [stats_a, stats_b] == [f"{len(t.split())} words · {len(t)} characters" for t in (text_a, text_b)]
    assert "revealed after your vote" in prompt and reveal == "" and choice["interactive"] is True
    reveal, *_ = client.predict("B", api_name="/vote")
    by_text = {v: f"policy-{k}" for k, v in STYLES.items()}
    assert f"**A** was **{by_text[text_a]}**" in reveal and f"**B** was **{by_text[text_b]}**" in reveal
    record = json.loads((tmp / "votes" / "votes.jsonl").read_text().splitlines()[-1])
    assert (record["question"], record["vote"]) == (SPEECH, "B")
    assert (record["chosen"], record["chosen_model"]) == (text_b, by_text[text_b])
    assert (record["rejected"], record["rejected_model"]) == (text_a, by_text[text_a])
    with pytest.raises(Exception, match="Get two answers first"):  # one vote per pair
        client.predict("A", api_name="/vote")


def test_nothing_is_stored_without_a_vote(app):
    _, url, tmp = app
    votes = tmp / "votes" / "votes.jsonl"
    before = votes.read_text() if votes.exists() else ""
    client = Client(url, verbose=False)
    client.predict("A private speech that nobody voted on, about my sister.", api_name="/compare")
    client.predict("Another private speech that nobody voted on, about work.", api_name="/ab")
    after = votes.read_text() if votes.exists() else ""
    assert after == before and "nobody voted on" not in after


def test_a_failing_policy_shows_in_its_column_only(tmp_path):
    with serve_faults(responder=responder) as srv:
        srv.script(Status(503), Status(503), match=lambda req: "style: brief" in str(req.body))
        with launched(space_config(srv.url, tmp_path)) as (_, url):
            _, warm, warm_stats, brief, brief_stats, plain, _ = Client(url, verbose=False).predict(
                SPEECH, api_name="/compare")
    assert warm == STYLES["warm"] and plain == STYLES["plain"]
    assert brief == "" and brief_stats.startswith("⚠️ this policy did not answer")
    assert srv.url not in brief_stats  # the endpoint is for the log, not for visitors


def test_no_policy_is_asked_for_more_than_the_spaces_max_tokens(backend, tmp_path):
    """limits.max_tokens bounds every answer: a policy asking for more is lowered to it, one naming none gets
    it, one asking for less keeps its own."""
    cfg = space_config(backend.url, tmp_path, limits={"max_tokens": 32})
    asks = [{"max_tokens": 64}, {"temperature": 0.5}, {"max_tokens": 8}]  # warm, brief, plain
    cfg = cfg.model_copy(update={"policies": [p.model_copy(update={"params": a}) for p, a in zip(cfg.policies, asks)]})
    speech = f"{SPEECH} (max tokens)"
    with Policies(cfg) as policies:
        *_, columns = policies.stream(policies.names, speech)
    assert all(c.done and c.text for c in columns)
    sent = {r.body["messages"][0]["content"]: r.body["max_tokens"] for r in backend.calls(speech)}
    assert sent == {"style: warm": 32, "style: brief": 32, "style: plain": 8}


def test_a_local_transformers_policy_with_a_reward_model(tmp_path):
    """Offline, from local folders: a policy in-process (transformers) and a reward model scoring answers."""
    from transformers import AutoModelForSequenceClassification

    from tiny_models import save_tiny_llama

    words = "I hear you tell me more about how that feels it sounds hard and what happens next".split()
    policy = save_tiny_llama(tmp_path / "policy", words=words, seed=3)
    reward = save_tiny_llama(tmp_path / "reward", words=words, seed=4)
    AutoModelForSequenceClassification.from_pretrained(reward, num_labels=1).save_pretrained(reward)
    local = {"backend": "transformers", "params": {"max_tokens": 8, "temperature": 0}}
    cfg = space_config("http://127.0.0.1:9", tmp_path, n=2)
    cfg = cfg.model_copy(update={
        "policies": [p.model_copy(update={**local, "model": str(policy)}) for p in cfg.policies],
        "reward": cfg.reward.model_copy(update={"model": str(reward)})})
    with Policies(cfg) as policies:
        *_, columns = policies.stream(policies.names, SPEECH)
        assert all(c.done and c.text.strip() and c.reward is not None for c in columns)
        # each answer scored as the reward model was trained: [user: speech, assistant: answer]
        assert all(c.reward == pytest.approx(policies.scorer.score(
            [[{"role": "user", "content": SPEECH}, {"role": "assistant", "content": c.text}]])[0]) for c in columns)
    assert "PsyCoPref reward" in columns[0].stats() and "(higher is better)" in columns[0].stats()


@pytest.mark.server
def test_compare_against_the_real_llama_server(tmp_path):
    cfg = space_config("managed", tmp_path)
    cfg = cfg.model_copy(update={"policies": [p.model_copy(update={"backend": "llamacpp", "model": "smollm2",
                                                                    "params": {"max_tokens": 24, "seed": 1}})
                                              for p in cfg.policies]})
    cfg.server.n_parallel, cfg.server.ctx_size = 3, 4096
    with launched(cfg, log_dir=tmp_path / "logs") as (space, url):
        _, *columns = Client(url, verbose=False).predict(SPEECH, api_name="/compare")
        assert space.policies.server is not None
    assert all(a.strip() for a in columns[0::2]) and all("words" in s for s in columns[1::2])


def test_the_space_app_file_builds_the_app_from_its_config(backend, tmp_path, monkeypatch):
    """spaces/app.py as the Hub runs it: the config from $PSYCOPREF_SPACE_CONFIG, `demo` at module level."""
    import runpy

    import gradio as gr
    import yaml

    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(space_config(backend.url, tmp_path).model_dump(mode="json")))
    monkeypatch.setenv("PSYCOPREF_SPACE_CONFIG", str(config))
    module = runpy.run_path(str(Path(__file__).resolve().parents[2] / "spaces" / "app.py"), run_name="space_app")
    try:
        assert isinstance(module["demo"], gr.Blocks) and module["space"].policies.names == [
            "policy-warm", "policy-brief", "policy-plain"]
    finally:
        module["space"].close()
