"""Shared fixtures. Every test session gets its own HF_HOME so nothing touches a user's cache."""

from __future__ import annotations

import os
import tempfile

# Isolate Hugging Face caches and forbid Hub downloads before any HF library is imported.
_HF_HOME = tempfile.mkdtemp(prefix="psycopref-hf-home-")
os.environ["HF_HOME"] = _HF_HOME
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
