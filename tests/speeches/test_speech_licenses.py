"""Each source's licence in the registry, and the licence of a dataset built from several of them."""

from __future__ import annotations

import logging

import pytest

from hub_tools.speeches.licenses import RESTRICTIVENESS, dataset_licensing, most_restrictive, source_license
from hub_tools.speeches.sources import SOURCES

# What each source's publisher states (Hub cards, repositories), and the package's own corpus.
PUBLISHED = {"counsel_chat": "mit", "amod": "other", "mentalchat16k": "mit", "psych8k": "cc-by-nc-sa-4.0",
             "mentalagora": "cc-by-4.0", "phi2mental": "openrail", "therapistqa": "unknown", "bundled": "apache-2.0"}


def test_every_source_states_its_licence_and_homepage():
    assert set(PUBLISHED) <= set(SOURCES)
    for name, lic in PUBLISHED.items():
        entry = SOURCES.get(name)
        assert entry.license == lic and entry.homepage and callable(entry.load)
        assert source_license(name).license == lic


@pytest.mark.parametrize(("licenses", "expected"), [
    (["mit"], "mit"),
    (["mit", "apache-2.0"], "apache-2.0"),
    (["apache-2.0", "cc-by-4.0", "mit"], "cc-by-4.0"),
    (["cc-by-4.0", "openrail"], "openrail"),
    (["openrail", "other"], "other"),
    (["other", "cc-by-nc-4.0", "mit"], "cc-by-nc-4.0"),
    (["cc-by-nc-sa-4.0", "cc-by-nc-4.0"], "cc-by-nc-sa-4.0"),
    (["cc-by-nc-sa-4.0", "unknown"], "unknown"),  # unknown is never outranked
    (["mit", "gpl-3.0"], "unknown"),  # a licence outside the ordering cannot be ranked
    ([], "unknown"),
])
def test_most_restrictive(licenses, expected):
    assert most_restrictive(licenses) == expected


def test_the_ordering_is_a_strict_total_order():
    assert len(set(RESTRICTIVENESS)) == len(RESTRICTIVENESS) and "unknown" not in RESTRICTIVENESS
    for i, lic in enumerate(RESTRICTIVENESS):
        assert most_restrictive(RESTRICTIVENESS[: i + 1]) == lic


def test_derived_from_the_sources_used():
    lic = dataset_licensing(["counsel_chat", "bundled", "counsel_chat", "psych8k", "amod"])
    assert lic.license == "cc-by-nc-sa-4.0" and "psych8k (cc-by-nc-sa-4.0)" in lic.how
    assert [(s.name, s.license) for s in lic.sources] == [
        ("amod", "other"), ("bundled", "apache-2.0"), ("counsel_chat", "mit"), ("psych8k", "cc-by-nc-sa-4.0")]


@pytest.mark.parametrize("used", [["counsel_chat", "therapistqa"], ["counsel_chat", "someone_elses_source"]])
def test_an_unknown_licence_makes_the_dataset_unknown_with_a_warning(used, caplog):
    with caplog.at_level(logging.WARNING, logger="psycopref"):
        lic = dataset_licensing(used)
    assert lic.license == "unknown" and f"{used[1]} (unknown)" in lic.how
    assert any("unknown" in r.getMessage() and used[1] in r.getMessage() for r in caplog.records)


def test_the_recipe_wins_and_a_weaker_choice_is_warned_about(caplog):
    with caplog.at_level(logging.WARNING, logger="psycopref"):
        lic = dataset_licensing(["counsel_chat", "psych8k"], "cc-by-nc-sa-4.0")
    assert (lic.license, lic.how) == ("cc-by-nc-sa-4.0", "set by the build recipe (`dataset.license`)")
    assert not caplog.records
    with caplog.at_level(logging.WARNING, logger="psycopref"):
        assert dataset_licensing(["counsel_chat", "psych8k"], "mit").license == "mit"
    assert any("less restrictive" in r.getMessage() and "psych8k" in r.getMessage() for r in caplog.records)
