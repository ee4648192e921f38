"""The Space's page: the gradio Blocks, its events, and what a visitor meets on them.

Events, also the app's API (gradio_client): `/compare` (every policy streams into its column),
`/compare_anyway` (the same for a speech whose answers were held), `/ab` (two anonymised answers from two
random policies), `/vote` (A, B, tie or both_bad; reveals the names and appends the vote), `/examples`.
A speech is checked by a gradio validator before any event runs: one message at the textbox, never
"Error" in every column, and nothing in the log. A speech with crisis signals shows the banner and the
crisis resources first; with `crisis.hold_answers` (the default) the research answers are only generated
once the visitor presses "Show the research answers", and a blind A/B vote is never offered on it.
"""

from __future__ import annotations

import random

from .compare import Column, Policies
from .config import SpaceConfig
from .votes import VOTES, VoteError, VoteStore, vote_record

VOTE_CHOICES = [("A is better", "A"), ("B is better", "B"), ("Tie", "tie"), ("Both are bad", "both_bad")]
HELD = ("**Answer held**: this speech mentions a crisis, so the resources above come first. The answers below "
        "are from research models, not crisis support; press **Show the research answers** to see them.")
NO_VOTE = "This speech mentions a crisis: blind votes are not taken on it, and no answers are shown here."
REWARD_NOTE = ("**Reward**: the PsyCoPref reward model's score of each answer (a Bradley-Terry logit, unbounded; "
               "higher is better). Only differences between answers to the same speech mean something.")
COUNTER = """(s) => { const n = (s || "").length; return n >= {max} ?
  `${n} / {max} characters: the limit. Longer text is cut here; please shorten it.` : `${n} / {max} characters`; }"""


def _columns_out(columns: list[Column], blind: bool = False) -> list[str]:
    return [v for c in columns for v in (c.text, c.stats(blind))]


def build_blocks(cfg: SpaceConfig, policies: Policies, votes: VoteStore, detector, examples: list[dict],
                 title: str, notice: str):
    """The gradio Blocks of the Space (queue configured; not launched)."""
    import gradio as gr

    names = policies.names
    limits = cfg.limits
    hold = cfg.crisis.hold_answers
    pick = random.SystemRandom()

    def valid(speech: str | None):
        n = len((speech or "").strip())
        if n < limits.min_input_chars:
            return gr.validate(False, f"Please write a client speech of at least {limits.min_input_chars} characters.")
        return gr.validate(n <= limits.max_input_chars,
                           f"Please keep the speech under {limits.max_input_chars} characters (it has {n}).")

    def banner(signals: list[str]):
        text = detector.banner_markdown(signals)
        return gr.update(value=text, visible=bool(text))

    def stream_all(speech: str, first):
        yield [first, *_columns_out([Column(n) for n in names])]
        columns = []
        for columns in policies.stream(names, speech):
            yield [gr.skip(), *_columns_out(columns)]
        yield [first, *_columns_out(columns)]  # the whole result once more: an API caller's final value

    def compare(speech: str):
        speech = speech.strip()
        signals = detector.signals(speech)
        if signals and hold:
            yield [banner(signals), *[v for _ in names for v in ("", HELD)]]
            return
        yield from stream_all(speech, banner(signals))

    def compare_anyway(speech: str):
        speech = speech.strip()
        yield from stream_all(speech, banner(detector.signals(speech)))

    def show_button(speech: str | None):
        held = hold and bool(detector.signals((speech or "").strip()))
        return gr.update(visible=held)

    def ab(speech: str):
        speech = speech.strip()
        closed = gr.update(interactive=False, value=None)
        hidden = [Column("A"), Column("B")]
        signals = detector.signals(speech)
        first = banner(signals)
        if signals:  # no blind vote on a crisis speech, whatever hold_answers says
            yield [first, *["", ""] * 2, NO_VOTE, "", closed, gr.update(interactive=False), None]
            return
        pair = pick.sample(names, 2)
        yield [first, *_columns_out(hidden, True), "", "", closed, gr.update(interactive=False), None]
        columns = hidden
        for columns in policies.stream(pair, speech):
            yield [gr.skip(), *_columns_out(columns, True), gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip()]
        if not all(c.text.strip() and not c.error for c in columns):
            yield [first, *_columns_out(columns, True), "One of the policies did not answer; please try again.", "",
                   closed, gr.update(interactive=False), None]
            return
        state = {"speech": speech, "names": pair, "texts": [c.text for c in columns]}
        yield [first, *_columns_out(columns, True), "Which answer is better? The names are revealed after your vote.", "",
               gr.update(interactive=True, value=None), gr.update(interactive=True), state]

    def vote(choice: str | None, state: dict | None):
        if not state:
            raise gr.Error("Get two answers first: each pair of answers takes one vote.", print_exception=False)
        if choice not in VOTES:
            raise gr.Error("Choose A is better, B is better, Tie or Both are bad.", print_exception=False)
        (a, b), (text_a, text_b) = state["names"], state["texts"]
        try:  # the speech is checked again here: a crisis speech is never recorded, whatever the page sent
            votes.append(vote_record(state["speech"], text_a, text_b, a, b, choice, cfg,
                                     detector.signals(state["speech"]), scrub=cfg.votes.scrub))
        except VoteError as err:
            raise gr.Error(f"Your vote was not saved: {err}.", print_exception=False) from None
        described = {p.name: p.description for p in cfg.policies}
        reveal = (f"**A** was **{a}**{_dash(described[a])} · **B** was **{b}**{_dash(described[b])}\n\n"
                  f"Thank you: your vote ({dict((v, k) for k, v in VOTE_CHOICES)[choice]}) was saved.")
        return reveal, gr.update(interactive=False), gr.update(interactive=False), None

    def list_examples() -> list[dict]:
        """The bundled example speeches: id, topic, text."""
        return examples

    def speech_box(elem_id: str):
        box = gr.Textbox(label="Client speech", lines=5, max_length=limits.max_input_chars, elem_id=elem_id,
                         placeholder="Paste or write what a client says, or pick an example below.")
        count = gr.Markdown(f"0 / {limits.max_input_chars} characters", elem_id=f"{elem_id}-count")
        box.change(None, [box], [count], js=COUNTER.replace("{max}", str(limits.max_input_chars)))
        return box

    queued = {"concurrency_limit": limits.concurrency, "concurrency_id": "policies", "validator": valid}
    labels = [f"{e['topic']}: {e['text'][:60]}…" for e in examples]
    with gr.Blocks(title=title, analytics_enabled=False) as blocks:
        gr.Markdown(f"# {title}")
        gr.Markdown(notice, elem_id="notice")
        with gr.Tab("Compare", id="compare"):
            speech = speech_box("speech")
            compare_btn = gr.Button("Compare", variant="primary", elem_id="compare-btn")
            ex = gr.Examples([[e["text"]] for e in examples], inputs=[speech], label="Example client speeches",
                             example_labels=labels)
            crisis = gr.Markdown(visible=False, elem_id="crisis-banner", elem_classes=["crisis-banner"])
            show = gr.Button("Show the research answers", visible=False, elem_id="show-answers")
            outputs = [crisis]
            with gr.Row():
                for i, name in enumerate(names):
                    with gr.Column():
                        gr.Markdown(f"### {name}\n{policies.policies[name].description}")
                        outputs += [gr.Markdown(elem_id=f"answer-{i}", elem_classes=["answer"]),
                                    gr.Markdown(elem_id=f"stats-{i}", elem_classes=["stats"])]
            if policies.scorer is not None:
                gr.Markdown(REWARD_NOTE, elem_id="reward-note")
            compare_btn.click(compare, [speech], outputs, api_name="compare", **queued)
            speech.submit(compare, [speech], outputs, api_visibility="private", **queued)
            ex.load_input_event.then(compare, [speech], outputs, api_visibility="private", **queued)
            for trigger in (compare_btn.click, speech.submit, ex.load_input_event.then):
                trigger(show_button, [speech], [show], queue=False, api_visibility="private")
            show.click(compare_anyway, [speech], outputs, api_name="compare_anyway", **queued)
            show.click(lambda: gr.update(visible=False), None, [show], queue=False, api_visibility="private")
        with gr.Tab("Blind A/B", id="ab"):
            gr.Markdown("Two policies, drawn at random, answer anonymously as **A** and **B**. Vote for the better "
                        "answer; the names are revealed after your vote. Only a vote stores anything.")
            ab_speech = speech_box("ab-speech")
            ab_btn = gr.Button("Get two anonymous answers", variant="primary", elem_id="ab-btn")
            gr.Examples([[e["text"]] for e in examples], inputs=[ab_speech], label="Example client speeches",
                        example_labels=labels)
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
