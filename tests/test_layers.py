"""The house rules of the package's imports: no cycles, and the layers below the areas (the paper's facts,
serving, Hub publishing, config, I/O, the kinds table, the CLI layer) never import an area, so any area can
reuse them. Every top-level module is classified as one or the other."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "hub_tools"
# Every top-level module and package of hub_tools is one or the other (a new one fails until it is classified).
LOWER = ("errors", "registry", "config", "io", "kinds", "commands", "paper", "serving", "hub")  # import no area
AREAS = ("speeches", "generate", "judge", "pairs", "dataset", "training", "reward", "policy", "annotate", "arena",
         "release", "estimate", "demo", "chat", "cli")  # what psycopref makes, in pipeline order, and its commands


def _module(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """hub_tools module -> the hub_tools modules it imports (statically, lazy imports included)."""
    graph: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        mod = _module(path)
        package = mod if path.name == "__init__.py" else mod.rsplit(".", 1)[0]
        deps = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
                target = ".".join(base + ([node.module] if node.module else []))
                for alias in node.names:  # `from . import x` may name a module
                    sub = f"{target}.{alias.name}"
                    exists = (PACKAGE.parent / sub.replace(".", "/")).with_suffix(".py").exists()
                    deps.add(sub if exists else target)
            elif isinstance(node, ast.Import):
                deps |= {a.name for a in node.names}
        graph[mod] = {d for d in deps if d.startswith("hub_tools")}
    return graph


def _area(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_every_top_level_module_is_a_lower_layer_or_an_area():
    modules = {p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
    packages = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    assert sorted(modules | packages) == sorted(LOWER + AREAS)
    assert not set(LOWER) & set(AREAS)


def test_the_graph_is_read():
    graph = import_graph()
    assert "hub_tools.serving.runtime" in graph["hub_tools.generate.stage"]  # the reader sees real edges
    assert "hub_tools.paper.principles" in graph["hub_tools.judge.stage"]


def test_no_import_cycles():
    graph = import_graph()

    def reachable(start: str) -> set[str]:
        seen, todo = set(), [start]
        while todo:
            for dep in graph.get(todo.pop(), ()):
                if dep not in seen:
                    seen.add(dep)
                    todo.append(dep)
        return seen

    cycles = sorted(m for m in graph if m in reachable(m))
    assert cycles == [], f"modules on an import cycle: {cycles}"


def test_lower_layers_never_import_an_area():
    bad = sorted(f"{mod} -> {dep}" for mod, deps in import_graph().items() if _area(mod) in LOWER
                 for dep in deps if _area(dep) in AREAS)
    assert bad == []


def test_modules_stay_short():
    long = {str(p.relative_to(PACKAGE)): n for p in PACKAGE.rglob("*.py")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > 400}
    assert long == {}, "split modules over 400 lines by what they do"
