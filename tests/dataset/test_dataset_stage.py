"""End to end, the dataset half: stage outputs in the contract formats -> run_pairs -> run_dataset -> run_push.

The work dir holds what stages 1-3 write (speeches, ratings, judge_ledger.json, speeches_report.json) with
planted personal data, gap-rule passes and ties, an incomplete rating and one safety-veto pair. The built
folder must be loadable by `datasets` locally and from the test Hub exactly as a user would load it, hold no
planted datum in any file, rebuild byte for byte, and re-push without a commit.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from itertools import combinations
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from datasets import Dataset, load_dataset, load_from_disk

from hub_tools.config import public_dump
from hub_tools.dataset import stage as dataset_stage
from hub_tools.dataset.pipeline import validate_recipe
from hub_tools.io import save_atomic
from hub_tools.judge.stage import RATING_FEATURES
from hub_tools.pairs import stage as pairs_stage
from hub_tools.pairs.build import PAIRS_FEATURES, PairsError, split_speeches
from hub_tools.paper.principles import PRINCIPLE_NAMES
from hub_tools.paper.public_release import RELEASE_COLUMNS
from hub_tools.paper.taxonomy import fine_to_coarse
from hub_tools.speeches.stage import FEATURES as SPEECH_FEATURES
from hub_tools.speeches.stage import speech_id

from hub_server import TOKEN, run_client, serve_hub

REPO_ID = "Psychotherapy-LLM/PsyCoPref"
SPLITS = ("train", "test")
CONFIGS = ("default", "pairs", "ratings", "speeches")
POOL = [{"name": f"pool-{c}", "model": f"org/model-{c}", "base_url": "http://unused"} for c in "abcde"]

# Planted personal data: (where, datum, type the scrubber must report). "where" is (speech index, part)
# with part "speech", ("response", j) or ("rationale", j) for the j-th response of that speech.
PLANTS = [
    ((0, "speech"), "jane.doe@example.com", "EMAIL"),
    ((1, "speech"), "(415) 555-0132", "PHONE"),
    ((2, "speech"), "https://www.janes-journal.net/posts/42", "URL"),
    ((3, "speech"), "221 Baker Street, Apt 3", "ADDRESS"),
    ((4, "speech"), "123-45-6789", "ID"),
    ((5, ("response", 0)), "counselor@clinic-example.org", "EMAIL"),
    ((6, ("response", 1)), "+44 20 7946 0958", "PHONE"),
    ((8, ("response", 2)), "42 Elm Road, Springfield, IL 62704", "ADDRESS"),
    ((7, ("rationale", 2)), "www.calm-example.com/breathing", "URL"),
]
CRISIS_LINE = "1-800-273-8255"  # toll-free: kept (keep_toll_free defaults to True)

# Rating profiles (7 ints in PRINCIPLE_NAMES order: empathy relevance clarity safety exploration autonomy staging).
PROFILES = {
    "top": [5, 5, 5, 5, 5, 5, 5],          # 5.00
    "good": [4, 4, 4, 4, 4, 4, 4],         # 4.00
    "good_tie": [5, 3, 4, 4, 4, 4, 4],     # 4.00: ties with good (never paired with it)
    "mid": [4, 4, 4, 3, 4, 4, 3],          # 3.71
    "low": [3, 3, 3, 3, 3, 3, 3],          # 3.00
    "bad": [2, 2, 2, 2, 2, 2, 1],          # 1.86
    "unsafe_good": [5, 5, 5, 2, 5, 5, 5],  # 4.57, safety 2
    "safe_x": [4, 4, 4, 5, 4, 4, 4],       # 4.14, safety 5: < 1 below unsafe_good
    "safe_y": [5, 4, 4, 5, 4, 4, 3],       # 4.14: ties with safe_x
    "safe_low": [2, 2, 2, 5, 2, 2, 2],     # 2.43, safety 5: rejected against unsafe_good -> the one veto
    "quarantined": [4, 4, 4, 4, 4, 4, None],  # staging call quarantined: incomplete, never paired
}
# Four responses per speech. Every speech but 3 (all ties) and 11 (all incomplete) has a max-min gap >= 1,
# so test (3 speeches) is never empty;
# speech 1's only pair across a safety drop is its (highest, lowest) pair, so the veto is in either split.
COMBOS = [
    ("top", "good", "good_tie", "low"),
    ("unsafe_good", "safe_x", "safe_y", "safe_low"),
    ("top", "good", "low", "quarantined"),
    ("good", "good_tie", "good", "good_tie"),
    ("mid", "low", "bad", "top"),
    ("good", "mid", "bad", "low"),
    ("top", "mid", "low", "bad"),
    ("good_tie", "low", "bad", "mid"),
    ("top", "good", "mid", "bad"),
    ("mid", "good", "low", "top"),
    ("good", "low", "good_tie", "bad"),
    ("quarantined",) * 4,  # every response lost a judge call: the speech is split but never paired
]
TOPICS = ["Anxiety", "Depression", "Marriage", "Career", "Grief-and-loss", "Anxiety", "Parenting",
          "Self-harm", "Depression", None, "Family-conflict", "Career"]
STORIES = [
    "I keep waking up at 3 a.m. with my heart racing and I can't stop thinking about everything that could go wrong at work.",
    "For months I have felt flat and empty. I stopped seeing friends and most days I do not get out of bed before noon.",
    "My husband and I argue about money every week and it always ends with one of us sleeping on the couch.",
    "I was passed over for a promotion again and I am starting to believe I am just not good enough for this field.",
    "My mother died in the spring and I still set the table for her some nights. Everyone says I should be over it.",
    "Before every exam my hands shake and my mind goes blank, even when I know the material really well.",
    "My teenage son barely talks to me anymore. When I ask about school he slams the door to his room.",
    "Sometimes when things get too much I hurt myself. I have never told anyone and I am scared of what they would think.",
    "Nothing seems to matter lately. I go through the motions but I feel like I am watching my life from far away.",
    "I moved to a new city for a job and I have not made a single friend in a year. Weekends are the worst.",
    "My sister and I have not spoken since the wedding. My parents want us to make up but she hurt me badly.",
    "I am thinking about quitting my stable job to start a business, but my family says I am being reckless.",
]


def _speech_text(i: int) -> str:
    extra = {0: " You can write to me at jane.doe@example.com if that helps.",
             1: " My counsellor's old number was (415) 555-0132 but it no longer works.",
             2: " I wrote about it on https://www.janes-journal.net/posts/42 last week.",
             3: " I moved out and now live at 221 Baker Street, Apt 3 on my own.",
             4: f" I even lost my wallet with my ID 123-45-6789 in it. A friend gave me {CRISIS_LINE} to call."}
    return STORIES[i] + extra.get(i, " I do not know who else to ask about this.")


def _response_text(i: int, j: int, member: str) -> str:
    plant = {(5, 0): " You can also email counselor@clinic-example.org to book a session.",
             (6, 1): " A colleague in London takes calls at +44 20 7946 0958.",
             (8, 2): " There is a walk-in centre at 42 Elm Road, Springfield, IL 62704."}
    return (f"Thank you for sharing this ({member}, speech {i}). It sounds really hard, and it makes sense "
            f"that you feel this way. What has helped you a little, even briefly?" + plant.get((i, j), ""))


def _rationale(i: int, j: int, p: str, score: int) -> str:
    tail = " A good resource is www.calm-example.com/breathing for this." if (i, j) == (7, 2) and p == "empathy" else ""
    return f"The response scores {score} on {p} for this client's situation.{tail}"


def build_inputs(work: Path) -> dict:
    """Write speeches, ratings, judge_ledger.json and speeches_report.json as stages 1-3 would."""
    f2c = fine_to_coarse()
    speeches, ratings = [], []
    for i, fine in enumerate(TOPICS):
        text = _speech_text(i)
        source = "counsel_chat" if i % 3 == 0 else "bundled"
        sid = speech_id(source, text)
        speeches.append({"id": sid, "text": text, "source": source, "topic_fine": fine,
                         "topic_coarse": f2c[fine] if fine else None,
                         "topic_method": "unlabelled" if fine is None else ("source" if i % 3 == 0 else "llm"),
                         "n_chars": len(text)})
        for j, profile in enumerate(COMBOS[i]):
            member = POOL[(i + j) % len(POOL)]
            scores = PROFILES[profile]
            complete = None not in scores
            row = {"speech_id": sid, "response_id": f"{sid}:{member['name']}", "member": member["name"],
                   "model": member["model"], "response": _response_text(i, j, member["name"])}
            for p, s in zip(PRINCIPLE_NAMES, scores):
                row[f"{p}_rating"] = s
                row[f"{p}_rationale"] = None if s is None else _rationale(i, j, p, s)
            row.update(overall=sum(scores) / 7 if complete else None, complete=complete, judge_model="judge-model",
                       judge_mode="per_principle", judge_prompt_hash="0123abcd",
                       judge_params=json.dumps({"temperature": 0.0}), judge_seed=42, judge_positions=None,
                       rated_at="2026-01-02T03:04:05+00:00")
            ratings.append({k: row[k] for k in RATING_FEATURES})  # the judge stage's column order
    save_atomic(Dataset.from_list(speeches, features=SPEECH_FEATURES), work / "speeches")
    save_atomic(Dataset.from_list(ratings, features=RATING_FEATURES), work / "ratings")
    n_calls = 7 * len(ratings)
    (work / "judge_ledger.json").write_text(json.dumps({
        "calls": n_calls + 3, "prompt_tokens": 123_456, "completion_tokens": 7_890, "cost_usd": 0.0123,
        "seconds": 42.5, "prompts": n_calls, "quarantined": sum(not r["complete"] for r in ratings),
        "model": "judge-model", "mode": "per_principle"}))
    methods = Counter(s["topic_method"] for s in speeches)
    (work / "speeches_report.json").write_text(json.dumps({
        "config_hash": "f" * 64,
        "steps": {"input": 15, "empty": 0, "too_short": 2, "too_long": 0, "exact_dup": 1, "near_dup": 0, "kept": 12},
        "per_source": {s: {"input": n, "kept": n} for s, n in Counter(x["source"] for x in speeches).items()},
        "topic_method": {m: methods[m] for m in ("source", "llm", "unlabelled")},
        "topic_fine": dict(Counter(t for t in TOPICS if t).most_common()),
        "mean_chars": sum(s["n_chars"] for s in speeches) / len(speeches)}))
    return {"speeches": speeches, "ratings": ratings}


def run_pairs(recipe):
    return pairs_stage.run_pairs(recipe.pairs, recipe.work_dir, seed=recipe.seed)


def run_dataset(recipe):
    return dataset_stage.run_dataset(recipe.dataset, recipe.work_dir, recipe=public_dump(recipe))


def run_push(recipe, hub_dir: str | None = None):
    target = recipe.push if hub_dir is None else recipe.push.model_copy(update={"hub_dir": hub_dir})
    return dataset_stage.run_push(target, recipe.work_dir, recipe.dataset.repo_id)


def make_recipe(work: Path, **over):
    data = {"work_dir": str(work), "seed": 42,
            "generate": {"pool": POOL},
            "judge": {"endpoint": {"model": "judge-model", "base_url": "http://unused"}},
            "pairs": {"test_size": 3}}
    data.update(over)
    return validate_recipe(data)


def expected_pairs(inputs: dict, split_of: dict[str, str]) -> dict[str, set]:
    """The paper's rule, independently: (speech, chosen member, rejected member, veto) per split."""
    out = {s: set() for s in SPLITS}
    by_speech: dict[str, list] = {}
    for r in inputs["ratings"]:
        if r["complete"]:
            by_speech.setdefault(r["speech_id"], []).append(r)
    for sid, rows in by_speech.items():
        rows = sorted(rows, key=lambda r: (-r["overall"], r["response_id"]))
        cands = list(combinations(rows, 2)) if split_of[sid] == "train" else [(rows[0], rows[-1])]
        for hi, lo in cands:
            if hi["overall"] - lo["overall"] >= 1 - 1e-9:
                out[split_of[sid]].add((sid, hi["member"], lo["member"], lo["safety_rating"] > hi["safety_rating"]))
    return out


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """One full local run: inputs -> run_pairs -> run_dataset -> run_push into a local hub mirror."""
    root = tmp_path_factory.mktemp("stage")
    work = root / "work"
    inputs = build_inputs(work)
    recipe = make_recipe(work)
    run_pairs(recipe)
    folder = run_dataset(recipe)
    result = run_push(recipe, hub_dir=str(root / "hub"))
    report = json.loads((work / "pairs_report.json").read_text())
    return {"root": root, "work": work, "inputs": inputs, "recipe": recipe, "folder": Path(folder),
            "push": result, "report": report, "mirror": root / "hub" / "datasets" / REPO_ID}


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _table(text: str, heading: str) -> dict[str, int]:
    """{first cell: int(second cell)} of the first markdown table after `heading`."""
    lines = text.split(heading, 1)[1].splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    rows = {}
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        key, value = (c.strip().strip("*") for c in line.strip("|").split("|")[:2])
        rows[key] = int(value.replace(",", ""))
    return rows


def _summary(dd) -> dict:
    return {s: {"rows": d.num_rows, "columns": d.column_names, "features": {k: str(v) for k, v in d.features.items()}}
            for s, d in dd.items()}


# ---- folder ------------------------------------------------------------------------------

def test_folder_layout_recipe_and_mirror(built):
    folder, recipe = built["folder"], built["recipe"]
    assert folder == built["work"] / "dataset_repo"
    files = _files(folder)
    parquet = {f"{d}/{s}-00000-of-00001.parquet" for d in ("data", "pairs", "ratings", "speeches") for s in SPLITS}
    assert parquet <= set(files) and "README.md" in files and "recipe.yaml" in files
    pngs = [f for f in files if f.startswith("figures/")]
    assert pngs and all(f.endswith(".png") and files[f].startswith(b"\x89PNG") for f in pngs)
    assert set(files) == parquet | {"README.md", "recipe.yaml", *pngs}, "no stray files in the published folder"
    card = files["README.md"].decode()
    assert all(f"({f})" in card for f in pngs), "every figure is shown by the card"
    ledger = json.loads((built["work"] / "judge_ledger.json").read_text())
    for label, key in (("Calls", "calls"), ("Prompt tokens", "prompt_tokens"), ("Quarantined calls", "quarantined")):
        assert f"| {label} | {ledger[key]:,} |" in card, f"card's {label} is not the ledger's {key}"
    assert f"`{ledger['model']}`" in card and all(f"`{m['model']}`" in card for m in POOL)

    published = yaml.safe_load(files["recipe.yaml"])
    assert "work_dir" not in published
    # the published recipe is a valid recipe: with a work_dir back it is the recipe that was run
    again = validate_recipe({**published, "work_dir": recipe.work_dir})
    assert again.model_dump() == recipe.model_dump()
    for name, body in files.items():
        assert str(built["root"]).encode() not in body, f"{name} names a local path"

    assert built["push"].changed and Path(built["push"].url) == built["mirror"]
    assert _files(built["mirror"]) == files, "the local mirror is the folder, byte for byte"


def test_no_planted_personal_datum_in_any_file_and_card_counts_them(built):
    files = _files(built["folder"])
    texts = []
    for name, body in files.items():
        if name.endswith(".parquet"):
            texts.append(json.dumps(pq.read_table(built["folder"] / name).to_pylist(), ensure_ascii=False))
        else:
            texts.append(body.decode("utf-8", "replace"))
        for _, datum, _ in PLANTS:
            assert datum.encode() not in body, f"{datum!r} in the bytes of {name}"
    everything = "\n".join(texts)
    for _, datum, _ in PLANTS:
        assert datum not in everything, f"planted {datum!r} was published"
    for fragment in ("jane.doe", "555-0132", "7946 0958", "Baker Street", "Elm Road", "janes-journal", "calm-example"):
        assert fragment not in everything, f"{fragment!r} survived the scrub"
    for kind in {k for _, _, k in PLANTS}:
        assert f"[{kind}]" in everything, f"no [{kind}] placeholder published"
    assert CRISIS_LINE in everything, "the toll-free crisis line is kept"
    # the rest of the text survives the scrub untouched
    assert STORIES[0] in everything and "What has helped you a little" in everything

    want = Counter(k for _, _, k in PLANTS)
    table = _table(files["README.md"].decode(), "## Privacy scrub")
    total = table.pop("total")
    assert total == sum(want.values())
    assert all(table[k] == want[k] for k in want), table
    assert all(v == want.get(k, 0) for k, v in table.items()), table
    assert {k: v for k, v in built["report"]["privacy"].items() if v} == dict(want)


# ---- local load ------------------------------------------------------------------------

def test_every_config_loads_from_the_mirror_with_contract_columns(built):
    report, inputs = built["report"], built["inputs"]
    dest = str(built["mirror"])
    default = load_dataset(dest)
    assert set(default) == set(SPLITS)
    for s in SPLITS:
        d = default[s]
        assert d.column_names == RELEASE_COLUMNS
        for c in RELEASE_COLUMNS:
            want = "int64" if c == "prefID" or c.endswith("_rating") else "string"
            assert d.features[c].dtype == want, (s, c, d.features[c])
        assert d.num_rows == report["pairs"][s] > 0

    pairs = load_dataset(dest, "pairs")
    assert {s: pairs[s].num_rows for s in SPLITS} == report["pairs"]
    assert all(pairs[s].features == PAIRS_FEATURES for s in SPLITS)

    split_of = split_speeches([s["id"] for s in inputs["speeches"]], built["recipe"].pairs, seed=42)
    assert Counter(split_of.values()) == {"train": 9, "test": 3}
    speeches = load_dataset(dest, "speeches")
    for s in SPLITS:
        assert sorted(speeches[s]["id"]) == sorted(k for k, v in split_of.items() if v == s)
        assert speeches[s].column_names[:len(SPEECH_FEATURES)] == list(SPEECH_FEATURES)
        assert speeches[s].features["n_chars"].dtype == "int64"
    assert report["speeches"] == {s: sum(v == s for v in split_of.values()) for s in SPLITS}

    ratings = load_dataset(dest, "ratings")
    for s in SPLITS:
        assert ratings[s].column_names == list(RATING_FEATURES)
        assert ratings[s].num_rows == sum(split_of[r["speech_id"]] == s for r in inputs["ratings"])
        assert ratings[s].features["safety_rating"].dtype == "int64"
        assert ratings[s].features["complete"].dtype == "bool"
    assert sum(ratings[s].num_rows for s in SPLITS) == len(inputs["ratings"])


def test_pairs_follow_the_gap_rule_ties_incomplete_and_veto(built):
    inputs, report = built["inputs"], built["report"]
    split_of = split_speeches([s["id"] for s in inputs["speeches"]], built["recipe"].pairs, seed=42)
    pairs = load_from_disk(str(built["work"] / "pairs"))
    want = expected_pairs(inputs, split_of)
    for s in SPLITS:
        got = {(r["ID"], r["chosen_model"], r["rejected_model"], r["safety_veto"]) for r in pairs[s]}
        assert got == want[s] and len(got) == pairs[s].num_rows, s
        for sid in {r["ID"] for r in pairs[s]}:  # prefID numbers each speech's pairs 0..n-1
            assert sorted(r["prefID"] for r in pairs[s] if r["ID"] == sid) == list(range(len(
                [r for r in pairs[s] if r["ID"] == sid])))
        assert all(r["margin_overall"] >= 1 - 1e-9 for r in pairs[s])
    incomplete = [r for r in inputs["ratings"] if not r["complete"]]
    assert report["excluded_incomplete_ratings"] == len(incomplete) == 5
    for q in incomplete:
        assert all(q["member"] not in (r["chosen_model"], r["rejected_model"])
                   for s in SPLITS for r in pairs[s] if r["ID"] == q["speech_id"])
    assert all(r["ID"] != inputs["speeches"][11]["id"] for s in SPLITS for r in pairs[s])
    tie_speech = inputs["speeches"][3]["id"]
    assert all(r["ID"] != tie_speech for s in SPLITS for r in pairs[s]), "ties never make a pair"
    veto = [r for s in SPLITS for r in pairs[s] if r["safety_veto"]]
    assert len(veto) == 1 == sum(report["safety_veto_flagged"].values())
    assert veto[0]["ID"] == inputs["speeches"][1]["id"] and veto[0]["margin_safety"] == 2 - 5
    # release rows are the pairs rows narrowed (same order), in the folder's default config
    release = Dataset.from_parquet(str(built["folder"] / "data" / "train-00000-of-00001.parquet"))
    assert release["ID"] == pairs["train"]["ID"]
    assert release["chosen"] == [m[-1]["content"] for m in pairs["train"]["chosen"]]


# ---- the test Hub ------------------------------------------------------------------------

PUSH_SCRIPT = """
import json, sys
from huggingface_hub import HfApi
from hub_tools.dataset.stage import run_push
from hub_tools.dataset.pipeline import validate_recipe
recipe = validate_recipe(json.loads(sys.argv[1]))
out = []
for _ in range(2):
    r = run_push(recipe.push, recipe.work_dir, recipe.dataset.repo_id)
    out.append({"url": r.url, "commit_id": r.commit_id, "changed": r.changed,
                "commits": len(HfApi().list_repo_commits(recipe.dataset.repo_id, repo_type="dataset"))})
print(json.dumps(out))
"""

LOAD_SCRIPT = """
import json, sys
import datasets
out = {}
for config in [None, "pairs", "ratings", "speeches"]:
    dd = datasets.load_dataset(sys.argv[1], config)
    out[config or "default"] = {s: {"rows": d.num_rows, "columns": d.column_names,
                                     "features": {k: str(v) for k, v in d.features.items()}} for s, d in dd.items()}
print(json.dumps(out))
"""


def test_push_to_the_hub_loads_like_the_release_and_repush_is_a_noop(built, tmp_path):
    recipe = built["recipe"].model_dump(mode="json")
    recipe["push"]["hub_dir"] = None  # null: publish to HF_ENDPOINT
    with serve_hub(tmp_path) as hub:
        proc = run_client(PUSH_SCRIPT, hub.env(tmp_path / "home-maintainer"), json.dumps(recipe))
        assert TOKEN not in proc.stdout + proc.stderr
        first, again = json.loads(proc.stdout.strip().splitlines()[-1])
        repo = hub.hub.repos[("dataset", REPO_ID)]
        assert first["changed"] and first["commit_id"] == repo.branches["main"]
        assert first["url"] == f"{hub.url}/datasets/{REPO_ID}" and not repo.private
        assert not again["changed"] and again["commit_id"] == first["commit_id"]
        assert again["commits"] == first["commits"] == len(repo.commits) == 2  # repo creation + one push

        local = _files(built["folder"])
        head = repo.commits[repo.branches["main"]].files
        assert set(head) == set(local) | {".gitattributes"}
        for name, body in local.items():
            assert hub.hub.blob_path(head[name]).read_bytes() == body, f"{name} differs on the Hub"
        assert "recipe.yaml" in head
        for path in hub.hub.uploaded_files():
            assert TOKEN.encode() not in path.read_bytes(), "the token was uploaded"

        # a user, anonymously, as on the Hub
        proc = run_client(LOAD_SCRIPT, hub.env(tmp_path / "home-user", token="", disable_xet=False), REPO_ID)
        remote = json.loads(proc.stdout.strip().splitlines()[-1])
    report = built["report"]
    assert {s: remote["default"][s]["rows"] for s in SPLITS} == report["pairs"]
    assert {s: remote["pairs"][s]["rows"] for s in SPLITS} == report["pairs"]
    assert all(remote["default"][s]["columns"] == RELEASE_COLUMNS for s in SPLITS)
    assert remote["default"]["train"]["features"]["chosen_safety_rating"] == "Value('int64')"
    for config in CONFIGS:  # identical to what the local folder gives
        local_dd = load_dataset(str(built["folder"]), None if config == "default" else config)
        assert remote[config] == _summary(local_dd), config


# ---- resumability and errors -------------------------------------------------------------

def test_rebuild_is_byte_identical_and_push_unchanged(built):
    folder = built["folder"]
    before = _files(folder)
    assert run_dataset(built["recipe"]) == folder
    assert _files(folder) == before, "run_dataset twice must give identical bytes"
    run_pairs(built["recipe"])  # redoing the pairs stage too changes nothing either
    run_dataset(built["recipe"])
    assert _files(folder) == before
    again = run_push(built["recipe"], hub_dir=str(built["root"] / "hub"))
    assert not again.changed and again.commit_id == built["push"].commit_id


def test_empty_split_is_a_clear_error_and_keeps_earlier_outputs(built, tmp_path):
    work = tmp_path / "work"
    shutil.copytree(built["work"], work)
    before = _files(work)
    with pytest.raises(PairsError, match=r"test split has no pairs: no speeches were assigned.*test_size"):
        run_pairs(make_recipe(work, pairs={"test_size": 0}))
    with pytest.raises(PairsError, match=r"train split has no pairs: 9 train speeches.*lower min_gap"):
        run_pairs(make_recipe(work, pairs={"test_size": 3, "min_gap": 4.5}))
    assert _files(work) == before, "a failed run_pairs must leave every earlier output as it was"


def test_missing_inputs_name_the_stage_to_run(tmp_path):
    recipe = make_recipe(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match=r"speeches.*psycopref dataset speeches"):
        run_pairs(recipe)
    with pytest.raises(FileNotFoundError, match=r"pairs.*psycopref dataset pairs"):
        run_dataset(recipe)
    with pytest.raises(FileNotFoundError, match=r"dataset_repo.*psycopref dataset"):
        run_push(recipe, hub_dir=str(tmp_path / "hub"))


def test_card_licence_comes_from_the_published_speeches_sources_or_the_recipe(built, tmp_path):
    from huggingface_hub import DatasetCard

    from hub_tools.config import RecipeError

    published = load_from_disk(str(built["work"] / "speeches_split"))
    assert {s for split in SPLITS for s in published[split]["source"]} == {"bundled", "counsel_chat"}
    assert DatasetCard.load(built["folder"] / "README.md").data.license == "apache-2.0"  # bundled's, above mit
    work = tmp_path / "work"
    shutil.copytree(built["work"], work)
    folder = run_dataset(make_recipe(work, dataset={"license": "cc-by-nc-4.0"}))
    card = DatasetCard.load(Path(folder) / "README.md")
    assert card.data.license == "cc-by-nc-4.0" and "set by the build recipe (`dataset.license`)" in card.text
    with pytest.raises(RecipeError, match=r"dataset\.license"):
        make_recipe(work, dataset={"license": "CC BY-NC 4.0"})
