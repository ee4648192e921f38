"""The published recipe reproduces the model on another machine: a reward model built on one folder layout
(absolute temp paths for the base, the dataset, the work dir and the mirror) is retrained from nothing but its
published recipe.yaml, in another directory, with its inputs fetched by Hub id from the Hub test server, and
the run sees the same data (the same pairs, the same dev split, the same licences) and trains the same:
the recipe's seed ties the score head's initialisation too, so the logged losses match."""

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
    assert yaml.safe_load((again / "recipe.yaml").read_text()) == yaml.safe_load(published.read_text())
