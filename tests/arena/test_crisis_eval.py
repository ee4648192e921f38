"""The crisis detector as a quality gate on the fixed, labelled speeches of benchmarks/data/ (written before
the rules were tuned; tuned on dev only): the bundled layer alone reaches recall >= 95% with false alarms
<= 10% on the held-out test split (and on dev), and the context rules of the data file do what it says."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from hub_tools.arena.crisis import load_rules

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_crisis.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_crisis", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_the_evaluation_set_is_large_and_varied(bench):
    rows = {s: bench.load_split(s) for s in bench.SPLITS}
    every = [r for split in rows.values() for r in split]
    assert sum(r.crisis for r in every) >= 150 and sum(not r.crisis for r in every) >= 150
    assert len(rows["test"]) >= 150 and all(any(r.crisis for r in s) and any(not r.crisis for r in s)
                                            for s in rows.values())
    categories = {"suicide", "self_harm", "overdose", "eating_disorder", "abuse", "harm_to_others"}
    for split in rows.values():
        assert {r.group for r in split if r.crisis} == categories
        assert {r.wording for r in split if r.crisis} == {"direct", "indirect"}
    assert not {r.text for r in rows["dev"]} & {r.text for r in rows["test"]}  # no speech in both


@pytest.mark.parametrize("split", ["test", "dev"])
def test_the_bundled_rules_meet_the_targets(bench, split):
    result = bench.evaluate(bench.load_split(split), load_rules().signals)
    wrong = [r.text for r in result["wrong"]]
    assert result["recall"] >= 0.95, wrong
    assert result["false_alarms"] <= 0.10, wrong
    table = bench.table(split, result)
    assert "| crisis: overdose |" in table and f"recall {result['recall']:.1%}" in table


def test_the_benchmark_script_prints_both_splits(bench, capsys):
    assert bench.main(["--show-misses"]) == 0
    out = capsys.readouterr().out
    assert "**dev**" in out and "**test**" in out and "false alarms" in out


@pytest.mark.parametrize("text, signals", [
    ("My best friend died by suicide and I want to die too.", ["suicide"]),  # the phrase blanked, the rest counts
    ("My best friend died by suicide last year.", []),
    ("I watched a documentary about overdoses.", []),
    ("I used to cut myself in high school.", []),
    ("I used to cut myself in high school and I started again this week.", ["self_harm"]),  # a relapse counts
    ("I'm killing it at work. But I want to kill myself at night.", ["suicide"]),  # sentence by sentence
])
def test_context_rules(text, signals):
    assert load_rules().signals(text) == signals


def test_a_custom_file_has_its_own_context_rules(tmp_path):
    path = tmp_path / "crisis.yaml"
    path.write_text("categories:\n  eviction: ['\\bevict\\w*']\nnot_counted: ['\\beviction\\s+notice\\s+template']\n"
                    "other_contexts: ['\\blandlord\\s+course']\nbut_now: ['\\btomorrow']\n"
                    "banner: 'About {signals}.'\nresources: ['211 (US)']\n", encoding="utf-8")
    rules = load_rules(str(path))
    assert rules.signals("I need an eviction notice template.") == []
    assert rules.signals("In my landlord course we discussed evictions.") == []
    assert rules.signals("My landlord course is over and they evict us tomorrow.") == ["eviction"]
    assert rules.matches("They are evicting us.") == {"eviction": ["evicting"]}
    bad = tmp_path / "bad.yaml"
    bad.write_text("categories: {a: [x]}\nbut_now: ['(']\nbanner: '{signals}'\nresources: [x]\n", encoding="utf-8")
    with pytest.raises(Exception, match="bad.yaml: but_now: bad regular expression"):
        load_rules(str(bad))
