"""The Gradio app: policies side by side on one client speech, and a blind A/B mode that collects votes.

`create_space(folder)` reads the config (`$PSYCOPREF_SPACE_CONFIG`, else `<folder>/config.yaml`) and
returns a `Space`: its `blocks` (the gradio app, queue configured; the page and its events: `page.py`)
and `launch()` with the options that keep visitors' text off disk (no run history, no flagging, no
analytics). `spaces/app.py` is three lines around it. A votes dataset that cannot be reached at start
turns votes off (and is tried again later) rather than stopping the Space.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .classifier import CrisisDetector
from .compare import Policies
from .config import SpaceConfig, default_config_path, load_space_config
from .crisis import load_rules
from .page import build_blocks
from .votes import VoteStore

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no telemetry or version check calls

NOTICE = (
    "**A research demo for practitioners and researchers, not a substitute for professional help.** "
    "The answers come from language models trained on counselling preference data (PsyCoPref); they can be "
    "wrong or harmful and cannot respond to an emergency. If you are in crisis, contact your local emergency "
    "services or a crisis line (988 in the US, Samaritans 116 123 in the UK and Ireland, findahelpline.com "
    "elsewhere).\n\n"
    "**Privacy:** nothing you type is stored unless you vote in the blind A/B tab. A vote stores the speech, "
    "both answers and your vote in {where} (emails, phone numbers and addresses masked) as new preference "
    "data. Please leave out anything that identifies you or others."
)
CSS = """
#crisis-banner, #ab-crisis-banner { border: 3px solid #b91c1c; background: #fef2f2; border-radius: 8px;
  padding: 12px 16px; }
.crisis-banner, .crisis-banner * { color: #7f1d1d !important; }
#notice { border-left: 4px solid #2563eb; padding-left: 12px; }
"""


def example_speeches(n: int) -> list[dict[str, str]]:
    """`n` bundled speeches spread evenly over the corpus (and so over its topics)."""
    from ..speeches.sources import bundled_path

    rows = [json.loads(line) for line in bundled_path().read_text(encoding="utf-8").splitlines() if line.strip()]
    step = max(1, len(rows) // max(n, 1))
    return [{"id": r["id"], "topic": r.get("topic_fine") or "", "text": r["text"]} for r in rows[::step][:n]]


@dataclass
class Space:
    """A built Space: the gradio app and what it owns (the policies and their server, the vote store)."""

    blocks: Any  # gradio.Blocks
    policies: Policies
    votes: VoteStore
    config: SpaceConfig

    def launch(self, **kwargs):
        """`blocks.launch` with the Space's options (`kwargs` win): returns (app, local_url, share_url)."""
        return self.blocks.launch(**{**launch_options(), **kwargs})

    def close(self) -> None:
        self.blocks.close()
        self.votes.close()
        self.policies.close()


def launch_options() -> dict[str, Any]:
    """What every launch of the Space passes: no run history kept in browsers, only the API link, the CSS."""
    return {"run_history": False, "footer_links": ["api"], "css": CSS}


def create_space(folder: str | Path = ".", config: str | Path | SpaceConfig | None = None, **policies_kwargs) -> Space:
    """The Space of `folder` with `config` (a path or a SpaceConfig; default: `default_config_path(folder)`)."""
    cfg = config if isinstance(config, SpaceConfig) else load_space_config(config or default_config_path(folder))
    rules = load_rules(cfg.crisis_file)  # a bad crisis file stops the Space before it starts a server or writes votes
    detector = CrisisDetector(rules, cfg.crisis.classifier)
    policies = Policies(cfg, **policies_kwargs)
    try:
        votes = VoteStore(cfg.votes, retry_minutes=cfg.votes.retry_minutes)  # unreachable: votes off, not a crash
        blocks = build_blocks(cfg, policies, votes, detector, example_speeches(cfg.examples), cfg.title,
                              NOTICE.format(where=votes.where()))
        return Space(blocks, policies, votes, cfg)
    except BaseException:
        policies.close()
        raise


