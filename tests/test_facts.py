"""Each fact is written once in the package: a name, a folder, an id that several modules need lives in one
module and the others import it (a second copy drifts). Checked on the source, so a new copy fails here."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "hub_tools"
LITERALS = (  # string literals that may appear once: everything else names the constant
    "recipe.yaml",  # the resolved recipe in every artifact folder (kinds.RECIPE_FILE)
    "Psychotherapy-LLM",  # the default organisation (kinds.DEFAULT_ORG)
    "PsyCoPref-Space",  # the Space's repo name (kinds.SPACE_NAME)
    "dataset_repo",  # the dataset's folder (the kinds table; the models' come from there too)
    "responses", "speeches_split", "ratings_split",  # the work dir's layout (io)
    "data/measured.yaml",  # the packaged cost inputs (estimate.costs)
)
DEFINED_ONCE = ("read_json", "METHODS", "DEFAULT_ORG", "RECIPE_FILE", "find_recipe_file", "DATASET_ID",
                "add_target_flags", "apply_target_flags", "ReleaseError", "RecipeError")


def _trees():
    for path in sorted(PACKAGE.rglob("*.py")):
        yield path.relative_to(PACKAGE.parent).as_posix(), ast.parse(path.read_text(encoding="utf-8"))


def test_shared_literals_are_written_once():
    where = defaultdict(list)
    for name, tree in _trees():
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and node.value in LITERALS:
                where[node.value].append(f"{name}:{node.lineno}")
    assert {k: v for k, v in where.items() if len(v) != 1} == {}
    assert set(where) == set(LITERALS)


def test_shared_names_are_defined_once():
    where = defaultdict(list)
    for name, tree in _trees():
        for node in tree.body:
            targets = [node.name] if isinstance(node, (ast.FunctionDef, ast.ClassDef)) else \
                [t.id for t in node.targets if isinstance(t, ast.Name)] if isinstance(node, ast.Assign) else []
            for target in targets:
                if target in DEFINED_ONCE:
                    where[target].append(name)
    assert {k: v for k, v in where.items() if len(v) > 1} == {}
    assert set(where) == set(DEFINED_ONCE)  # each still exists (its home moved: update the list)
