"""The Space folder and its configs: both shipped configs validate, secrets come from the environment and
never reach a vote, bad configs name the key, and the folder is a deployable gradio Space (front matter,
app file, requirements) consistent with the gradio the package pins."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import gradio
import pytest
from packaging.specifiers import SpecifierSet

from hub_tools.arena.cli import front_matter, space_folder, stage_space
from hub_tools.arena.config import SpaceConfig, default_config_path, load_space_config
from hub_tools.config import RecipeError

ROOT = Path(__file__).resolve().parents[2]
SPACE = ROOT / "spaces"


def test_both_shipped_configs_validate():
    deployed = load_space_config(SPACE / "config.yaml")
    local = load_space_config(SPACE / "config.local.yaml")
    assert [p.backend for p in deployed.policies] == ["tgi", "tgi"] and deployed.votes.repo_id
    assert all(p.base_url is None and p.base_url_env and p.api_key_env == "HF_TOKEN" for p in deployed.policies)
    assert {p.base_url for p in local.policies} == {"managed"} and local.votes.repo_id is None
    assert len({p.system_prompt for p in local.policies}) == 3  # one model, three styles


def test_endpoint_urls_come_from_the_environment_and_never_reach_a_vote(monkeypatch):
    cfg = load_space_config(SPACE / "config.yaml")
    monkeypatch.delenv("PSYCOPREF_POLICY_URL", raising=False)
    with pytest.raises(RecipeError, match=r"policy 'PsychoCounsel-Llama3-8B' has no base_url; set \$PSYCOPREF_POLICY_URL"):
        cfg.policies[0].resolved()
    monkeypatch.setenv("PSYCOPREF_POLICY_URL", "https://secret-endpoint.example/")
    policy = cfg.policies[0].resolved()
    assert policy.base_url == "https://secret-endpoint.example/"
    assert "secret-endpoint" not in str(policy.identity()) and set(policy.identity()) == {
        "name", "backend", "model", "params", "system_prompt"}


@pytest.mark.parametrize("change, problem", [
    ({"policies": "one"}, "policies"),
    ({"limits": {"concurrency": 0}}, "limits.concurrency"),
    ({"votes": {"repo": "x/y"}}, "votes.repo: unknown key"),
    ({"colour": "red"}, "colour: unknown key"),
])
def test_a_bad_config_names_the_key(tmp_path, change, problem):
    import yaml

    data = yaml.safe_load((SPACE / "config.local.yaml").read_text())
    if change.get("policies") == "one":
        data["policies"] = data["policies"][:1]
    else:
        data.update(change)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(RecipeError, match="config.yaml: invalid recipe") as err:
        load_space_config(path)
    assert problem in str(err.value)


def test_policy_names_are_unique():
    same = {"name": "a", "model": "m", "base_url": "http://x"}
    with pytest.raises(ValueError, match="unique"):
        SpaceConfig.model_validate({"policies": [same, same]})


def test_the_config_file_can_be_chosen_by_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("PSYCOPREF_SPACE_CONFIG", raising=False)
    assert default_config_path(tmp_path) == tmp_path / "config.yaml"
    monkeypatch.setenv("PSYCOPREF_SPACE_CONFIG", "/elsewhere/config.local.yaml")
    assert default_config_path(tmp_path) == Path("/elsewhere/config.local.yaml")


def test_the_folder_is_a_deployable_gradio_space():
    meta = front_matter(SPACE)
    assert meta["sdk"] == "gradio" and meta["app_file"] == "app.py" and meta["license"] == "apache-2.0"
    assert "Psychotherapy-LLM/PsychoCounsel-Llama3-8B" in meta["models"]
    assert "Psychotherapy-LLM/PsychoCounsel-Preference" in meta["datasets"]
    deployed = load_space_config(SPACE / "config.yaml")
    assert deployed.votes.repo_id in meta["datasets"]  # the card lists the dataset the Space writes
    # the pinned sdk_version is the gradio the tests ran (the `test` extra's pin) and satisfies the `space` extra
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    spec = SpecifierSet(next(d for d in extras["space"] if d.startswith("gradio")).removeprefix("gradio"))
    assert meta["sdk_version"] in spec and f"gradio=={meta['sdk_version']}" in extras["test"]
    assert meta["sdk_version"] == gradio.__version__
    # requirements.txt is written by `space deploy` from the config (tests/arena/test_space_deploy.py); the folder's
    # own is a placeholder that explains it and installs nothing a deploy would not
    requirements = (SPACE / "requirements.txt").read_text().splitlines()
    assert all(line.startswith("#") for line in requirements) and "psycopref space deploy" in requirements[0]
    # app.py is thin: it imports the tested module and builds the app at module level
    tree = ast.parse((SPACE / "app.py").read_text())
    assert any(isinstance(n, ast.ImportFrom) and n.module == "hub_tools.arena.app" for n in tree.body)
    assert any(isinstance(n, ast.Assign) and n.targets[0].id == "demo" for n in tree.body if isinstance(n, ast.Assign))
    assert len((SPACE / "app.py").read_text().splitlines()) < 20


def test_staging_validates_and_leaves_local_state_out(tmp_path):
    folder = tmp_path / "space"
    import shutil

    shutil.copytree(SPACE, folder)
    (folder / "votes").mkdir(exist_ok=True)
    (folder / "votes" / "votes.jsonl").write_text("{}\n")
    (folder / "__pycache__").mkdir(exist_ok=True)
    staged = stage_space(folder, SPACE / "config.local.yaml", tmp_path / "staged")
    assert sorted(p.name for p in staged.iterdir()) == ["README.md", "app.py", "config.local.yaml", "config.yaml",
                                                         "requirements.txt"]
    assert (staged / "config.yaml").read_text() == (SPACE / "config.local.yaml").read_text()
    (folder / "README.md").write_text("no front matter")
    with pytest.raises(RecipeError, match="front matter"):
        stage_space(folder, None, tmp_path / "again")


def test_the_packaged_folder_is_found(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no ./spaces here: the copy inside the package
    assert (space_folder() / "app.py").is_file() and (space_folder() / "config.local.yaml").is_file()
    (tmp_path / "spaces").mkdir()  # whatever the working directory holds, the package's own Space is used
    (tmp_path / "spaces" / "app.py").write_text("raise SystemExit('not the Space')\n")
    assert space_folder().resolve() == SPACE.resolve()
    assert space_folder("spaces") == Path("spaces")  # unless it is named


def test_every_config_key_is_described():
    from pydantic import BaseModel

    from hub_tools.arena.config import SpacePolicy

    missing, todo = [], [SpaceConfig, SpacePolicy]
    while todo:
        model = todo.pop()
        for name, field in model.model_fields.items():
            if not field.description:
                missing.append(f"{model.__name__}.{name}")
            if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
                todo.append(field.annotation)
    assert missing == []
