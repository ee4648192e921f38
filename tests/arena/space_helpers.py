"""Shared by the Space tests: a Space config whose policies are served by the fault server, and launching
the app on 127.0.0.1 with `prevent_thread_lock=True`."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from hub_tools.arena.app import Space, create_space
from hub_tools.arena.config import SpaceConfig
from hub_tools.serving.llama_server import free_port

SPEECH = "I moved here for work two years ago and I still don't have a single friend I could call."
STYLES = {"warm": "I hear how heavy this feels, and it makes sense that you are worn out.",
          "brief": "That sounds hard. What would help this week?",
          "plain": "Thank you for sharing this. Let us look at what happens before the call."}


def responder(body: dict) -> str:
    """Each policy answers in its own style, named by its system prompt ('style: warm')."""
    system = next((m["content"] for m in body.get("messages", []) if m.get("role") == "system"), "style: plain")
    return STYLES[system.split(": ", 1)[1]]


def space_config(base_url: str, tmp: Path, n: int = 3, **over) -> SpaceConfig:
    policies = [{"name": f"policy-{style}", "backend": "tgi", "model": "tgi", "base_url": base_url,
                 "system_prompt": f"style: {style}", "description": f"the {style} one",
                 "timeout": 5, "max_retries": 1, "max_retry_wait": 0.1, "params": {"max_tokens": 64}}
                for style in list(STYLES)[:n]]
    data = {"policies": policies, "votes": {"local_file": str(tmp / "votes" / "votes.jsonl")}, "examples": 8,
            "limits": {"concurrency": 4, "queue_size": 64, "max_input_chars": 600}}
    for key, value in over.items():
        data[key] = {**data.get(key, {}), **value} if isinstance(value, dict) else value
    return SpaceConfig.model_validate(data)


@contextlib.contextmanager
def launched(cfg: SpaceConfig, **kwargs) -> Iterator[tuple[Space, str]]:
    """The Space running on 127.0.0.1 (a free port) in this process; closed (server included) on exit."""
    space = create_space(".", cfg, **kwargs)
    try:
        _, url, _ = space.launch(server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True)
        yield space, url
    finally:
        space.close()
