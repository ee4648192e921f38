"""Shared fixtures. Every test session gets its own HF_HOME so nothing touches a user's cache."""

from __future__ import annotations

import os
import signal
import sys
import tempfile
from pathlib import Path

# tests/ mirrors hub_tools/; shared helpers (fake backends, the Hub test server) live in tests/helpers.
sys.path.insert(0, str(Path(__file__).parent / "helpers"))

# Isolate Hugging Face caches and make any accidental Hub call fail at once, before any HF library is
# imported. Not HF_HUB_OFFLINE=1: huggingface_hub then refuses every request, also to the local llama.cpp
# server that InferenceClient talks to in the real-server tests.
_HF_HOME = tempfile.mkdtemp(prefix="psycopref-hf-home-")
os.environ["HF_HOME"] = _HF_HOME
os.environ.pop("HF_HUB_OFFLINE", None)
os.environ.pop("HF_DATASETS_OFFLINE", None)
os.environ["HF_ENDPOINT"] = "http://127.0.0.1:9"  # closed port: no test can reach a real Hub
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

# A shell script that starts the suite in the background (`cmd &` without job control) ignores SIGINT, and
# every process it starts inherits that: the tests that press Ctrl-C on a real `psycopref` process would then
# see it ignored. Ctrl-C is the user's key: give this process (and so its children) Python's own handler.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


# --- shared fixtures: a tiny random base model and a repo of separable preference pairs --------------------

import pytest  # noqa: E402  (after the environment is set up)


@pytest.fixture(scope="session")
def tiny_base(tmp_path_factory) -> Path:
    """A 2-layer, hidden-32 random Llama (a causal LM, as a real base) whose word-level tokenizer is trained
    on the preference-pair corpus, with a chat template and a pad token."""
    pytest.importorskip("torch")
    from preference_data import CURT, SPEECH_WORDS, WARM
    from tiny_models import save_tiny_llama

    return save_tiny_llama(tmp_path_factory.mktemp("tiny-llama"),
                           corpus=[" ".join(SPEECH_WORDS), " ".join(WARM), " ".join(CURT)])


@pytest.fixture(scope="session")
def pairs_repo(tmp_path_factory) -> Path:
    """A dataset repo folder like the dataset stage's: configs `pairs` and `default` (release strings)."""
    from preference_data import write_pairs_repo

    return write_pairs_repo(tmp_path_factory.mktemp("datasets") / "datasets" / "test-org" / "TinyPref")


@pytest.fixture
def fake_vllm(monkeypatch):
    """The CPU stand-in for vLLM's offline API (tests/helpers/fake_vllm) importable as `vllm`, its record
    of engines and calls emptied; every `vllm` module is forgotten again afterwards."""
    def forget() -> None:
        for name in [m for m in sys.modules if m == "vllm" or m.startswith("vllm.")]:
            del sys.modules[name]

    forget()
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parent / "helpers" / "fake_vllm"))
    import vllm

    vllm.LLM.instances.clear()
    vllm.LLM.calls.clear()
    yield vllm
    forget()
