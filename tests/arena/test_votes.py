"""Blind A/B votes as PsyCoPref preference records: the vote maps to chosen/rejected (tie and both bad kept as
such), personal data is masked, records append safely from many threads, and with a Hub dataset
huggingface_hub's CommitScheduler pushes them (against the local Hub test server)."""

from __future__ import annotations

import json
import threading
import time

import pytest

from hub_tools.arena.config import VotesSection
from hub_tools.arena.votes import VoteError, VoteStore, vote_record

from hub_server import run_client, serve_hub
from space_helpers import space_config

SPEECH = "My manager takes credit for my ideas. Email me at jane.doe@example.org or call (555) 123-4567."


@pytest.fixture
def cfg(tmp_path):
    return space_config("http://127.0.0.1:9", tmp_path)


@pytest.mark.parametrize("vote, chosen, rejected", [("A", "answer a", "answer b"), ("B", "answer b", "answer a"),
                                                   ("tie", None, None), ("both_bad", None, None)])
def test_a_vote_becomes_a_preference_record(cfg, vote, chosen, rejected):
    rec = vote_record(SPEECH, "answer a", "answer b", "policy-warm", "policy-brief", vote, cfg, [])
    assert (rec["chosen"], rec["rejected"]) == (chosen, rejected)
    models = {"answer a": "policy-warm", "answer b": "policy-brief"}
    assert (rec["chosen_model"], rec["rejected_model"]) == (models.get(chosen), models.get(rejected))
    assert (rec["response_a"], rec["model_a"], rec["response_b"], rec["model_b"]) == (
        "answer a", "policy-warm", "answer b", "policy-brief")
    assert rec["vote"] == vote and rec["crisis_signals"] == [] and rec["timestamp"].endswith("+00:00")
    assert [p["name"] for p in rec["policies"]] == ["policy-warm", "policy-brief", "policy-plain"]
    assert all("base_url" not in p for p in rec["policies"])  # an endpoint URL may be a secret


def test_personal_data_is_masked_unless_turned_off(cfg):
    rec = vote_record(SPEECH, "a", "b", "x", "y", "A", cfg)
    assert "jane.doe" not in rec["question"] and "[EMAIL]" in rec["question"] and "[PHONE]" in rec["question"]
    assert vote_record(SPEECH, "a", "b", "x", "y", "A", cfg, scrub=False)["question"] == SPEECH


def test_a_vote_on_a_crisis_speech_is_never_recorded(cfg):
    with pytest.raises(VoteError, match=r"crisis signals \(abuse\) is never recorded"):
        vote_record(SPEECH, "a", "b", "x", "y", "A", cfg, ["abuse"])


def test_an_unreachable_votes_dataset_turns_votes_off_and_is_tried_again(monkeypatch, tmp_path):
    import huggingface_hub

    attempts = []

    class Scheduler:  # the Hub down at the first attempt, reachable at the second
        def __init__(self, **kwargs):
            attempts.append(kwargs["repo_id"])
            if len(attempts) == 1:
                raise ConnectionError("[Errno 111] Connection refused")
            self.lock = threading.Lock()

        def stop(self):
            pass

        def trigger(self):
            import concurrent.futures
            done = concurrent.futures.Future()
            done.set_result(None)
            return done

    monkeypatch.setattr(huggingface_hub, "CommitScheduler", Scheduler)
    section = VotesSection(repo_id="tester/votes", local_file=str(tmp_path / "v" / "votes.jsonl"))
    with pytest.raises(VoteError, match="cannot start pushing votes"):  # without retry_minutes: an error, as before
        VoteStore(section)
    attempts.clear()
    store = VoteStore(section, retry_minutes=0.002)  # 0.12 s
    assert store.off and not store.available() and "votes are off for now" in store.where()
    with pytest.raises(VoteError, match="votes are off for now, this vote was not saved"):
        store.append({"vote_id": "0"})
    assert attempts == ["tester/votes"] and not list((tmp_path / "v").glob("*.jsonl"))
    time.sleep(0.15)
    store.append({"vote_id": "1"})  # tried again: the scheduler started, the vote saved
    assert attempts == ["tester/votes"] * 2 and store.available() and "pushed every" in store.where()
    assert [json.loads(line)["vote_id"] for line in store.path.read_text().splitlines()] == ["1"]
    store.close()


def test_an_unknown_vote_is_refused(cfg):
    with pytest.raises(VoteError, match="unknown vote 'C'"):
        vote_record(SPEECH, "a", "b", "x", "y", "C", cfg)


def test_votes_append_as_whole_json_lines_from_many_threads(cfg, tmp_path):
    store = VoteStore(VotesSection(local_file=str(tmp_path / "v" / "votes.jsonl")))
    assert store.where() == "a file on this server" and store.push_now() is None

    def vote(i: int) -> None:
        for j in range(10):
            store.append(vote_record(f"speech {i}-{j} " + "x" * 2000, "a", "b", "x", "y", "tie", cfg))

    threads = [threading.Thread(target=vote, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    store.close()
    rows = [json.loads(line) for line in (tmp_path / "v" / "votes.jsonl").read_text().splitlines()]
    assert len(rows) == 80 and len({r["vote_id"] for r in rows}) == 80


SCHEDULED = """
import json, sys
from huggingface_hub import HfApi, hf_hub_download
from hub_tools.arena.config import VotesSection
from hub_tools.arena.votes import VoteStore

def pushed():
    api = HfApi()
    files = [f for f in api.list_repo_files("tester/space-votes", repo_type="dataset") if f.endswith(".jsonl")]
    rows = [json.loads(l) for f in files for l in open(hf_hub_download("tester/space-votes", f, repo_type="dataset"))]
    return files, [r["vote_id"] for r in rows]

store = VoteStore(VotesSection(repo_id="tester/space-votes", local_file=sys.argv[1], every_minutes=60))
for i in range(3):
    store.append({"vote_id": str(i), "vote": "A", "question": f"speech {i}"})
store.push_now().result()
_, triggered = pushed()
store.append({"vote_id": "3", "vote": "tie", "question": "speech 3"})
store.close()  # pushes what is pending, then stops
files, closed = pushed()
info = HfApi().repo_info("tester/space-votes", repo_type="dataset")
print(json.dumps({"files": files, "private": info.private, "triggered": triggered, "closed": closed}))
"""


def test_a_commit_scheduler_pushes_votes_to_a_hub_dataset(tmp_path):
    with serve_hub(tmp_path) as hub:
        proc = run_client(SCHEDULED, hub.env(tmp_path / "home"), str(tmp_path / "votes" / "votes.jsonl"))
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert len(out["files"]) == 1 and out["files"][0].startswith("data/votes-")  # one file per app process
    assert out["triggered"] == ["0", "1", "2"] and out["closed"] == ["0", "1", "2", "3"]
    assert out["private"] is True
    assert hub.hub.token not in proc.stdout + proc.stderr


def test_a_scheduler_that_cannot_start_is_named_without_the_token(tmp_path):
    script = """
import sys
from hub_tools.arena.config import VotesSection
from hub_tools.arena.votes import VoteError, VoteStore
try:
    VoteStore(VotesSection(repo_id="tester/space-votes", local_file=sys.argv[1]))
except VoteError as err:
    print(err)
"""
    with serve_hub(tmp_path) as hub:
        proc = run_client(script, hub.env(tmp_path / "home", token="hf_wrongTokenButShapedLikeOne12345"),
                          str(tmp_path / "votes.jsonl"))
    assert "votes dataset tester/space-votes: cannot start pushing votes" in proc.stdout
    assert "$HF_TOKEN" in proc.stdout and "hf_wrongToken" not in proc.stdout + proc.stderr


def test_a_pushed_votes_file_needs_a_folder_of_its_own():
    with pytest.raises(ValueError, match="folder of its own"):
        VotesSection(repo_id="tester/votes", local_file="votes.jsonl")
    assert VotesSection(local_file="votes.jsonl").local_file == "votes.jsonl"  # a local file may live anywhere
