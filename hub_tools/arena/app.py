"""The Gradio app: policies side by side on one client speech, and a blind A/B mode that collects votes.

`create_space(folder)` reads the config (`$PSYCOPREF_SPACE_CONFIG`, else `<folder>/config.yaml`) and
returns a `Space`: its `blocks` (the gradio app, queue configured) and `launch()` with the options that
keep visitors' text off disk (no run history, no flagging, no analytics). `spaces/app.py` is three
lines around it. The events, also the app's API (gradio_client): `/compare` (every policy streams into
its column), `/ab` (two anonymised answers from two random policies), `/vote` (A, B, tie or both_bad;
reveals the names and appends the vote), `/examples` (the bundled example speeches).
"""

from __future__ import annotations

import json
import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .compare import Column, Policies
from .config import SpaceConfig, default_config_path, load_space_config
from .crisis import load_rules
from .votes import VOTES, VoteStore, vote_record

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
VOTE_CHOICES = [("A is better", "A"), ("B is better", "B"), ("Tie", "tie"), ("Both are bad", "both_bad")]


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
    load_rules(cfg.crisis_file)  # a bad crisis file stops the Space before it starts a server or writes votes
    policies = Policies(cfg, **policies_kwargs)
    try:
        votes = VoteStore(cfg.votes)
        return Space(build_blocks(cfg, policies, votes), policies, votes, cfg)
    except BaseException:
        policies.close()
        raise


def _columns_out(columns: list[Column], blind: bool = False) -> list[str]:
    return [v for c in columns for v in (c.text, c.stats(blind))]


def build_blocks(cfg: SpaceConfig, policies: Policies, votes: VoteStore):
    """The gradio Blocks of the Space (queue configured; not launched)."""
    import gradio as gr

    rules = load_rules(cfg.crisis_file)
    names = policies.names
    examples = example_speeches(cfg.examples)
    limits = cfg.limits
    pick = random.SystemRandom()

    def checked(speech: str | None) -> str:
        speech = (speech or "").strip()
        if len(speech) < limits.min_input_chars:
            raise gr.Error(f"Please write a client speech of at least {limits.min_input_chars} characters.")
        if len(speech) > limits.max_input_chars:
            raise gr.Error(f"Please keep the speech under {limits.max_input_chars} characters (it has {len(speech)}).")
        return speech

    def banner(speech: str):
        text = rules.banner_markdown(rules.signals(speech))
        return gr.update(value=text, visible=bool(text))

    def compare(speech: str):
        speech = checked(speech)
        first = banner(speech)
        yield [first, *_columns_out([Column(n) for n in names])]
        columns = []
        for columns in policies.stream(names, speech):
            yield [gr.skip(), *_columns_out(columns)]
        yield [first, *_columns_out(columns)]  # the whole result once more: an API caller's final value

    def ab(speech: str):
        speech = checked(speech)
        pair = pick.sample(names, 2)
        closed = gr.update(interactive=False, value=None)
        hidden = [Column("A"), Column("B")]
        first = banner(speech)
        yield [first, *_columns_out(hidden, True), "", "", closed, gr.update(interactive=False), None]
        columns = hidden
        for columns in policies.stream(pair, speech):
            yield [gr.skip(), *_columns_out(columns, True), gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip()]
        if not all(c.text.strip() and not c.error for c in columns):
            yield [first, *_columns_out(columns, True), "One of the policies did not answer; please try again.", "",
                   closed, gr.update(interactive=False), None]
            return
        state = {"speech": speech, "names": pair, "texts": [c.text for c in columns], "crisis": rules.signals(speech)}
        yield [first, *_columns_out(columns, True), "Which answer is better? The names are revealed after your vote.", "",
               gr.update(interactive=True, value=None), gr.update(interactive=True), state]

    def vote(choice: str | None, state: dict | None):
        if not state:
            raise gr.Error("Get two answers first: each pair of answers takes one vote.")
        if choice not in VOTES:
            raise gr.Error("Choose A is better, B is better, Tie or Both are bad.")
        (a, b), (text_a, text_b) = state["names"], state["texts"]
        votes.append(vote_record(state["speech"], text_a, text_b, a, b, choice, cfg, state["crisis"],
                                 scrub=cfg.votes.scrub))
        described = {p.name: p.description for p in cfg.policies}
        reveal = (f"**A** was **{a}**{_dash(described[a])} · **B** was **{b}**{_dash(described[b])}\n\n"
                  f"Thank you: your vote ({dict((v, k) for k, v in VOTE_CHOICES)[choice]}) was saved.")
        return reveal, gr.update(interactive=False), gr.update(interactive=False), None

    def list_examples() -> list[dict]:
        """The bundled example speeches: id, topic, text."""
        return examples

    queued = {"concurrency_limit": limits.concurrency, "concurrency_id": "policies"}
    with gr.Blocks(title=cfg.title, analytics_enabled=False) as blocks:
        gr.Markdown(f"# {cfg.title}")
        gr.Markdown(NOTICE.format(where=votes.where()), elem_id="notice")
        with gr.Tab("Compare", id="compare"):
            speech = gr.Textbox(label="Client speech", lines=5, max_length=limits.max_input_chars, elem_id="speech",
                                placeholder="Paste or write what a client says, or pick an example below.")
            compare_btn = gr.Button("Compare", variant="primary", elem_id="compare-btn")
            ex = gr.Examples([[e["text"]] for e in examples], inputs=[speech], label="Example client speeches",
                             example_labels=[f"{e['topic']}: {e['text'][:60]}…" for e in examples])
            crisis = gr.Markdown(visible=False, elem_id="crisis-banner", elem_classes=["crisis-banner"])
            outputs = [crisis]
            with gr.Row():
                for i, name in enumerate(names):
                    with gr.Column():
                        gr.Markdown(f"### {name}\n{policies.policies[name].description}")
                        outputs += [gr.Markdown(elem_id=f"answer-{i}", elem_classes=["answer"]),
                                    gr.Markdown(elem_id=f"stats-{i}", elem_classes=["stats"])]
            compare_btn.click(compare, [speech], outputs, api_name="compare", **queued)
            speech.submit(compare, [speech], outputs, api_visibility="private", **queued)
            ex.load_input_event.then(compare, [speech], outputs, api_visibility="private", **queued)
        with gr.Tab("Blind A/B", id="ab"):
            gr.Markdown("Two policies, drawn at random, answer anonymously as **A** and **B**. Vote for the better "
                        "answer; the names are revealed after your vote. Only a vote stores anything.")
            ab_speech = gr.Textbox(label="Client speech", lines=5, max_length=limits.max_input_chars,
                                   elem_id="ab-speech", placeholder="Paste or write what a client says.")
            ab_btn = gr.Button("Get two anonymous answers", variant="primary", elem_id="ab-btn")
            gr.Examples([[e["text"]] for e in examples], inputs=[ab_speech], label="Example client speeches",
                        example_labels=[f"{e['topic']}: {e['text'][:60]}…" for e in examples])
            ab_crisis = gr.Markdown(visible=False, elem_id="ab-crisis-banner", elem_classes=["crisis-banner"])
            ab_outputs = [ab_crisis]
            with gr.Row():
                for side in ("A", "B"):
                    with gr.Column():
                        gr.Markdown(f"### Answer {side}")
                        ab_outputs += [gr.Markdown(elem_id=f"ab-answer-{side}", elem_classes=["answer"]),
                                       gr.Markdown(elem_id=f"ab-stats-{side}", elem_classes=["stats"])]
            prompt = gr.Markdown(elem_id="ab-prompt")
            choice = gr.Radio(VOTE_CHOICES, label="Your vote", interactive=False, elem_id="vote-choice")
            vote_btn = gr.Button("Vote", interactive=False, elem_id="vote-btn")
            reveal = gr.Markdown(elem_id="reveal")
            state = gr.State(None)
            ab_btn.click(ab, [ab_speech], [*ab_outputs, prompt, reveal, choice, vote_btn, state], api_name="ab", **queued)
            vote_btn.click(vote, [choice, state], [reveal, choice, vote_btn, state], api_name="vote")
        gr.api(list_examples, api_name="examples")
    blocks.queue(max_size=limits.queue_size, default_concurrency_limit=limits.concurrency)
    return blocks


def _dash(text: str) -> str:
    return f" ({text})" if text else ""
