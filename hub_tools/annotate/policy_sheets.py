"""Expert evaluation of a policy (paper §4.2, Human Evaluation; Figures 2 and 3): sheets from a win-rate evaluation.

`export_policy_sheets` reads a `psycopref policy eval` work dir (the test speeches, and per setting the policy's
and the reference's answers with the LLM judge's verdicts) and writes, per setting, a topic-stratified sample:

- a **comparison sheet**: the speech and the two answers as A/B, the policy's side drawn in a seeded,
  balanced way (half A, half B), so experts cannot tell which model wrote which and "always A" scores 50%;
  one preference column per principle and one overall (as the pair kit's sheet);
- a **rating sheet**: single answers (the policy's and the reference's, shuffled together, unnamed), each
  rated 1-5 on every principle (the absolute scores of Figure 3).

The keys (which side is the policy, the setting, the judge's verdict; whose answer each rating row is) are
separate files for the organiser. Paper: 200 comparisons (100 per setting), 100 rated answers.
"""

from __future__ import annotations

import csv
import random
from pathlib import Path

from ..io import read_json, write_jsonl
from ..paper.principles import PRINCIPLE_NAMES
from .pair_sheets import SHEET_COLUMNS, AnnotationError, _read_rows, principles_guide, sample_indices

RATING_COLUMNS: tuple[str, ...] = ("item_id", "speech", "response", *(f"rating_{p}" for p in PRINCIPLE_NAMES),
                                   "annotator", "notes")
FILES = {"sheet": "policy_sheet.csv", "sheet_jsonl": "policy_sheet.jsonl", "key": "policy_key.jsonl",
         "ratings": "rating_sheet.csv", "ratings_jsonl": "rating_sheet.jsonl", "rating_key": "rating_key.jsonl",
         "instructions": "INSTRUCTIONS.md"}
JUDGE_SIDE = {1.0: "policy", 0.0: "reference", 0.5: "tie"}  # the judge's speech score (both orders) as a side


def read_winrate(eval_dir, policy: str | None = None) -> dict:
    """The evaluation's speeches and, per setting, one record per speech: its text, topic, both answers and the
    judge's side. {"policy", "model", "reference", "judge", "settings": {setting: [records]}}."""
    from datasets import load_from_disk

    root = Path(eval_dir)
    results = read_json(root / "winrate.json")
    if results is None:
        raise AnnotationError(f"--winrate {root}: no winrate.json; run `psycopref policy eval RECIPE` first")
    names = list(results["policies"])
    if policy is None and len(names) != 1:
        raise AnnotationError(f"--winrate {root} evaluated {len(names)} policies ({', '.join(names)}); name one with --policy")
    policy = policy or names[0]
    if policy not in results["policies"]:
        raise AnnotationError(f"--policy {policy!r} is not in {root / 'winrate.json'} (has {', '.join(names)})")
    speeches = {r["id"]: r["text"] for r in load_from_disk(str(root / "test_speeches"))}
    settings = {}
    for setting in results["settings"]:
        path = root / "policies" / policy / setting / "verdicts.jsonl"
        if not path.is_file():
            raise AnnotationError(f"{path}: not found (the evaluation of {policy!r} in setting {setting!r} did not finish)")
        settings[setting] = [{"speech_id": r["speech_id"], "speech": speeches[r["speech_id"]],
                              "topic_coarse": r.get("topic_coarse"), "policy": r["policy_answer"],
                              "reference": r["reference_answer"], "judge": JUDGE_SIDE.get(r.get("score"))}
                             for _, r in _read_rows(path)]
    return {"policy": policy, "model": results["policies"][policy]["model"], "reference": results["reference"]["name"],
            "judge": results["judge"]["model"], "settings": settings}


def _item_id(prefix: str, k: int, total: int) -> str:
    return f"{prefix}-{k:0{max(3, len(str(total)))}d}"


def _balanced(n: int, rng: random.Random) -> list[str]:
    letters = ["A", "B"] * (n // 2) + ["A"] * (n % 2)
    rng.shuffle(letters)
    return letters


def _write(out: Path, csv_name: str, jsonl_name: str, columns: tuple[str, ...], rows: list[dict]) -> None:
    with (out / csv_name).open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, columns, quoting=csv.QUOTE_ALL)  # quoted: newlines and commas survive
        writer.writeheader()
        writer.writerows(rows)
    write_jsonl(out / jsonl_name, rows)


def export_policy_sheets(evaluation: dict, out_dir, n: int = 100, n_ratings: int = 50, seed: int = 42) -> dict[str, Path]:
    """Comparison and rating sheets with their keys and the instructions, from `read_winrate`'s result.

    Per setting: `n` speeches compared (paper: 100 each) and `n_ratings` speeches whose two answers are rated
    (each gives one policy and one reference row), all stratified by coarse topic."""
    if n < 1 or n_ratings < 0:
        raise AnnotationError(f"--n must be at least 1 and --ratings at least 0, got {n} and {n_ratings}")
    sheet, key, ratings, rating_key = [], [], [], []
    total = n * len(evaluation["settings"])
    for s_index, (setting, records) in enumerate(evaluation["settings"].items()):
        strata = [str(r["topic_coarse"]) for r in records]
        picked = sample_indices(strata, n, seed + s_index)
        letters = _balanced(len(picked), random.Random(f"{seed}-{setting}-letters"))
        for row, letter in zip(picked, letters):
            rec = records[row]
            item = _item_id("item", len(sheet) + 1, total)
            a, b = (rec["policy"], rec["reference"]) if letter == "A" else (rec["reference"], rec["policy"])
            sheet.append({"item_id": item, "speech": rec["speech"], "response_a": a, "response_b": b}
                         | {c: "" for c in SHEET_COLUMNS[4:]})
            key.append({"item_id": item, "speech_id": rec["speech_id"], "setting": setting, "policy": letter,
                        "topic_coarse": rec["topic_coarse"], "judge": rec["judge"], "policy_name": evaluation["policy"],
                        "reference_name": evaluation["reference"], "judge_model": evaluation["judge"]})
        for row in sample_indices(strata, n_ratings, seed + 1000 + s_index):
            rec = records[row]
            for side in ("policy", "reference"):
                rating_key.append({"speech_id": rec["speech_id"], "setting": setting, "side": side,
                                   "topic_coarse": rec["topic_coarse"], "speech": rec["speech"], "response": rec[side]})
    random.Random(f"{seed}-ratings").shuffle(rating_key)  # policy and reference rows mixed: nothing gives them away
    for k, rec in enumerate(rating_key, start=1):
        rec["item_id"] = _item_id("answer", k, len(rating_key))
        ratings.append({"item_id": rec["item_id"], "speech": rec.pop("speech"), "response": rec.pop("response")}
                       | {c: "" for c in RATING_COLUMNS[3:]})
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    _write(out, FILES["sheet"], FILES["sheet_jsonl"], SHEET_COLUMNS, sheet)
    write_jsonl(out / FILES["key"], key)
    _write(out, FILES["ratings"], FILES["ratings_jsonl"], RATING_COLUMNS, ratings)
    write_jsonl(out / FILES["rating_key"], rating_key)
    (out / FILES["instructions"]).write_text(policy_instructions(len(sheet), len(ratings)), encoding="utf-8")
    return {kind: out / name for kind, name in FILES.items()}


def policy_instructions(n_items: int, n_answers: int) -> str:
    """The experts' guide: the seven principles (Box B), how to compare and how to rate."""
    lines = ["# Expert evaluation instructions", "",
             f"`{FILES['sheet']}` holds {n_items} items: a client's message (`speech`) and two counsellor "
             "responses, `response_a` and `response_b`, in random order. For each principle below, write in its "
             "column which response follows it better: `A` or `B` (`tie` if they are truly equal; leave the cell "
             "empty if you cannot judge). In `pref_overall` give your overall preference.", "",
             f"`{FILES['ratings']}` holds {n_answers} single responses. Rate each on every principle from 1 (does "
             "not follow it at all) to 5 (follows it fully) in its `rating_<principle>` column; leave a cell empty "
             "if you cannot judge.", "",
             "Put your name in `annotator` on every row of both sheets and use `notes` freely. Do not edit "
             "`item_id`, the speech or the responses. Save as CSV (UTF-8) when done.", ""]
    return "\n".join(lines + principles_guide(("pref", "rating")))
