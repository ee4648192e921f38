"""The crisis detector the Space uses: the transparent rules of `crisis.py`, OR-ed with an optional classifier.

The classifier reads the speech through an endpoint the config names (`crisis.classifier`): a Llama
Guard-style model on an OpenAI-compatible chat route (TGI, vLLM: its chat template turns the speech into
the guard prompt; the answer starts with `safe` or `unsafe`), or an OpenAI-compatible `/moderations`
route (flagged categories such as `self-harm/intent`). Combined by OR, it can only add recall; when it
fails or times out the rules alone decide (logged), so a classifier outage never hides the banner the
rules would show.
"""

from __future__ import annotations

import logging
import os

import httpx

from .config import CrisisClassifier
from .crisis import CrisisRules

log = logging.getLogger("psycopref")

SIGNAL = "classifier"  # the signal name a classifier flag adds (its banner label: crisis.yaml's labels)


def classify(cfg: CrisisClassifier, speech: str) -> bool:
    """Whether the classifier flags the speech (raises on an endpoint error)."""
    url = (cfg.url() or "").rstrip("/")
    if not url:
        raise ValueError("crisis.classifier has no base_url (nor a set base_url_env)")
    key = os.environ.get(cfg.api_key_env) if cfg.api_key_env else None
    headers = {"authorization": f"Bearer {key}"} if key else {}
    if cfg.kind == "moderations":
        body = {"model": cfg.model, "input": speech}
        res = httpx.post(f"{url}/moderations", json=body, headers=headers, timeout=cfg.timeout)
        res.raise_for_status()
        categories = res.json()["results"][0].get("categories") or {}
        return any(bool(categories.get(c)) for c in cfg.categories)
    body = {"model": cfg.model, "messages": [{"role": "user", "content": speech}], "max_tokens": 16, "temperature": 0}
    res = httpx.post(f"{url}/chat/completions", json=body, headers=headers, timeout=cfg.timeout)
    res.raise_for_status()
    answer = res.json()["choices"][0]["message"]["content"] or ""
    return answer.strip().lower().startswith("unsafe")


class CrisisDetector:
    """`signals(speech)`: the rules' categories, plus `classifier` when the configured classifier flags it."""

    def __init__(self, rules: CrisisRules, classifier: CrisisClassifier | None = None):
        self.rules = rules
        self.classifier = classifier

    def signals(self, speech: str) -> list[str]:
        found = self.rules.signals(speech)
        if self.classifier is None:
            return found
        try:
            flagged = classify(self.classifier, speech)
        except Exception as err:  # noqa: BLE001  (an outage never hides what the rules found)
            log.warning("crisis classifier failed (%s: %s); the rules alone decide", type(err).__name__,
                        str(err).split("\n")[0][:200])
            return found
        return [*found, SIGNAL] if flagged and SIGNAL not in found else found

    def banner_markdown(self, signals: list[str]) -> str:
        return self.rules.banner_markdown(signals)
