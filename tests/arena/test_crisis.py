"""Crisis signals: the bundled pattern list finds suicide, self-harm and abuse in realistic wordings, stays
quiet on everyday idioms, flags every crisis speech of the bundled corpus and no everyday one, and the
banner carries the crisis lines and the advice to call local emergency services."""

from __future__ import annotations

import json

import pytest

from hub_tools.arena.crisis import load_rules
from hub_tools.config import RecipeError
from hub_tools.speeches.sources import bundled_path

HITS = {
    "I've been thinking about suicide a lot lately.": ["suicide"],
    "Sometimes I want to kill myself when it gets this bad.": ["suicide"],
    "I have been thinking about ending it all.": ["suicide"],
    "Everyone would be better off without me.": ["suicide"],
    "Honestly I just don't want to be here anymore.": ["suicide"],
    "I wish I was dead.": ["suicide"],
    "I took an overdose last year.": ["overdose"],
    "I started cutting myself again last week.": ["self_harm"],
    "My daughter has been hurting herself.": ["self_harm"],
    "I scratch at my arms until they bleed.": ["self_harm"],
    "Self-harm is the only thing that helps.": ["self_harm"],
    "My husband hits me when he drinks.": ["abuse"],
    "My partner has never hit me, but he controls everything.": ["abuse"],
    "Is this emotional abuse?": ["abuse"],
    "I was raped in college and never told anyone.": ["abuse"],  # past, but never told: still a signal
    "I'm afraid he will kill me if I leave.": ["abuse"],
    "Sometimes I want to hurt someone when I'm this angry.": ["harm_to_others"],
    "I'm not suicidal, but my girlfriend slapped me.": ["suicide", "abuse"],  # negations still show the banner
}
NON_HITS = [
    "This exam is killing me.",
    "I'm dying to see that concert.",
    "It suddenly hit me that I was alone in a new city.",
    "I cut my hair short and I regret it.",
    "I don't want to hurt her feelings by switching therapists.",
    "I've struggled with substance abuse but I'm seven months sober.",
    "My therapist is kind and she listens.",
    "I could kill for a full night of sleep.",
    "My grapes died on the balcony.",
    "The deadline is going to be the end of me, ha.",
]


@pytest.mark.parametrize("text, signals", HITS.items())
def test_hits(text, signals):
    assert load_rules().signals(text) == signals


@pytest.mark.parametrize("text", NON_HITS)
def test_non_hits(text):
    assert load_rules().signals(text) == []


def test_the_bundled_corpus_crisis_speeches_are_flagged_and_everyday_ones_are_not():
    rows = [json.loads(line) for line in bundled_path().read_text(encoding="utf-8").splitlines()]
    rules = load_rules()
    crisis = [r for r in rows if r["topic_fine"] in ("Self-harm", "Domestic-violence")]
    assert len(crisis) == 6 and all(rules.signals(r["text"]) for r in crisis)
    flagged = {r["id"] for r in rows if rules.signals(r["text"])} - {r["id"] for r in crisis}
    # the others: a depressed client who says "I'm not having any thoughts of hurting myself" (by design), and
    # a client who binges at night and "barely eats" during the day (an eating disorder, a category of its own)
    assert flagged == {"bundled-003", "bundled-056"}


def test_the_banner_names_the_signals_and_the_crisis_lines():
    rules = load_rules()
    banner = rules.banner_markdown(["suicide", "abuse"])
    assert "suicidal thoughts and abuse or violence" in banner
    for line in ("local emergency services", "988", "Samaritans 116 123", "findahelpline.com"):
        assert line in banner
    assert rules.banner_markdown([]) == ""


def test_a_custom_crisis_file_replaces_the_bundled_one(tmp_path):
    path = tmp_path / "crisis.yaml"
    path.write_text("categories:\n  eviction: ['\\bevict\\w*']\nbanner: 'About {signals}: call 211.'\n"
                    "resources: ['211 (US)']\n", encoding="utf-8")
    rules = load_rules(str(path))
    assert rules.signals("They are evicting us on Friday.") == ["eviction"]
    assert "About eviction: call 211." in rules.banner_markdown(["eviction"])
    assert rules.signals("I want to kill myself") == []  # replaced, not merged


@pytest.mark.parametrize("text, problem", [
    ("categories: {}\nbanner: '{signals}'\nresources: [x]\n", "non-empty 'categories'"),
    ("categories: {a: ['(unclosed']}\nbanner: '{signals}'\nresources: [x]\n", "categories.a: bad regular expression"),
    ("categories: {a: [x]}\nbanner: 'no placeholder'\nresources: [x]\n", "containing {signals}"),
    ("categories: {a: [x]}\nbanner: '{signals}'\nresources: []\n", "at least one crisis line"),
])
def test_a_bad_crisis_file_is_named(tmp_path, text, problem):
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(RecipeError, match="bad.yaml") as err:
        load_rules(str(path))
    assert problem in str(err.value)
