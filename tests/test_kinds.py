"""The kinds table (`hub_tools.kinds`): the one list of what psycopref makes, which loading, the release and
the demo read instead of lists of their own."""

from __future__ import annotations

import pytest
import yaml
from pydantic import Field

from hub_tools.config import RecipeError, Strict, load_any
from hub_tools.demo import STEPS, demo_recipe_path
from hub_tools.kinds import KINDS, RecipeKind, publishing_kinds, register_kind
from hub_tools.release.plan import ArtifactEntry


def test_every_named_schema_and_step_imports():
    for name in KINDS:
        kind = KINDS.get(name)
        for part in ("schema", "build", "card", "command"):
            if getattr(kind, part) is not None:
                assert callable(kind.load(part)), f"{name}.{part}"
        if kind.demo:
            assert demo_recipe_path(name).is_file()
            assert type(load_any(demo_recipe_path(name))) is kind.load("schema")  # its folder is its kind


def test_the_release_and_the_demo_read_the_table_in_its_order():
    assert [k.name for k in publishing_kinds()] == ["dataset", "reward", "dpo", "dpo-iter", "space"]
    assert STEPS == ("dataset", "reward", "dpo", "dpo-iter", "eval")
    with pytest.raises(ValueError, match="kind 'eval' is not one of dataset, reward, dpo, dpo-iter, space"):
        ArtifactEntry(name="e", kind="eval", recipe="x.yaml")


class ToyRecipe(Strict):
    """A recipe kind a plug-in adds."""

    size: int = Field(1, description="How big.")


def test_a_registered_kind_is_read_from_its_method_folder(tmp_path):
    path = tmp_path / "recipes" / "toy-model" / "toy" / "config_x.yaml"
    path.parent.mkdir(parents=True)
    path.write_text(yaml.safe_dump({"size": 3}))
    with pytest.raises(RecipeError, match="'toy' is not a method"):
        load_any(path)
    register_kind(RecipeKind("toy", "toy artifact", f"{__name__}:ToyRecipe", "model", "toy_model"))
    try:
        assert load_any(path).size == 3
        assert "toy" in [k.name for k in publishing_kinds()]
        assert ArtifactEntry(name="t", kind="toy", recipe=str(path)).kind == "toy"
    finally:
        KINDS.unregister("toy")
    assert "toy" not in KINDS
