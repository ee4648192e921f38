"""The `psycopref` console script: help, errors that name the file/key, stage commands offline."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml

from hub_tools.cli import build_parser, main
from hub_tools.commands import translate
from hub_tools.demo import demo_recipe_path


def _run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "hub_tools.cli", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=120)


GROUPS = {  # every command group and its verbs, in --help order
    "dataset": ["speeches", "generate", "judge", "pairs", "build", "push", "run"],
    "reward": ["train", "eval", "push"],
    "policy": ["dpo", "dpo-iter", "eval", "push"],
    "space": ["run", "deploy"],
    "annotate": ["export", "score"],
}
OLD_TO_NEW = {  # the old command names, kept for one release
    "speeches": ["dataset", "speeches"], "generate": ["dataset", "generate"], "judge": ["dataset", "judge"],
    "pairs": ["dataset", "pairs"], "push": ["dataset", "push"], "run": ["dataset", "run"],
    "train-reward": ["reward", "train"], "eval-reward": ["reward", "eval"], "push-reward": ["reward", "push"],
    "train-dpo": ["policy", "dpo"], "train-dpo-iter": ["policy", "dpo-iter"], "eval-policy": ["policy", "eval"],
    "push-policy": ["policy", "push"],
}


def _commands(help_text: str) -> list[str]:
    """The first word of each line of an argparse help's `commands:` section."""
    lines = help_text[help_text.index("commands:"):].split("\n\n")[0].splitlines()[2:]
    return [line.split()[0] for line in lines]


def test_help_lists_every_command_group():
    out = _run("--help")
    assert out.returncode == 0
    assert _commands(out.stdout) == ["dataset", "reward", "policy", "space", "release", "estimate", "annotate", "demo",
                                     "chat"]


@pytest.mark.parametrize("group", GROUPS)
def test_each_group_lists_its_commands_one_line_each(group, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    with pytest.raises(SystemExit) as exit_:
        main([group, "--help"])
    assert exit_.value.code == 0
    assert _commands(capsys.readouterr().out) == GROUPS[group]  # a wrapped help line would add a row


@pytest.mark.parametrize("old", OLD_TO_NEW)
def test_old_command_names_map_to_the_new_commands_with_a_notice(old, capsys):
    parser = build_parser()
    new = OLD_TO_NEW[old]
    assert vars(parser.parse_args(translate(["-v", old, "r.yaml"]))) == vars(parser.parse_args(["-v", *new, "r.yaml"]))
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"`psycopref {old}` is deprecated" in err and f"use `psycopref {' '.join(new)}`" in err
    assert translate([*new, "r.yaml"]) == [*new, "r.yaml"] and capsys.readouterr().err == ""  # new forms: no notice


def test_old_dataset_recipe_form_builds_the_dataset(tmp_path, capsys):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump({"work_dir": str(tmp_path / "w")}))
    assert translate(["dataset", str(recipe), "--dataset.pretty_name", "X"]) == \
        ["dataset", "build", str(recipe), "--dataset.pretty_name", "X"]
    assert "use `psycopref dataset build RECIPE`" in capsys.readouterr().err
    assert main(["dataset", str(recipe)]) == 2  # the build stage ran: it needs the pairs stage's output
    err = capsys.readouterr().err
    assert "deprecated" in err and "run `psycopref dataset pairs` first" in err


def test_an_old_name_still_runs_its_command(tmp_path, capsys):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump({"work_dir": str(tmp_path / "w"), "speeches": {"sources": [
        {"name": "bundled", "limit": 3}]}}))
    assert main(["speeches", str(recipe)]) == 0
    assert (tmp_path / "w" / "speeches").is_dir()
    assert "use `psycopref dataset speeches`" in capsys.readouterr().err


def test_demo_recipe_ships_with_the_package():
    assert demo_recipe_path().is_file()
    assert build_parser().parse_args(["demo"]).work_dir == "runs/demo"


def test_unknown_recipe_key_exits_2_naming_file_and_key(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump({"work_dir": str(tmp_path / "w"), "speeches": {"min_charz": 5}}))
    out = _run("dataset", "speeches", str(recipe))
    assert out.returncode == 2
    assert str(recipe) in out.stderr and "speeches.min_charz: unknown key" in out.stderr
    assert "Traceback" not in out.stderr


def test_unknown_override_is_an_error(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump({"work_dir": str(tmp_path / "w")}))
    assert main(["dataset", "speeches", str(recipe), "--speeches.nope", "1"]) == 2


def test_missing_source_file_is_named_and_earlier_work_kept(tmp_path, capsys):
    work = tmp_path / "w"
    ok = tmp_path / "ok.yaml"
    ok.write_text(yaml.safe_dump({"work_dir": str(work), "speeches": {"sources": [{"name": "bundled"}]}}))
    assert main(["dataset", "speeches", str(ok)]) == 0
    kept = sorted(p.name for p in (work / "speeches").iterdir())
    bad = tmp_path / "bad.yaml"
    missing = tmp_path / "nowhere" / "counsel_chat.csv"
    bad.write_text(yaml.safe_dump({"work_dir": str(work), "speeches": {"sources": [
        {"name": "counsel_chat", "path": str(missing)}]}}))
    assert main(["dataset", "speeches", str(bad)]) == 2
    assert str(missing) in capsys.readouterr().err
    assert sorted(p.name for p in (work / "speeches").iterdir()) == kept  # the finished output is intact


def test_speeches_command_writes_dataset_and_report(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump({"work_dir": str(tmp_path / "w"), "speeches": {"max_chars": 400}}))
    out = _run("dataset", "speeches", str(recipe))
    assert out.returncode == 0, out.stderr
    report = json.loads((tmp_path / "w" / "speeches_report.json").read_text())
    from datasets import load_from_disk

    ds = load_from_disk(str(tmp_path / "w" / "speeches"))
    assert 0 < len(ds) < 64 and max(ds["n_chars"]) <= 400  # the override took effect
    assert json.dumps(report)  # a readable report exists
    assert (tmp_path / "w" / "recipe.resolved.yaml").exists()


def test_judge_without_responses_says_what_to_run(tmp_path, capsys):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump({"work_dir": str(tmp_path / "w"),
                                      "judge": {"endpoint": {"model": "m", "base_url": "http://127.0.0.1:9/v1"}}}))
    assert main(["dataset", "judge", str(recipe)]) == 2
    assert "psycopref dataset speeches" in capsys.readouterr().err


def test_a_bug_keeps_its_traceback_and_names_the_log(tmp_path, monkeypatch, capsys):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump({"work_dir": str(tmp_path / "w")}))

    def boom(*args, **kwargs):
        raise ValueError("an internal bug, not a user error")  # a ValueError is not a user error by itself

    monkeypatch.setattr("hub_tools.speeches.stage.run_speeches", boom)
    with pytest.raises(ValueError, match="internal bug"):
        main(["dataset", "speeches", str(recipe)])
    err = capsys.readouterr().err
    log = tmp_path / "w" / "logs" / "psycopref.log"
    assert "probably a bug" in err and str(log) in err
    assert "Traceback" in log.read_text() and "internal bug" in log.read_text()


def test_expected_errors_are_one_line_and_verbose_shows_the_traceback(tmp_path, capsys):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump({"work_dir": str(tmp_path / "w"), "stages": ["pairs"]}))
    assert main(["dataset", "run", str(recipe)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "psycopref dataset speeches" in err and "Traceback" not in err
    assert str(tmp_path / "w" / "logs" / "psycopref.log") in err
    assert main(["-v", "dataset", "run", str(recipe)]) == 2
    assert "Traceback" in capsys.readouterr().err
