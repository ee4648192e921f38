"""The published recipe reproduces the model on another machine: a reward model built on one folder layout
(absolute temp paths for the base, the dataset, the work dir and the mirror) is retrained from nothing but its
published recipe.yaml, in another directory, with its inputs fetched by Hub id from the Hub test server, and
the run sees the same data (the same pairs, the same dev split, the same licences) and trains the same:
the recipe's seed ties the score head's initialisation too, so the logged losses match.

A recipe naming its inputs by Hub id reads them at one commit and publishes that commit's sha (`model.revision`,
`data.revision`): retrained from the published recipe after the dataset's main branch moved on, it reads the
first commit's pairs; a revision the Hub does not have is a one-line error naming its key."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest
import yaml

from hub_tools.config import validate

from hub_server import run_client, serve_hub
from reward_helpers import recipe_data

pytestmark = [pytest.mark.published, pytest.mark.timeout(900)]
torch = pytest.importorskip("torch")
pytest.importorskip("trl")

from hub_tools.reward.config import RewardRecipe  # noqa: E402

PUSH = """
import sys
from hub_tools.hub.push import push_folder
push_folder(sys.argv[1], "test-org/tiny-llama", "model", hub_dir=None)
push_folder(sys.argv[2], "test-org/TinyPref", "dataset", hub_dir=None)
"""


def test_the_published_recipe_reproduces_the_model_elsewhere(tiny_base, pairs_repo, tmp_path):
    from hub_tools.reward.train import train_reward

    here = tmp_path / "machine-a" / "deep" / "layout"
    recipe = validate(RewardRecipe, recipe_data(tiny_base, pairs_repo, here / "work", training={"max_steps": 4}))
    folder = train_reward(recipe)
    published = folder / "recipe.yaml"
    assert str(tmp_path) not in published.read_text()
    elsewhere = tmp_path / "machine-b"
    elsewhere.mkdir()
    shutil.copy2(published, elsewhere / "recipe.yaml")  # all a user takes from the repo
    with serve_hub(tmp_path) as hub:
        env = hub.env(tmp_path / "home-b")
        run_client(PUSH, env, str(tiny_base), str(pairs_repo))  # the inputs, on "the Hub", under their ids
        proc = subprocess.run([sys.executable, "-m", "hub_tools.cli", "reward", "train", "recipe.yaml"], cwd=elsewhere,
                              env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    again = elsewhere / validate(RewardRecipe, yaml.safe_load(published.read_text())).model_dir  # default work dir, relative
    first, second = (json.loads((f / "train_results.json").read_text()) for f in (folder, again))
    assert second["train_pairs"] == first["train_pairs"] and second["dev_pairs"] == first["dev_pairs"]
    assert second["global_step"] == first["global_step"] == len(second["logged_losses"])  # the same run, trained
    assert second["logged_losses"][-1] < second["logged_losses"][0]
    assert second["logged_losses"] == pytest.approx(first["logged_losses"], abs=1e-5)  # seeded end to end
    assert second["licenses"] == first["licenses"]  # the dataset's card, read from the Hub this time
    # the same recipe, with the commits its Hub inputs were read at recorded (the published one read local folders)
    rerun, original = (yaml.safe_load(f.read_text()) for f in (again / "recipe.yaml", published))
    assert original["model"]["revision"] is None and original["data"]["revision"] is None  # a folder has no commit
    assert rerun["model"].pop("revision") == hub.hub.repos[("model", "test-org/tiny-llama")].branches["main"]
    assert rerun["data"].pop("revision") == hub.hub.repos[("dataset", "test-org/TinyPref")].branches["main"]
    del original["model"]["revision"], original["data"]["revision"]
    assert rerun == original


def reward_cli(recipe: str, cwd, env, *overrides: str, verb: str = "train") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hub_tools.cli", "reward", verb, recipe, *overrides], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=600)


def test_hub_inputs_are_pinned_to_the_commit_read_and_reproduced_after_main_moves(tiny_base, pairs_repo, tmp_path):
    from preference_data import write_pairs_repo

    bigger = write_pairs_repo(tmp_path / "v2" / "TinyPref", n_train=40)  # the dataset's next commit: more pairs
    data = recipe_data(tiny_base, pairs_repo, tmp_path / "unused", training={"max_steps": 2})
    data.update(work_dir="work", push={"hub_dir": None})
    data["model"] = {**data["model"], "name_or_path": "test-org/tiny-llama"}
    data["data"] = {**data["data"], "path": "test-org/TinyPref"}
    here, elsewhere = tmp_path / "machine-a", tmp_path / "machine-b"
    here.mkdir()
    elsewhere.mkdir()
    (here / "recipe.yaml").write_text(yaml.safe_dump(data))
    with serve_hub(tmp_path) as hub:
        run_client(PUSH, hub.env(tmp_path / "home-a"), str(tiny_base), str(pairs_repo))
        repos = hub.hub.repos
        model_sha = repos[("model", "test-org/tiny-llama")].branches["main"]
        first = repos[("dataset", "test-org/TinyPref")].branches["main"]
        proc = reward_cli("recipe.yaml", here, hub.env(tmp_path / "home-a"))
        assert proc.returncode == 0, proc.stderr[-3000:]
        folder = here / "work" / "reward_model"
        published = yaml.safe_load((folder / "recipe.yaml").read_text())
        assert published["model"]["revision"] == model_sha  # (a) the exact commits read, by full sha
        assert published["data"]["revision"] == first
        run_client("import sys\nfrom hub_tools.hub.push import push_folder\n"
                   "push_folder(sys.argv[1], 'test-org/TinyPref', 'dataset', hub_dir=None)",
                   hub.env(tmp_path / "home-a"), str(bigger))
        assert repos[("dataset", "test-org/TinyPref")].branches["main"] != first  # main moved on
        proc = reward_cli("recipe.yaml", here, hub.env(tmp_path / "home-a"), verb="eval")  # the unpinned recipe
        assert proc.returncode == 0, proc.stderr[-3000:]
        shutil.copy2(folder / "recipe.yaml", elsewhere / "recipe.yaml")
        proc = reward_cli("recipe.yaml", elsewhere, hub.env(tmp_path / "home-b"))  # another machine, empty cache
        assert proc.returncode == 0, proc.stderr[-3000:]
        latest = reward_cli("recipe.yaml", elsewhere, hub.env(tmp_path / "home-b"), "--data.revision", "main",
                            "--work_dir", "latest")
        assert latest.returncode == 0, latest.stderr[-3000:]
        bad = reward_cli("recipe.yaml", elsewhere, hub.env(tmp_path / "home-b"), "--data.revision", "no-such-branch",
                         "--work_dir", "bad")
    rerun = elsewhere / validate(RewardRecipe, published).model_dir  # the published recipe's work dir
    results = [json.loads((f / "train_results.json").read_text())
               for f in (folder, rerun, elsewhere / "latest" / "reward_model")]
    pairs = [r["train_pairs"] + r["dev_pairs"] for r in results]
    assert pairs[0] == pairs[1] < pairs[2]  # (b) the first commit's pairs, though main has more
    evaluated = json.loads((folder / "eval_results.json").read_text())["calibrated"]["dev_pairs"]
    assert evaluated == results[0]["dev_pairs"] != results[2]["dev_pairs"]  # eval reads the commit trained on
    assert results[1]["logged_losses"] == pytest.approx(results[0]["logged_losses"], abs=1e-5)
    again = yaml.safe_load((rerun / "recipe.yaml").read_text())
    assert again == published  # the same commits recorded again
    assert yaml.safe_load((elsewhere / "latest" / "reward_model" / "recipe.yaml").read_text())["data"]["revision"] \
        == repos[("dataset", "test-org/TinyPref")].branches["main"]  # a branch is recorded as the commit it was at
    lines = [line for line in bad.stderr.splitlines() if line.startswith("psycopref:")]  # not library warnings
    assert bad.returncode == 2 and len(lines) == 1 and "Traceback" not in bad.stderr, bad.stderr[-3000:]  # (c)
    assert lines[0].startswith("psycopref: error: data.revision") and "no-such-branch" in lines[0] and "test-org/TinyPref" in lines[0]
