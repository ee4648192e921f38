"""What every area's commands share (the CLI layer, below the areas): command groups named for the artifact
they make (`psycopref reward train|eval|push`, like `hf repo create` or `trl dpo`), verbs that read a recipe
with `--section.key value` overrides, the push verbs' `--hub-dir` / `--hub` flags, and the old command names,
which keep working for one release with a one-line notice naming the new form.

Each area registers its commands in its own `add_cli(subparsers)`; the root parser (`hub_tools.cli`) lists
the areas and translates an old command line (`translate`) before parsing it.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field

RENAMED: dict[str, tuple[str, ...]] = {}  # old command -> the new one's words ("train-reward" -> reward train)
DEFAULT_VERB: dict[str, str] = {}  # group -> the verb its old `psycopref <group> RECIPE` form meant
GROUPS: dict[str, Group] = {}  # every group, by name


@dataclass
class Group:
    """A command group `psycopref <name> <verb> ...`; its --help lists every verb with its one-line help."""

    name: str
    parsers: argparse._SubParsersAction
    verbs: list[str] = field(default_factory=list)

    def verb(self, name: str, help: str, **kwargs) -> argparse.ArgumentParser:
        """One verb of the group."""
        self.verbs.append(name)
        return self.parsers.add_parser(name, help=help, description=help, **kwargs)

    def recipe_verb(self, name: str, help: str, func, recipe_help: str, *, push: bool = False) -> argparse.ArgumentParser:
        """A verb taking a recipe and `--section.key value` overrides (`func(args, overrides)`); a push verb also
        takes the target flags. `args.verb` names the verb."""
        p = self.verb(name, help)
        p.add_argument("recipe", help=recipe_help)
        if push:
            add_target_flags(p)
        p.set_defaults(func=func, overrides=True, verb=name)
        return p


def group(sub, name: str, help: str) -> Group:
    """Register the command group `name` under the root's subparsers `sub`."""
    parser = sub.add_parser(name, help=help, description=help)
    GROUPS[name] = Group(name, parser.add_subparsers(dest="verb", required=True, metavar="COMMAND", title="commands"))
    return GROUPS[name]


def add_target_flags(parser) -> None:
    """`--hub-dir DIR` / `--hub`: where a push command publishes, overriding the recipe's `push.hub_dir`."""
    parser.add_argument("--hub-dir", default=None, help="publish into this local Hub mirror instead")
    parser.add_argument("--hub", action="store_true",
                        help="publish to the Hub (HF_ENDPOINT, token from HF_TOKEN / hf auth login)")


def apply_target_flags(target, args) -> None:
    """Set a recipe's push target (anything with `hub_dir`) from `add_target_flags`' flags."""
    if args.hub_dir is not None:
        target.hub_dir = args.hub_dir
    if args.hub:
        target.hub_dir = None


def rename(old: str, *new: str) -> None:
    """`psycopref <old> ...` keeps working for one release as `psycopref <new...> ...`, with a notice."""
    RENAMED[old] = new


def translate(argv: list[str]) -> list[str]:
    """`argv` with an old command name replaced by the new command's words, and a one-line deprecation notice
    on stderr naming the new form; any other command line comes back unchanged."""
    i = next((i for i, a in enumerate(argv) if not a.startswith("-")), None)
    if i is None:
        return argv
    old, rest = argv[i], argv[i + 1:]
    if old in RENAMED:
        new, shown = list(RENAMED[old]), old
    elif old in DEFAULT_VERB and rest and not rest[0].startswith("-") and rest[0] not in GROUPS[old].verbs:
        new, shown = [old, DEFAULT_VERB[old]], f"{old} RECIPE"
    else:
        return argv
    print(f"psycopref: `psycopref {shown}` is deprecated and goes in the next release; use `psycopref "
          f"{' '.join(new)}{' RECIPE' if shown.endswith('RECIPE') else ''}`", file=sys.stderr)
    return [*argv[:i], *new, *rest]
