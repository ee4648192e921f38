"""What a visitor meets on the Space, at its API: a crisis speech holds the answers until asked (and is
never offered for a vote), the optional crisis classifier adds to the rules, an answer cut at the token
limit says so, a bad speech gives one validation message and no traceback in the log, and a votes dataset
that cannot be reached at start leaves the Space serving with votes off."""

from __future__ import annotations

import contextlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from gradio_client import Client

from hub_tools.arena.classifier import CrisisDetector
from hub_tools.arena.config import CrisisClassifier
from hub_tools.arena.crisis import load_rules
from hub_tools.arena.page import HELD, NO_VOTE

from fault_server import Answer, serve_faults
from space_helpers import SPEECH, STYLES, launched, space_config

pytestmark = pytest.mark.timeout(180)

CRISIS = "I took a bunch of my mom's pills an hour ago and I feel strange."


def test_a_crisis_speech_holds_the_answers_until_the_visitor_asks(app, backend):
    _, url, _ = app
    client = Client(url, verbose=False)
    banner, *columns = client.predict(CRISIS, api_name="/compare")
    assert banner["visible"] is True and "an overdose" in banner["value"] and "988" in banner["value"]
    assert columns[0::2] == ["", "", ""] and columns[1::2] == [HELD] * 3
    assert backend.calls(CRISIS) == []  # held: no policy was even asked
    banner, *columns = client.predict(CRISIS, api_name="/compare_anyway")  # the visitor asks to see them
    assert banner["visible"] is True and columns[0::2] == list(STYLES.values())
    assert len(backend.calls(CRISIS)) == 3


def test_answers_stream_below_the_banner_when_holding_is_off(backend, tmp_path):
    with launched(space_config(backend.url, tmp_path, crisis={"hold_answers": False})) as (_, url):
        banner, *columns = Client(url, verbose=False).predict(CRISIS + " (unheld)", api_name="/compare")
    assert banner["visible"] is True and columns[0::2] == list(STYLES.values())


def test_no_blind_vote_is_offered_on_a_crisis_speech(app, backend):
    _, url, tmp = app
    client = Client(url, verbose=False)
    before = len(backend.calls())
    banner, text_a, _, text_b, _, prompt, _, choice, *_ = client.predict(CRISIS, api_name="/ab")
    assert banner["visible"] is True and prompt == NO_VOTE and (text_a, text_b) == ("", "")
    assert choice["interactive"] is False
    assert len(backend.calls()) == before
    with pytest.raises(Exception, match="Get two answers first"):
        client.predict("A", api_name="/vote")
    votes = tmp / "votes" / "votes.jsonl"
    assert not votes.exists() or CRISIS not in votes.read_text()


def test_an_answer_cut_at_the_token_limit_says_so(app, backend):
    _, url, _ = app
    backend.script(Answer("I hear how", finish_reason="length"), match="cut short please")
    _, *columns = Client(url, verbose=False).predict("Please answer me, but cut short please.", api_name="/compare")
    stats = columns[1::2]
    assert sum("cut at the token limit" in s for s in stats) == 1 and all(" words" in s for s in stats)


@pytest.mark.parametrize("speech, message", [("", "at least 10 characters"), ("   ", "at least 10 characters"),
                                             ("x" * 601, "under 600 characters (it has 601)")])
def test_a_bad_speech_gets_one_message_and_no_traceback(app, capfd, speech, message):
    _, url, _ = app
    with pytest.raises(Exception, match="validation") as err:
        Client(url, verbose=False).predict(speech, api_name="/compare")
    assert message in str(err.value) and str(err.value).count(message) == 1
    out, logged = capfd.readouterr()
    assert "Traceback" not in out + logged


def test_the_space_serves_with_votes_off_when_the_hub_is_unreachable(backend, tmp_path, monkeypatch):
    import huggingface_hub

    def unreachable(**kwargs):
        raise ConnectionError("[Errno 111] Connection refused")

    monkeypatch.setattr(huggingface_hub, "CommitScheduler", unreachable)
    cfg = space_config(backend.url, tmp_path, votes={"repo_id": "tester/votes", "retry_minutes": 60})
    with launched(cfg) as (space, url):
        client = Client(url, verbose=False)
        _, *columns = client.predict(SPEECH, api_name="/compare")  # comparisons served
        assert columns[0::2] == list(STYLES.values())
        assert space.votes.off and "votes are off for now" in space.votes.where()
        client.predict(SPEECH, api_name="/ab")
        with pytest.raises(Exception, match="Your vote was not saved: votes are off for now"):
            client.predict("A", api_name="/vote")


@contextlib.contextmanager
def moderation_server(flag_word: str):
    """An OpenAI-compatible POST /v1/moderations that flags self-harm/intent when `flag_word` is in the input."""
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["content-length"])))
            flagged = flag_word in body["input"]
            data = json.dumps({"results": [{"flagged": flagged, "categories": {"self-harm/intent": flagged,
                                                                               "sexual": True}}]}).encode()
            self.send_response(200 if self.path == "/v1/moderations" else 404)
            self.send_header("content-type", "application/json")
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    finally:
        httpd.shutdown()


def test_a_moderations_classifier_adds_recall_to_the_rules():
    quiet = "Lately the quiet in my flat feels heavier than ever."  # no rule fires on it
    with moderation_server("heavier") as url:
        detector = CrisisDetector(load_rules(), CrisisClassifier(kind="moderations", base_url=url))
        assert detector.signals(quiet) == ["classifier"]
        assert detector.signals(SPEECH) == []  # a flag outside the configured categories ('sexual') does not count
        assert detector.signals(CRISIS) == ["overdose"]  # the rules' own signal; the classifier adds nothing
        assert "signs of a crisis (found by the classifier)" in detector.banner_markdown(["classifier"])


def test_a_guard_model_classifier_and_its_outage():
    def guard(body: dict) -> str:
        return "unsafe\nS11" if "heavier" in body["messages"][-1]["content"] else "safe"

    quiet = "Lately the quiet in my flat feels heavier than ever."
    with serve_faults(responder=guard) as srv:
        detector = CrisisDetector(load_rules(), CrisisClassifier(kind="chat", base_url=srv.base_url))
        assert detector.signals(quiet) == ["classifier"] and detector.signals(SPEECH) == []
        assert srv.calls()[-1].body["messages"] == [{"role": "user", "content": SPEECH}]
    down = CrisisDetector(load_rules(), CrisisClassifier(kind="chat", base_url="http://127.0.0.1:9/v1", timeout=1))
    assert down.signals(CRISIS) == ["overdose"] and down.signals(quiet) == []  # the rules alone decide
