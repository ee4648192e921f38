"""Shared fixtures. Every test session gets its own HF_HOME so nothing touches a user's cache."""

from __future__ import annotations

import os
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
