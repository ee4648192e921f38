"""Expert-validation sheets (paper §3.4): stratified blinded export, scoring, card section, CLI."""

from __future__ import annotations

import argparse
import csv
import json
import random

import pytest
from datasets import Dataset, DatasetDict

from hub_tools.annotate import cli as annotate_cli
from hub_tools.annotate import pair_sheets as annotate
from hub_tools.annotate.pair_sheets import (
    CARD_END,
    CARD_START,
    QUESTIONS,
    SHEET_COLUMNS,
    AnnotationError,
    allocate,
    export_sheet,
    read_sheet,
    score_sheets,
    update_card,
)
from hub_tools.paper.principles import PRINCIPLE_NAMES

MODELS = ("secret-model-alpha", "secret-model-omega")
TOPICS = {"Core Mental Health Issues": 60, "Relationships and Interpersonal Dynamics": 30, "Crisis and Safety Concerns": 10}


def make_pairs(sizes: dict[str, int] = TOPICS, seed: int = 0) -> Dataset:
    """A 'pairs'-config dataset with message-list responses holding newlines, commas and quotes."""
    rng = random.Random(seed)
    rows = []
    for topic, k in sizes.items():
        for j in range(k):
            i = len(rows)
            row = {"ID": f"bundled-{i:04d}", "prefID": j % 2, "question": f"Speech {i}: I feel low,\nalways.",
                   "prompt": [{"role": "user", "content": f"Speech {i}"}],
                   "chosen": [{"role": "assistant", "content": f'Chosen {i}, "kind"\nline two, end'}],
                   "rejected": [{"role": "assistant", "content": f"Rejected {i}; ok,\n\nbye"}],
                   "chosen_model": MODELS[i % 2], "rejected_model": MODELS[1 - i % 2],
                   "topic_coarse": topic, "topic_fine": "depression", "source": "bundled"}
            for p in PRINCIPLE_NAMES:
                row[f"chosen_{p}_rating"], row[f"rejected_{p}_rating"] = rng.randint(1, 5), rng.randint(1, 5)
            rows.append(row)
    return Dataset.from_list(rows)


def read_jsonl(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def letter_of(key_rec: dict, label: str) -> str:
    """The dataset label ('chosen'/'rejected'/'tie') as the letter the annotator saw."""
    other = "B" if key_rec["chosen"] == "A" else "A"
    return {"chosen": key_rec["chosen"], "rejected": other, "tie": "tie"}[label]


def write_sheet(path, sheet: list[dict], answers: dict[str, dict[str, str]], annotator: str = "") -> None:
    """Fill the exported sheet like a spreadsheet user would and save it as CSV (or JSONL by suffix)."""
    filled = [r | {f"pref_{q}": answers.get(r["item_id"], {}).get(q, "") for q in QUESTIONS}
              | {"annotator": annotator} for r in sheet]
    if path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in filled), encoding="utf-8")
        return
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, SHEET_COLUMNS, quoting=csv.QUOTE_MINIMAL)
        w.writeheader()
        w.writerows(filled)


def agreeing(key: list[dict]) -> dict[str, dict[str, str]]:
    return {k["item_id"]: {q: letter_of(k, k["labels"][q]) for q in QUESTIONS} for k in key}


@pytest.fixture
def exported(tmp_path):
    pairs = make_pairs()
    paths = export_sheet(pairs, tmp_path / "out", n=20, seed=7)
    return pairs, paths, read_jsonl(paths["jsonl"]), read_jsonl(paths["key"])


def test_allocate_largest_remainder_and_minimum_one():
    assert allocate({"a": 50, "b": 30, "c": 20}, 10) == {"a": 5, "b": 3, "c": 2}
    # quotas 2.8/0.8/0.4 -> 2,0,0 + remainders to a,b -> 3,1,0 -> c gets one from a
    assert allocate({"a": 7, "b": 2, "c": 1}, 4) == {"a": 2, "b": 1, "c": 1}
    assert allocate({"a": 5, "b": 3, "c": 2}, 2) == {"a": 1, "b": 1, "c": 0}  # n < strata: no minimum
    assert allocate({"a": 5, "b": 3}, 50) == {"a": 5, "b": 3}


def test_export_is_stratified_and_seeded(tmp_path, exported):
    pairs, paths, sheet, key = exported
    counts = {t: sum(k["topic_coarse"] == t for k in key) for t in TOPICS}
    assert counts == {"Core Mental Health Issues": 12, "Relationships and Interpersonal Dynamics": 6,
                      "Crisis and Safety Concerns": 2}
    assert len({k["row"] for k in key}) == 20
    again = read_jsonl(export_sheet(pairs, tmp_path / "again", n=20, seed=7)["key"])
    assert again == key
    other = read_jsonl(export_sheet(pairs, tmp_path / "other", n=20, seed=8)["key"])
    assert [k["row"] for k in other] != [k["row"] for k in key]


def test_export_takes_all_when_n_exceeds_size(tmp_path):
    pairs = make_pairs({"A": 3, "B": 2})
    key = read_jsonl(export_sheet(pairs, tmp_path, n=200)["key"])
    assert sorted(k["row"] for k in key) == list(range(5))
    sheet = read_jsonl(tmp_path / "sheet.jsonl")
    assert [r["item_id"] for r in sheet] == [k["item_id"] for k in key]


def test_export_without_topic_column_and_with_string_columns(tmp_path):
    pairs = make_pairs().remove_columns(["topic_coarse", "prompt"])
    pairs = pairs.map(lambda r: {"chosen": r["chosen"][0]["content"], "rejected": r["rejected"][0]["content"]})
    pairs = pairs.cast_column("chosen", pairs.features["question"]).cast_column("rejected", pairs.features["question"])
    sheet = read_jsonl(export_sheet(pairs, tmp_path, n=5)["jsonl"])
    assert len(sheet) == 5 and all(r["response_a"].startswith(("Chosen", "Rejected")) for r in sheet)


def test_sheet_is_blinded_and_key_maps_back(exported):
    pairs, paths, sheet, key = exported
    for kind in ("csv", "jsonl", "instructions"):
        text = paths[kind].read_text(encoding="utf-8")
        assert not any(m in text for m in MODELS), kind
        assert "bundled-" not in text  # pair IDs stay in the key only
    assert list(sheet[0]) == list(SHEET_COLUMNS)
    assert {"pref_overall", "annotator", "notes"} <= set(sheet[0]) and all(r["pref_safety"] == "" for r in sheet)
    assert {k["chosen"] for k in key} == {"A", "B"}
    assert abs(sum(k["chosen"] == "A" for k in key) - 10) <= 1
    for row, k in zip(sheet, key):
        pair = pairs[k["row"]]
        assert (k["ID"], k["prefID"]) == (pair["ID"], pair["prefID"])
        chosen_col = "response_a" if k["chosen"] == "A" else "response_b"
        rejected_col = "response_b" if k["chosen"] == "A" else "response_a"
        assert row[chosen_col] == pair["chosen"][0]["content"]
        assert row[rejected_col] == pair["rejected"][0]["content"]
        assert row["speech"] == pair["question"]
        for p in PRINCIPLE_NAMES:
            c, r = pair[f"chosen_{p}_rating"], pair[f"rejected_{p}_rating"]
            assert k["labels"][p] == ("chosen" if c > r else "rejected" if c < r else "tie")
        assert k["labels"]["overall"] == "chosen"
    instructions = paths["instructions"].read_text()
    assert "Sensitivity to the Stage of Change" in instructions and "pref_staging" in instructions


def test_csv_round_trip_keeps_multiline_commas_quotes(exported):
    _, paths, sheet, _ = exported
    raw = paths["csv"].read_bytes()
    assert not raw.startswith(b"\xef\xbb\xbf")
    with paths["csv"].open(encoding="utf-8", newline="") as f:
        assert list(csv.DictReader(f)) == sheet
    name, answers = read_sheet(paths["csv"])  # an unfilled sheet reads as all missing
    assert name == "sheet" and set(answers) == {r["item_id"] for r in sheet}
    assert all(v is None for a in answers.values() for v in a.values())


def test_reads_excel_style_csv_bom_semicolons_and_spelled_values(tmp_path, exported):
    _, _, sheet, key = exported
    path = tmp_path / "excel.csv"
    with path.open("w", encoding="utf-8-sig", newline="") as f:  # BOM, ';', CRLF as Excel saves it
        w = csv.DictWriter(f, SHEET_COLUMNS, delimiter=";")
        w.writeheader()
        spelled = {"A": "Response A", "B": " b. ", "tie": "="}
        for r, k in zip(sheet, key):
            w.writerow(r | {f"pref_{q}": spelled[letter_of(k, k["labels"][q])] for q in QUESTIONS} | {"annotator": "Dr X"})
    name, answers = read_sheet(path)
    assert name == "Dr X"
    assert answers == agreeing(key)


def test_scores_agreeing_and_flipping_annotators(tmp_path, exported):
    _, paths, sheet, key = exported
    perfect = agreeing(key)
    flip = {i: dict(a) for i, a in perfect.items()}
    for k in key[:3]:  # 3 of 20 overall preferences flipped
        flip[k["item_id"]]["overall"] = "B" if k["chosen"] == "A" else "A"
    write_sheet(tmp_path / "perfect.csv", sheet, perfect)
    write_sheet(tmp_path / "flipper.jsonl", sheet, flip, annotator="flipper")
    report = score_sheets([tmp_path / "perfect.csv", tmp_path / "flipper.jsonl"], paths["key"])
    assert report.annotators == {"perfect": 20, "flipper": 20}
    g = report.get("perfect", annotate.DATASET)
    assert (g.n, g.agree, g.percent, g.kappa) == (20, 20, 100.0, 1.0)
    for p in PRINCIPLE_NAMES:
        gp = report.get("perfect", annotate.DATASET, p)
        n_ties = sum(k["labels"][p] == "tie" for k in key)
        assert (gp.n, gp.ties, gp.percent) == (20 - n_ties, n_ties, 100.0)
    assert report.get("flipper", annotate.DATASET).percent == pytest.approx(85.0)
    assert report.get("perfect", "flipper").agree == 17
    assert report.get("flipper", annotate.DATASET, "empathy").percent == 100.0
    md = report.to_markdown()
    assert "| perfect vs flipper | 20 | 17 | 85.0 |" in md and "92.5%" in md
    d = report.to_dict()
    assert d["mean_label_agreement_overall"] == pytest.approx(92.5) and len(d["agreements"]) == 3 * len(QUESTIONS)


def test_random_annotator_agreement_matches_hand_count_and_exclusions(tmp_path, exported):
    _, paths, sheet, key = exported
    rng = random.Random(3)
    answers = {k["item_id"]: {q: rng.choice("AB") for q in QUESTIONS} for k in key}
    answers[key[0]["item_id"]]["overall"] = "tie"
    answers[key[1]["item_id"]]["overall"] = "tie"
    del answers[key[2]["item_id"]]  # skipped item
    answers[key[3]["item_id"]]["overall"] = ""
    write_sheet(tmp_path / "rand.csv", sheet, answers)
    g = score_sheets([tmp_path / "rand.csv"], paths["key"]).get("rand", annotate.DATASET)
    assert (g.n, g.ties, g.missing) == (16, 2, 2)
    assert g.agree == sum(answers[k["item_id"]]["overall"] == k["chosen"] for k in key[4:])
    assert g.kappa is not None and -1.0 <= g.kappa <= 1.0


def test_reproduces_paper_agreement_figures(tmp_path):
    """184/200 and 170/200 with the labels, 174/200 with each other -> 88.5% and 87% (paper §3.4)."""
    pairs = make_pairs({"Core": 150, "Youth": 70})
    paths = export_sheet(pairs, tmp_path / "out", n=200)
    sheet, key = read_jsonl(paths["jsonl"]), read_jsonl(paths["key"])
    wrong = {"t1": set(range(0, 16)), "t2": set(range(6, 36))}  # overlap of 10 -> 26 disagreements
    for name, bad in wrong.items():
        ans = {k["item_id"]: {"overall": ("B" if k["chosen"] == "A" else "A") if i in bad else k["chosen"]}
               for i, k in enumerate(key)}
        write_sheet(tmp_path / f"{name}.csv", sheet, ans, annotator=name)
    report = score_sheets([tmp_path / "t1.csv", tmp_path / "t2.csv"], paths["key"])
    assert report.get("t1", annotate.DATASET).agree == 184 and report.get("t2", annotate.DATASET).agree == 170
    assert report.mean_label_agreement() == pytest.approx(88.5)
    assert report.get("t1", "t2").percent == pytest.approx(87.0)
    assert report.get("t1", "t2", "empathy").missing == 200


def test_bad_value_and_unknown_item_name_file_and_item(tmp_path, exported):
    _, paths, sheet, key = exported
    answers = agreeing(key)
    answers[key[4]["item_id"]]["clarity"] = "C"
    write_sheet(tmp_path / "bad.csv", sheet, answers)
    with pytest.raises(AnnotationError, match=rf"bad\.csv: row 6 \(item_id '{key[4]['item_id']}'\), column pref_clarity"):
        score_sheets([tmp_path / "bad.csv"], paths["key"])
    sheet2 = [dict(r) for r in sheet]
    sheet2[2]["item_id"] = "item-999"
    write_sheet(tmp_path / "unknown.jsonl", sheet2, {})
    with pytest.raises(AnnotationError, match=r"unknown\.jsonl: item_id 'item-999' is not in the key"):
        score_sheets([tmp_path / "unknown.jsonl"], paths["key"])
    (tmp_path / "x.xlsx").write_bytes(b"PK")
    with pytest.raises(AnnotationError, match="x.xlsx.*CSV or JSONL"):
        score_sheets([tmp_path / "x.xlsx"], paths["key"])
    write_sheet(tmp_path / "dup.csv", sheet + sheet[:1], {})
    with pytest.raises(AnnotationError, match=rf"dup\.csv: row 22: item_id '{sheet[0]['item_id']}' appears twice"):
        read_sheet(tmp_path / "dup.csv")


def test_card_section_insert_replace_idempotent(tmp_path):
    card = tmp_path / "README.md"
    card.write_text("---\nlicense: cc-by-nc-4.0\n---\n# PsyCoPref\n\nIntro.\n", encoding="utf-8")
    update_card(card, "| table v1 |")
    once = card.read_text()
    update_card(card, "| table v1 |")
    assert card.read_text() == once and once.startswith("---\nlicense") and "## Expert validation" in once
    card.write_text(once + "\n## Later section\n", encoding="utf-8")
    update_card(card, "| table v2 |")
    text = card.read_text()
    assert text.count(CARD_START) == 1 and text.count(CARD_END) == 1
    assert "table v2" in text and "table v1" not in text and text.endswith("## Later section\n")
    assert text.count("## Expert validation") == 1
    card.write_text(f"x\n{CARD_START}\n", encoding="utf-8")
    with pytest.raises(AnnotationError, match="markers"):
        update_card(card, "t")


def _cli(argv):
    parser = argparse.ArgumentParser(prog="psycopref")
    annotate_cli.add_cli(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


def test_cli_end_to_end(tmp_path, capsys):
    pairs = make_pairs()
    DatasetDict({"train": pairs, "test": pairs.select(range(10))}).save_to_disk(str(tmp_path / "pairs"))
    assert _cli(["annotate", "export", "--pairs", str(tmp_path / "pairs"), "--split", "test", "--n", "6",
                 "--out", str(tmp_path / "out")]) == 0
    out = tmp_path / "out"
    key, sheet = read_jsonl(out / "key.jsonl"), read_jsonl(out / "sheet.jsonl")
    assert len(key) == 6 and all(k["row"] < 10 for k in key)
    write_sheet(tmp_path / "ann1.csv", sheet, agreeing(key), annotator="ann1")
    card = tmp_path / "README.md"
    card.write_text("# Card\n", encoding="utf-8")
    capsys.readouterr()
    assert _cli(["annotate", "score", str(tmp_path / "ann1.csv"), "--key", str(out / "key.jsonl"),
                 "--json", str(tmp_path / "r.json"), "--card", str(card)]) == 0
    printed = capsys.readouterr().out
    assert "| ann1 vs dataset labels | 6 | 6 | 100.0 |" in printed
    assert json.loads((tmp_path / "r.json").read_text())["mean_label_agreement_overall"] == 100.0
    assert "| ann1 vs dataset labels | 6 | 6 | 100.0 |" in card.read_text()
    with pytest.raises(AnnotationError, match="no split 'dev'"):
        _cli(["annotate", "export", "--pairs", str(tmp_path / "pairs"), "--split", "dev", "--out", str(out)])


def test_load_pairs_from_repo_folder_config(tmp_path):
    repo = tmp_path / "repo"
    (repo / "pairs").mkdir(parents=True)
    make_pairs({"A": 4}).to_parquet(str(repo / "pairs" / "train-00000-of-00001.parquet"))
    (repo / "README.md").write_text("---\nconfigs:\n- config_name: pairs\n  data_files:\n  - split: train\n"
                                    "    path: pairs/train-*.parquet\n---\n", encoding="utf-8")
    ds = annotate.load_pairs(str(repo), "train")
    assert len(ds) == 4 and ds[0]["chosen"][0]["role"] == "assistant"
