"""Expert evaluation of a policy (paper §4.2, Figures 2-3): sheets exported from a win-rate evaluation's folder,
blinded and balanced; synthetic filled sheets scored back into the paper's figures (82.5% judge–expert
agreement on 200 speeches); ratings per principle; the policy card; the CLI."""

from __future__ import annotations

import csv
import json
import random
from collections import Counter

import pytest

from hub_tools.annotate.pair_sheets import SHEET_COLUMNS, AnnotationError
from hub_tools.annotate.policy_report import rating_figure, to_markdown
from hub_tools.annotate.policy_scoring import read_rating_sheet, score_policy_sheets
from hub_tools.annotate.policy_sheets import RATING_COLUMNS, export_policy_sheets, read_winrate
from hub_tools.cli import main
from hub_tools.paper.principles import PRINCIPLE_NAMES

TOPICS = {"Mental Issues": 120, "Relationships": 80, "Life Changes": 50}  # 250 test speeches
SETTINGS = ("free", "length_matched")


def write_eval_dir(root, seed: int = 0, ties: bool = True):
    """A `psycopref policy eval` work dir: test speeches, winrate.json and, per setting, verdicts with both answers;
    the judge's speech score is decisive (1 or 0), except (`ties`) for a few ties (0.5) and one missing verdict."""
    from datasets import Dataset

    rng = random.Random(seed)
    speeches = [{"id": f"sp-{i:03d}", "text": f"speech {i}, I feel low", "topic_coarse": t}
                for i, t in enumerate(t for t, k in TOPICS.items() for _ in range(k))]
    Dataset.from_list(speeches).save_to_disk(str(root / "test_speeches"))
    for setting in SETTINGS:
        records = []
        for j, s in enumerate(speeches):
            score = float(rng.random() < 0.8)
            if ties and (j == 7 or j % 50 == 3):
                score = None if j == 7 else 0.5
            records.append({"speech_id": s["id"], "score": score, "topic_coarse": s["topic_coarse"],
                            "policy_answer": f"POLICY answer to {s['id']} ({setting})",
                            "reference_answer": f"REFERENCE answer to {s['id']} ({setting})"})
        path = root / "policies" / "psychocounsel" / setting / "verdicts.jsonl"
        path.parent.mkdir(parents=True)
        path.write_text("".join(json.dumps(r) + "\n" for r in records))
    (root / "winrate.json").write_text(json.dumps({
        "settings": list(SETTINGS), "reference": {"name": "gpt-4o", "model": "gpt-4o"}, "judge": {"model": "gpt-4o"},
        "policies": {"psychocounsel": {"model": "Psychotherapy-LLM/PsychoCounsel-Llama3-8B", "settings": {}}}}))
    return root


def rows(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture
def exported(tmp_path):
    evaluation = read_winrate(write_eval_dir(tmp_path / "eval"))
    return evaluation, export_policy_sheets(evaluation, tmp_path / "sheets", n=100, n_ratings=50, seed=3)


def test_sheets_are_blinded_balanced_and_stratified(exported):
    evaluation, paths = exported
    sheet, key = rows(paths["sheet_jsonl"]), rows(paths["key"])
    assert len(sheet) == len(key) == 200 and [r["item_id"] for r in sheet] == [k["item_id"] for k in key]
    with paths["sheet"].open(newline="", encoding="utf-8") as f:
        assert tuple(csv.DictReader(f).fieldnames) == SHEET_COLUMNS
    text = paths["sheet"].read_text() + paths["ratings"].read_text()
    assert "psychocounsel" not in text.lower() and "gpt-4o" not in text  # no model names reach the experts
    for setting in SETTINGS:
        mine = [k for k in key if k["setting"] == setting]
        assert Counter(k["policy"] for k in mine) == {"A": 50, "B": 50}  # balanced positions
        assert Counter(k["topic_coarse"] for k in mine) == {"Mental Issues": 48, "Relationships": 32, "Life Changes": 20}
        assert len({k["speech_id"] for k in mine}) == 100
    for s, k in zip(sheet, key):
        policy_side = s["response_a"] if k["policy"] == "A" else s["response_b"]
        assert policy_side == f"POLICY answer to {k['speech_id']} ({k['setting']})"
        assert s["speech"].startswith(f"speech {int(k['speech_id'][3:])},")
    ratings, rating_key = rows(paths["ratings_jsonl"]), rows(paths["rating_key"])
    assert len(ratings) == 200 and tuple(ratings[0]) == RATING_COLUMNS
    assert Counter((r["setting"], r["side"]) for r in rating_key) == {(s, side): 50 for s in SETTINGS
                                                                        for side in ("policy", "reference")}
    sides = [r["side"] for r in rating_key]
    assert sides[:10] != ["policy", "reference"] * 5  # shuffled together, not in pairs
    for r, k in zip(ratings, rating_key):
        assert r["response"].startswith(k["side"].upper()) and r["item_id"] == k["item_id"]
    guide = paths["instructions"].read_text()
    assert "holds 200 items" in guide and "holds 200 single responses" in guide
    assert all(f"(`pref_{p}`, `rating_{p}`)" in guide for p in PRINCIPLE_NAMES)


def fill(paths, out, expert: str, answer) -> None:
    """A filled comparison sheet: `answer(k, key record)` gives the letter for every question."""
    with out.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, SHEET_COLUMNS)
        w.writeheader()
        for k, (s, rec) in enumerate(zip(rows(paths["sheet_jsonl"]), rows(paths["key"]))):
            w.writerow(s | {f"pref_{q}": answer(k, rec, q) for q in (*PRINCIPLE_NAMES, "overall")} | {"annotator": expert})


def judge_letter(rec):
    other = "B" if rec["policy"] == "A" else "A"
    return {"policy": rec["policy"], "reference": other, "tie": "tie", None: None}[rec["judge"]]


@pytest.mark.parametrize("ties", [False, True])
def test_paper_agreement_figure_is_reproduced_from_synthetic_sheets(tmp_path, ties):
    """Paper §4.2: the experts and GPT-4o made the same judgment on 82.5% of 200 speeches (100 per setting).
    With judge ties in the sample, they are left out of the agreement and counted."""
    paths = export_policy_sheets(read_winrate(write_eval_dir(tmp_path / "eval", ties=ties)), tmp_path / "s", n=100)
    key = rows(paths["key"])
    decisive = [k for k, r in enumerate(key) if judge_letter(r) in ("A", "B")]
    assert len(decisive) == 200 if not ties else 190 <= len(decisive) < 200
    # the expert disagrees with the judge on 17.5% of the decisive speeches, says tie where the judge had none
    flip = set(decisive[2::5][: round(len(decisive) * 0.175)])
    other = {"A": "B", "B": "A"}

    def answer(k, rec, q):
        j = judge_letter(rec)
        if j not in ("A", "B"):
            return "tie"
        return other[j] if k in flip else j

    fill(paths, tmp_path / "expert.csv", "Dr. Expert", answer)
    report = score_policy_sheets([tmp_path / "expert.csv"], paths["key"], seed=1)
    both = report["settings"]["all"]
    ag = both["judge_agreement"][0]
    assert ag["n"] == len(decisive) and ag["agree"] == len(decisive) - len(flip)
    assert ag["percent"] == pytest.approx(100 * (1 - len(flip) / len(decisive)), abs=1e-9)
    assert ag["ties"] + ag["missing"] == 200 - len(decisive)  # judge ties, and a missing verdict
    if not ties:
        assert ag["percent"] == 82.5 and ag["agree"] == 165  # the paper's figure, exactly
    # Cohen's kappa by hand: (p_o - p_e) / (1 - p_e) over the A/B letters
    exp_l = [answer(k, key[k], "overall") for k in decisive]
    jud_l = [judge_letter(key[k]) for k in decisive]
    p_o = sum(a == b for a, b in zip(exp_l, jud_l)) / len(decisive)
    p_e = sum((exp_l.count(x) / len(exp_l)) * (jud_l.count(x) / len(jud_l)) for x in "AB")
    assert ag["kappa"] == pytest.approx((p_o - p_e) / (1 - p_e), abs=1e-9)
    # the expert win rate: the share of speeches where the expert picked the policy's letter (a tie half)
    scores = [0.5 if (a := answer(k, r, "overall")) == "tie" else float(a == r["policy"]) for k, r in enumerate(key)]
    assert both["overall"]["win_rate"] == pytest.approx(sum(scores) / 200)
    lo, hi = both["overall"]["ci"]
    assert lo < both["overall"]["win_rate"] < hi and hi - lo < 0.2
    free = [s for s, r in zip(scores, key) if r["setting"] == "free"]
    assert report["settings"]["free"]["overall"]["win_rate"] == pytest.approx(sum(free) / 100)
    assert report["settings"]["free"]["n_items"] == 100 and set(report["settings"]) == {"free", "length_matched", "all"}
    md = to_markdown(report)
    assert "| both settings | 200 |" in md and f"{ag['percent']:.1f} ({ag['agree']}/{ag['n']})" in md


def test_two_experts_average_per_speech_and_position_bias_shows(exported, tmp_path):
    _, paths = exported
    key = rows(paths["key"])
    fill(paths, tmp_path / "a.csv", "A. One", lambda k, rec, q: rec["policy"])  # always the policy
    fill(paths, tmp_path / "b.csv", "B. Two", lambda k, rec, q: "A" if k < 100 else "")  # always A, half blank
    report = score_policy_sheets([tmp_path / "a.csv", tmp_path / "b.csv"], paths["key"])
    s = report["settings"]["free"]  # the first 100 items: both experts answered
    expected = [(1.0 + float(r["policy"] == "A")) / 2 for r in key[:100]]
    assert s["overall"]["win_rate"] == pytest.approx(sum(expected) / 100)  # = 0.75: positions are balanced
    assert s["overall"]["win_rate"] == pytest.approx(0.75)
    assert report["settings"]["length_matched"]["overall"]["win_rate"] == 1.0  # only expert A answered there
    b = next(a for a in report["settings"]["length_matched"]["judge_agreement"] if a["expert"] == "B. Two")
    assert b["n"] == 0 and b["missing"] == 100
    assert s["per_principle"]["empathy"]["win_rate"] == pytest.approx(0.75)


def test_ratings_per_principle_and_their_figure(exported, tmp_path):
    _, paths = exported
    rating_key = {r["item_id"]: r for r in rows(paths["rating_key"])}
    out = tmp_path / "ratings.csv"
    with out.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, RATING_COLUMNS)
        w.writeheader()
        for r in rows(paths["ratings_jsonl"]):
            k = rating_key[r["item_id"]]
            value = 5 if k["side"] == "policy" else 3
            cells = {f"rating_{p}": (3 if p == "clarity" and k["setting"] == "length_matched" and k["side"] == "policy"
                                     else value) for p in PRINCIPLE_NAMES}
            cells["rating_safety"] = "" if k["side"] == "reference" else cells["rating_safety"]
            w.writerow(r | cells | {"annotator": "Dr. Expert"})
    fill(paths, tmp_path / "expert.csv", "Dr. Expert", lambda k, rec, q: rec["policy"])
    report = score_policy_sheets([tmp_path / "expert.csv"], paths["key"], [out], paths["rating_key"])
    r = report["ratings"]
    assert r["free"]["policy"]["empathy"] == {"mean": 5.0, "n": 50}
    assert r["length_matched"]["policy"]["clarity"]["mean"] == 3.0 and r["all"]["policy"]["clarity"]["mean"] == 4.0
    assert r["free"]["reference"]["relevance"]["mean"] == 3.0 and "safety" not in r["free"]["reference"]
    figure = rating_figure(report, tmp_path / "folder")
    assert (tmp_path / "folder" / figure).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| clarity | 5.00 | 3.00 | 3.00 | 3.00 | 4.00 | 3.00 |" in to_markdown(report, figure)  # free, length-matched, all


def test_bad_sheets_are_named(exported, tmp_path):
    _, paths = exported
    bad = tmp_path / "r.csv"
    bad.write_text("item_id," + ",".join(f"rating_{p}" for p in PRINCIPLE_NAMES) + "\nanswer-001,6" + ",4" * 6 + "\n")
    with pytest.raises(AnnotationError, match=r"r.csv: row 2 \(item_id 'answer-001'\), column rating_empathy: '6'"):
        read_rating_sheet(bad)
    with pytest.raises(AnnotationError, match="need their key"):
        score_policy_sheets([], paths["key"], [bad])
    with pytest.raises(AnnotationError, match="no winrate.json"):
        read_winrate(tmp_path)
    with pytest.raises(AnnotationError, match="--policy 'nope' is not in"):
        read_winrate(paths["key"].parent.parent / "eval", "nope")


def test_cli_exports_scores_and_keeps_the_pair_kit(tmp_path, capsys):
    evaluation = write_eval_dir(tmp_path / "eval")
    assert main(["annotate", "export", "--winrate", str(evaluation), "--out", str(tmp_path / "s"), "--n", "20",
                 "--ratings", "5"]) == 0
    paths = {"sheet_jsonl": tmp_path / "s" / "policy_sheet.jsonl", "key": tmp_path / "s" / "policy_key.jsonl"}
    assert len(rows(paths["key"])) == 40 and len(rows(tmp_path / "s" / "rating_key.jsonl")) == 20
    fill(paths, tmp_path / "e.csv", "E", lambda k, rec, q: rec["policy"])
    capsys.readouterr()
    assert main(["annotate", "score", "--kind", "policy", str(tmp_path / "e.csv"), "--key", str(paths["key"]),
                 "--json", str(tmp_path / "r.json")]) == 0
    assert "| both settings | 40 | 100.0 |" in capsys.readouterr().out
    assert json.loads((tmp_path / "r.json").read_text())["settings"]["all"]["overall"]["win_rate"] == 1.0
    with pytest.raises(SystemExit) as exit_:
        main(["annotate", "export", "--out", str(tmp_path / "x")])  # --pairs or --winrate is required
    assert exit_.value.code == 2


def test_the_policy_card_gets_the_expert_block(tiny_base, pairs_repo, tmp_path):
    pytest.importorskip("trl")
    from hub_tools.annotate.policy_report import attach_expert_eval
    from hub_tools.config import validate
    from hub_tools.policy.config import DPORecipe
    from hub_tools.policy.train import train_dpo

    cpu = {"use_cpu": True, "bf16": False, "report_to": "none", "save_strategy": "no", "eval_strategy": "no",
           "max_steps": 1, "per_device_train_batch_size": 4, "dataloader_num_workers": 0, "disable_tqdm": True,
           "max_length": 64}
    recipe = validate(DPORecipe, {"work_dir": str(tmp_path / "w"), "data": {"path": str(pairs_repo), "dev_fraction": 0.0},
                                  "model": {"name_or_path": str(tiny_base), "hub_id": "test-org/tiny-llama",
                                            "dtype": "float32", "save_dtype": "float32"}, "training": cpu})
    folder = train_dpo(recipe)
    assert "Expert evaluation" not in (folder / "README.md").read_text()
    evaluation = read_winrate(write_eval_dir(tmp_path / "eval"))
    paths = export_policy_sheets(evaluation, tmp_path / "s", n=20, n_ratings=0)
    fill(paths, tmp_path / "e.csv", "E", lambda k, rec, q: rec["policy"] if k % 4 else "tie")
    report = score_policy_sheets([tmp_path / "e.csv"], paths["key"])
    attach_expert_eval(report, recipe)
    card = (folder / "README.md").read_text()
    assert "### Expert evaluation" in card and "`psychocounsel` with `gpt-4o` on 40" in card
    assert "| both settings | 40 | 87.5 |" in card
    before = card
    attach_expert_eval(report, recipe)
    assert (folder / "README.md").read_text() == before  # same inputs, same card
