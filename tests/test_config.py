"""Recipes: every shipped recipe parses; bad keys and values are named; CLI overrides merge."""

from pathlib import Path

import pytest
import yaml

from hub_tools.config import RecipeError, parse_overrides, save_resolved
from hub_tools.pipeline import load_recipe, validate_recipe

RECIPES = sorted((Path(__file__).parent.parent / "recipes").rglob("config_*.yaml"))


def test_recipes_exist():
    assert any(p.name == "config_demo.yaml" for p in RECIPES)
    assert any(p.name == "config_paper.yaml" for p in RECIPES)


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: str(p.relative_to(p.parents[2])))
def test_every_recipe_parses(path):
    recipe = load_recipe(path)
    assert recipe.stages, "a recipe names at least one stage"
    if recipe.generate:
        names = [m.name for m in recipe.generate.pool]
        assert len(names) == len(set(names))
        assert recipe.generate.members_per_speech <= len(names)
    for ep in [*(recipe.generate.pool if recipe.generate else []), *([recipe.judge.endpoint] if recipe.judge else [])]:
        assert ep.base_url, f"{path}: {ep.model} has no base_url"


def test_paper_recipe_matches_the_paper():
    r = load_recipe(next(p for p in RECIPES if p.name == "config_paper.yaml"))
    assert len(r.generate.pool) == 20 and r.generate.members_per_speech == 4
    assert r.judge.endpoint.model == "gpt-4o" and r.judge.mode == "per_principle"
    assert (r.speeches.min_chars, r.speeches.max_chars) == (100, 1000)
    assert r.pairs.min_gap == 1.0
    assert {s.name for s in r.speeches.sources} == {"counsel_chat", "mentalagora", "therapistqa", "psych8k", "amod",
                                                   "mentalchat16k", "phi2mental"}


def test_unknown_key_names_file_and_key(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump({"judge": {"endpoint": {"model": "m", "base_url": "x"}, "modee": "x"}}))
    with pytest.raises(RecipeError) as err:
        load_recipe(path)
    assert str(path) in str(err.value) and "judge.modee: unknown key" in str(err.value)


def test_bad_value_names_key(tmp_path):
    with pytest.raises(RecipeError, match=r"speeches.min_chars"):
        validate_recipe({"speeches": {"min_chars": "short"}})
    with pytest.raises(RecipeError, match=r"judge.mode"):
        validate_recipe({"judge": {"endpoint": {"model": "m"}, "mode": "vibes"}})


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(RecipeError, match="recipe not found"):
        load_recipe(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [1, 2\n")
    with pytest.raises(RecipeError, match="not valid YAML"):
        load_recipe(bad)
    lst = tmp_path / "list.yaml"
    lst.write_text("- 1\n")
    with pytest.raises(RecipeError, match="mapping"):
        load_recipe(lst)


def test_overrides_parse_and_merge(tmp_path):
    over = parse_overrides(["--judge.mode", "per_principle", "--generate.max_speeches=3", "--seed", "7"])
    assert over == {"judge": {"mode": "per_principle"}, "generate": {"max_speeches": 3}, "seed": 7}
    demo = next(p for p in RECIPES if p.name == "config_demo.yaml")
    r = load_recipe(demo, over)
    assert r.judge.mode == "per_principle" and r.generate.max_speeches == 3 and r.seed == 7
    assert r.judge.endpoint.model == "smollm2-135m-instruct"  # untouched siblings survive the merge
    with pytest.raises(RecipeError, match="no value"):
        parse_overrides(["--seed"])
    with pytest.raises(RecipeError, match="unexpected argument"):
        parse_overrides(["seed=3"])
    with pytest.raises(RecipeError, match="judge.nope: unknown key"):
        load_recipe(demo, parse_overrides(["--judge.nope", "1"]))


def test_resolved_recipe_roundtrips(tmp_path):
    demo = next(p for p in RECIPES if p.name == "config_demo.yaml")
    r = load_recipe(demo)
    out = save_resolved(r, tmp_path / "resolved.yaml")
    again = load_recipe(out)
    assert again == r
    assert "near_dup_threshold" in out.read_text()  # defaults are written out, not implied
