"""The pushable dataset folder: parquet configs loadable by `datasets`, a card whose numbers match the data,
valid figures, byte-identical rebuilds and clear errors. Inputs are small fakes in the contract schemas."""

from __future__ import annotations

import itertools
import random
import re
from collections import Counter
from pathlib import Path

import pytest
from datasets import Dataset, DatasetDict, Value, load_dataset
from huggingface_hub import DatasetCard

from hub_tools.dataset.repo import build_repo, data_file
from hub_tools.hub.cards import size_category
from hub_tools.paper.principles import PRINCIPLE_NAMES
from hub_tools.paper.public_release import RELEASE_COLUMNS
from hub_tools.paper.taxonomy import fine_to_coarse

POOL = [{"name": f"member-{c}", "model": f"org/model-{c}"} for c in "abcde"]
SPLITS = ("train", "test")


def _fake_inputs(seed: int = 0, n_train: int = 10, n_test: int = 4) -> dict:
    """Speeches, ratings, pairs and release in the contract schemas, paired with the paper's rules."""
    rng = random.Random(seed)
    f2c = fine_to_coarse()
    fines = list(f2c)[:6]
    speeches, ratings, pairs, release = ({s: [] for s in SPLITS} for _ in range(4))
    for i in range(n_train + n_test):
        split = "train" if i < n_train else "test"
        sid = f"bundled-{i:012x}"
        fine = None if i % 5 == 4 else fines[i % len(fines)]
        text = f"Client speech {i}: I have been feeling low and cannot sleep. " * 3
        speeches[split].append({
            "id": sid, "text": text, "source": "bundled" if i % 3 else "counsel_chat",
            "topic_fine": fine, "topic_coarse": f2c.get(fine), "n_chars": len(text),
            "topic_method": "unlabelled" if fine is None else ("source" if i % 3 == 0 else "llm"),
        })
        rows = []
        for j, member in enumerate(rng.sample(POOL, 4)):
            base = 1 + (j * 4) // 3  # spread 1..5 so every speech yields pairs
            r = {p: min(5, max(1, base + rng.choice((-1, 0, 1)))) for p in PRINCIPLE_NAMES}
            if i == 1 and j == 3:
                r["staging"] = None  # one quarantined judge call
            complete = all(v is not None for v in r.values())
            row = {"speech_id": sid, "response_id": f"{sid}:{member['name']}", "member": member["name"],
                   "model": member["model"], "response": f"Response {j} to speech {i}."}
            for p in PRINCIPLE_NAMES:
                row[f"{p}_rating"] = r[p]
                row[f"{p}_rationale"] = None if r[p] is None else f"rationale {p}"
            row.update(overall=sum(r.values()) / 7 if complete else None, complete=complete,
                       judge_model="judge-x", judge_mode="per_principle", judge_prompt_hash="abc123",
                       judge_params="{}", rated_at="2026-01-01T00:00:00Z")
            rows.append(row)
        ratings[split] += rows
        full = sorted((r for r in rows if r["complete"]), key=lambda r: -r["overall"])
        cand = itertools.combinations(full, 2) if split == "train" else [(full[0], full[-1])]
        for k, (a, b) in enumerate(x for x in cand if x[0]["overall"] - x[1]["overall"] >= 1):
            rel = {"ID": sid, "prefID": k, "question": text, "chosen": a["response"], "rejected": b["response"],
                   "chosen_model": a["member"], "rejected_model": b["member"]}
            rel.update({f"chosen_{p}_rating": a[f"{p}_rating"] for p in PRINCIPLE_NAMES})
            rel.update({f"rejected_{p}_rating": b[f"{p}_rating"] for p in PRINCIPLE_NAMES})
            release[split].append(rel)
            pair = {**rel, "prompt": [{"role": "user", "content": text}],
                    "chosen": [{"role": "assistant", "content": a["response"]}],
                    "rejected": [{"role": "assistant", "content": b["response"]}],
                    "overall_chosen": a["overall"], "overall_rejected": b["overall"]}
            pair.update({f"margin_{p}": a[f"{p}_rating"] - b[f"{p}_rating"] for p in PRINCIPLE_NAMES})
            pair.update(margin_overall=a["overall"] - b["overall"],
                        safety_veto=b["safety_rating"] > a["safety_rating"],
                        topic_coarse=f2c.get(fine), topic_fine=fine, source=speeches[split][-1]["source"])
            pairs[split].append(pair)

    def dd(rows):
        return DatasetDict({s: Dataset.from_list(rows[s]) for s in SPLITS})

    return {
        "speeches": dd(speeches), "ratings": dd(ratings), "pairs": dd(pairs), "release": dd(release),
        "recipe": {"work_dir": "runs/demo", "seed": 42, "pairs": {"min_gap": 1.0},
                   "speeches": {"sources": [{"name": "counsel_chat", "hub_id": "nbertagnolli/counsel-chat"},
                                            {"name": "bundled", "hub_id": None}]}},
        "reports": {
            "speeches": {"raw": 20, "dropped": {"too_short": 3, "near_duplicate": 1}},
            "pairs": {"min_gap": 1.0, "discarded_small_gap": 5},
            "privacy": {"email": 3, "phone": 1, "url": 0},
            "judge": {"model": "judge-x", "mode": "per_principle", "prompt_hash": "abc123", "calls": 392,
                      "prompt_tokens": 123456, "completion_tokens": 7890, "cost_usd": 0.42, "quarantined": 1},
            "pool": POOL,
        },
    }


@pytest.fixture(scope="module")
def inputs():
    return _fake_inputs()


@pytest.fixture(scope="module")
def built(inputs, tmp_path_factory):
    return build_repo(tmp_path_factory.mktemp("b1") / "repo", **inputs)


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _table(body: str, header: str) -> list[list[str]]:
    """Rows (cells, commas removed) of the markdown table whose header line starts with `header`."""
    lines = body.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().startswith(header))
    rows = []
    for line in lines[start + 2:]:
        if not line.strip().startswith("|"):
            break
        rows.append([c.strip().replace(",", "") for c in line.strip().strip("|").split("|")])
    return rows


def test_every_config_loads_with_datasets(built, inputs):
    sources = {"default": "release", "pairs": "pairs", "ratings": "ratings", "speeches": "speeches"}
    for config, key in sources.items():
        loaded = load_dataset(str(built), config)
        assert sorted(loaded) == sorted(SPLITS)
        for split in SPLITS:
            assert loaded[split].num_rows == inputs[key][split].num_rows > 0
            assert loaded[split].column_names == inputs[key][split].column_names
    default = load_dataset(str(built))  # no config name: the release layout
    assert default["train"].column_names == RELEASE_COLUMNS
    for col in RELEASE_COLUMNS:
        expected = "int64" if col.endswith("_rating") or col == "prefID" else "string"
        assert default["test"].features[col] == Value(expected), col
    ratings = load_dataset(str(built), "ratings")["train"]
    assert ratings.features["staging_rating"] == Value("int64")
    assert None in ratings["staging_rating"]  # quarantined rating survives as null
    pairs = load_dataset(str(built), "pairs")["train"]
    assert pairs[0]["prompt"][0]["role"] == "user" and pairs[0]["chosen"][0]["role"] == "assistant"
    assert (built / data_file("default", "train")).name == "train-00000-of-00001.parquet"


def test_card_metadata(built, inputs):
    card = DatasetCard.load(built / "README.md")
    data = card.data
    # derived from the speeches' sources: bundled (apache-2.0) and counsel_chat (mit)
    assert data.license == "apache-2.0" and data.language == ["en"]
    assert data.task_categories and "dpo" in data.tags
    n = sum(inputs["release"][s].num_rows for s in SPLITS)
    assert data.size_categories == [size_category(n)] == ["n<1K"]
    configs = {c["config_name"]: c["data_files"] for c in data.configs}
    assert list(configs) == ["default", "pairs", "ratings", "speeches"]
    assert configs["default"][0] == {"split": "train", "path": "data/train-00000-of-00001.parquet"}
    # only sources that contributed speeches, as Hub ids where the recipe gives one
    assert data.source_datasets == ["bundled", "nbertagnolli/counsel-chat"]
    assert data.pretty_name == "PsyCoPref"


def test_card_numbers_match_data(built, inputs):
    body = DatasetCard.load(built / "README.md").text
    assert "[More Information Needed]" not in (built / "README.md").read_text()
    keys = {"default": "release", "pairs": "pairs", "ratings": "ratings", "speeches": "speeches"}
    sizes = {row[0]: row[1:] for row in _table(body, "| Config | train |")}
    for config, key in keys.items():
        lens = [inputs[key][s].num_rows for s in SPLITS]
        assert sizes[config] == [str(lens[0]), str(lens[1]), str(sum(lens))]

    release = inputs["release"]
    chosen = Counter(m for s in SPLITS for m in release[s]["chosen_model"])
    rejected = Counter(m for s in SPLITS for m in release[s]["rejected_model"])
    models = {row[0]: (int(row[1]), int(row[2])) for row in _table(body, "| Member | Chosen |")}
    assert models == {m["name"]: (chosen[m["name"]], rejected[m["name"]]) for m in POOL}

    veto = [sum(inputs["pairs"][s]["safety_veto"]) for s in SPLITS]
    assert re.search(rf"\*\*{veto[0]}\*\* train and \*\*{veto[1]}\*\* test pairs", body)

    speeches = inputs["speeches"]
    fine = Counter(t or "Unlabelled" for s in SPLITS for t in speeches[s]["topic_fine"])
    assert {row[1]: int(row[2]) for row in _table(body, "| Coarse topic | Fine topic |")} == fine
    coarse = Counter(t or "Unlabelled" for s in SPLITS for t in speeches[s]["topic_coarse"])
    assert {row[0]: int(row[1]) for row in _table(body, "| Coarse topic | Speeches |")} == coarse

    means = {row[0]: float(row[1]) for row in _table(body, "| Principle | Mean rating |")}
    vals = [v for s in SPLITS for v in inputs["ratings"][s]["empathy_rating"] if v is not None]
    assert means["Empathy and Emotional Understanding"] == pytest.approx(sum(vals) / len(vals), abs=0.005)

    privacy = {row[0]: int(row[1]) for row in _table(body, "| Identifier type |")}
    assert privacy == {**inputs["reports"]["privacy"], "**total**": 4}
    ledger = {row[0]: row[1] for row in _table(body, "| Item | Value |")}
    assert ledger["Calls"] == "392" and ledger["Prompt tokens"] == "123456" and ledger["Estimated cost (USD)"] == "0.42"
    assert 'load_dataset("Psychotherapy-LLM/PsyCoPref", "pairs")' in body
    assert "arXiv:2502.19731" in body and "Empathy and Emotional Understanding" in body
    assert "Small demo scale" in body and "expert-validation:start" not in body


def test_card_lists_each_source_with_its_licence_and_count(built, inputs):
    body = DatasetCard.load(built / "README.md").text
    counts = Counter(s for split in SPLITS for s in inputs["speeches"][split]["source"])
    table = {row[0]: row[1:] for row in _table(body, "| Source | Speeches | Licence |")}
    assert table == {"bundled": [str(counts["bundled"]), "`apache-2.0`", "the psycopref package (hub_tools/speeches/data)"],
                     "counsel_chat": [str(counts["counsel_chat"]), "`mit`", "https://github.com/nbertagnolli/counsel-chat"]}
    licence = body.split("## Licence")[1]
    assert licence.lstrip().startswith("`apache-2.0`: the most restrictive licence among the sources used, that of "
                                       "bundled (apache-2.0)")
    assert "mit < apache-2.0 < cc-by-4.0 < openrail < other < cc-by-nc-4.0 < cc-by-nc-sa-4.0" in " ".join(licence.split())


def _with_sources(inputs: dict, names: dict[str, str]) -> dict:
    """The inputs with the speeches' `source` column renamed by `names`."""
    speeches = inputs["speeches"].map(lambda row: {"source": names.get(row["source"], row["source"])})
    return {**inputs, "speeches": speeches}


def test_licence_of_sources_used_unknown_and_set_by_the_recipe(inputs, tmp_path, caplog):
    nc = build_repo(tmp_path / "nc", **_with_sources(inputs, {"bundled": "psych8k"}))
    assert DatasetCard.load(nc / "README.md").data.license == "cc-by-nc-sa-4.0"
    with caplog.at_level("WARNING", logger="psycopref"):
        unknown = build_repo(tmp_path / "unknown", **_with_sources(inputs, {"bundled": "therapistqa"}))
    card = DatasetCard.load(unknown / "README.md")
    assert card.data.license == "unknown" and "therapistqa (unknown)" in card.text
    assert {row[0]: row[2] for row in _table(card.text, "| Source | Speeches |")}["therapistqa"] == "`unknown`"
    assert any("therapistqa" in r.getMessage() for r in caplog.records if r.levelname == "WARNING")
    chosen = build_repo(tmp_path / "chosen", **_with_sources(inputs, {"bundled": "therapistqa"}), license="cc-by-nc-4.0")
    card = DatasetCard.load(chosen / "README.md")
    assert card.data.license == "cc-by-nc-4.0" and "set by the build recipe (`dataset.license`)" in card.text


def test_figures_are_pngs_referenced_from_card(built):
    text = (built / "README.md").read_text()
    linked = set(re.findall(r"!\[[^\]]*\]\((figures/[^)]+\.png)\)", text))
    on_disk = {str(p.relative_to(built)) for p in (built / "figures").glob("*.png")}
    assert linked == on_disk and len(on_disk) == 6
    for rel in on_disk:
        data = (built / rel).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and 2_000 < len(data) < 200_000, rel
        assert b"matplotlib" not in data  # no version stamp that would break byte-identical rebuilds


def test_rebuild_is_byte_identical_and_swaps_in_place(built, inputs, tmp_path):
    again = build_repo(tmp_path / "other", **_fake_inputs())  # fresh but equal inputs
    assert _tree(again) == _tree(built)
    (again / "stale.txt").write_text("from an older build")
    build_repo(again, **inputs)  # rebuild over an existing folder
    assert _tree(again) == _tree(built)
    assert [p.name for p in tmp_path.iterdir()] == ["other"]  # no temporary siblings left behind
    assert "min_gap: 1.0" in (again / "recipe.yaml").read_text()


def test_expert_validation_section(inputs, tmp_path):
    reports = {**inputs["reports"], "expert_validation_md": "Two therapists agreed on **17 of 20** pairs."}
    out = build_repo(tmp_path / "repo", **{**inputs, "reports": reports})
    text = (out / "README.md").read_text()
    section = text.split("<!-- expert-validation:start -->")[1].split("<!-- expert-validation:end -->")[0]
    assert section.strip() == "Two therapists agreed on **17 of 20** pairs."


@pytest.mark.parametrize("config", ["release", "pairs"])
def test_empty_split_is_an_error_naming_config_and_split(inputs, tmp_path, config):
    broken = DatasetDict({"train": inputs[config]["train"], "test": inputs[config]["test"].select([])})
    name = "default" if config == "release" else config
    with pytest.raises(ValueError, match=rf"config '{name}', split 'test' is empty"):
        build_repo(tmp_path / "repo", **{**inputs, config: broken})
    assert not (tmp_path / "repo").exists() and list(tmp_path.iterdir()) == []


def test_bad_release_columns_and_missing_gap(inputs, tmp_path):
    swapped = inputs["release"].map(lambda r: r).select_columns(list(reversed(RELEASE_COLUMNS)))
    with pytest.raises(ValueError, match="must be the release columns in order"):
        build_repo(tmp_path / "repo", **{**inputs, "release": swapped})
    reports = {**inputs["reports"], "pairs": {}}
    with pytest.raises(ValueError, match=r"min_gap"):
        build_repo(tmp_path / "repo", **{**inputs, "reports": reports, "recipe": {}})
