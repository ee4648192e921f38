"""The win-rate report: the markdown table in the paper's layout and the per-topic figure, from a results
dict built with `summarize` on hand-made verdicts (two policies, topics one of them was never judged on)."""

from __future__ import annotations

from hub_tools.paper.taxonomy import coarse_topics
from hub_tools.policy.winrate.report import FIGURE, markdown_table, topic_columns, topic_figure
from hub_tools.policy.winrate.stats import summarize

CORE, YOUTH, SAFETY = (coarse_topics()[i] for i in (0, 5, 6))  # in the paper's order


def _setting(scores, topics, pw=20):
    n = len(scores)
    return summarize(scores, scores, scores, topics, [pw] * n, [20] * n, samples=50, seed=0, topic_order=[CORE, YOUTH, SAFETY])


def _results(settings=("free", "length_matched")) -> dict:
    a = {s: _setting([1.0, 1.0, 0.0, 0.5], [YOUTH, CORE, CORE, "Other"], pw=30) for s in settings}
    b = {s: _setting([0.0, 0.5, 1.0], [SAFETY, SAFETY, CORE]) for s in settings}
    return {"reference": {"name": "gpt-4o", "model": "gpt-4o-2024-08-06"}, "judge": {"model": "gpt-4o"},
            "settings": list(settings), "bootstrap": {"confidence": 0.95},
            "policies": {"policy-a": {"model": "a", "settings": a}, "policy-b": {"model": "b", "settings": b}}}


def test_topics_follow_the_paper_order_then_the_others():
    assert topic_columns(_results()) == [CORE, YOUTH, SAFETY, "Other"]


def test_markdown_has_a_row_per_policy_and_setting_and_a_dash_where_a_topic_was_not_judged():
    md = markdown_table(_results())
    rows = [line for line in md.splitlines() if line.startswith("| policy-")]
    assert len(rows) == 8  # 2 policies x 2 settings, in the summary and the per-topic table
    assert rows[0].startswith("| policy-a | w/o length constraint | 62.5 [") and "| 1.50 |" in rows[0]
    assert rows[2].startswith("| policy-a | w/ length constraint |")  # settings outermost, as in Table 2
    cells = [c.strip() for c in rows[5].split("|")[1:-1]]  # policy-b per topic: Core, Youth, Safety, Other, Overall
    assert cells[:4] == ["policy-b", "w/o length constraint", "100.0 (n=1)", "–"]
    assert cells[4].startswith("25.0 [") and cells[4].endswith("(n=2)") and cells[5] == "–"
    assert cells[6].startswith("50.0 [")
    assert "against **gpt-4o** (`gpt-4o-2024-08-06`)" in md and "95% bootstrap" in md


def test_figure_has_a_panel_per_policy_and_is_reproducible(tmp_path):
    results = _results(("free",))
    rel = topic_figure(tmp_path, results)
    assert rel == f"figures/{FIGURE}"
    png = (tmp_path / rel).read_bytes()
    one = topic_figure(tmp_path / "card", results, policies=["policy-b"], name="policy-b.png")
    assert (tmp_path / "card" / one).read_bytes() != png
    assert topic_figure(tmp_path, results) == rel and (tmp_path / rel).read_bytes() == png  # same data, same bytes
    def height(data: bytes) -> int:
        return int.from_bytes(data[20:24], "big")  # PNG IHDR

    assert height(png) > 1.5 * height((tmp_path / "card" / one).read_bytes())  # two panels, one above the other
