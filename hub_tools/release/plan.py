"""`psycopref release RECIPE`: publish every artifact of a release (the dataset, the reward models, the DPO
and DPO-Iter policies, the Space) with one version tag and cross-linked cards.

A release recipe (`recipes/psycopref/release/config_*.yaml`) lists the artifacts, each with the recipe that
builds it: its output folder and repo id come from that recipe. For each artifact the release

1. finds its folder: the entry's `folder`, else the recipe's output folder; a missing one is downloaded
   from the artifact's own repo at revision `fetch` (where a GPU machine pushed it), or built with its
   recipe (`build: if_missing`; `never` where building needs GPUs); the Space is staged from `spaces/`;
2. copies it into `staging_dir/<name>` (big files hard-linked: the build folders are never changed),
   re-renders model cards with the release's repo ids, and adds the cross-links and the release's version
   (`hub_tools.release.cards`);
3. pushes it with `hub.push.push_folder`: one commit, tagged `v<version>`. An unchanged folder makes no
   commit, so re-running an unchanged release is a no-op; the same version with different content stops
   at that repo's tag before committing (bump the version).

The version is `hub_tools.__version__`, which pyproject.toml reads too; dev and pre-releases are refused
unless allowed. `--dry-run` prints the plan (repo ids, files, sizes, tag) and touches neither the Hub nor
any folder. This module reads the recipe and makes the plan; `publish` stages and pushes it, `cards` writes
the cards' sections, and the kinds table (`hub_tools.kinds`) says what differs between kinds of artifact.
"""

from __future__ import annotations

import json
import os
import shlex
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from ..config import Strict, find_recipe_file, load_any
from ..hub.revisions import is_hub_id
from ..kinds import DEFAULT_ORG, KINDS, RECIPE_FILE, SPACE_NAME, publishing_kinds
from . import ReleaseError
from .cards import Linked, Links


class ArtifactEntry(Strict):
    """One artifact of the release and where its folder comes from."""

    name: str = Field(..., pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$", description="Short name: the plan's row, the staging folder, `--only NAME`.")
    kind: str = Field(..., description="dataset, reward, dpo, dpo-iter or space (a kind of `hub_tools.kinds` that makes a Hub artifact); says which recipe schema reads `recipe` and which repo type it is.")
    recipe: str | None = Field(None, description="The recipe that builds it (a path, or recipes/... inside the installed package); its output folder and repo id come from it. Not for the Space.")
    overrides: dict[str, Any] = Field(default_factory=dict, description="Keys merged into that recipe, as CLI flags would be, e.g. {work_dir: runs/demo/reward}.")
    folder: str | None = Field(None, description="An already-built folder to publish instead of the recipe's output folder; for the Space its folder (default: the package's spaces/).")
    repo_id: str | None = Field(None, description="Repo id to publish as; default <org>/<the repo name its recipe gives it> (the Space: <org>/PsyCoPref-Space).")
    config: str | None = Field(None, description="Space only: the Space config deployed as its config.yaml: a file of the Space folder (config.local.yaml) or a path; default: the folder's own config.yaml.")
    build: Literal["if_missing", "never"] = Field("if_missing", description="if_missing: build a missing folder with its recipe first; never: a missing folder is an error (hosted CI trains nothing).")
    fetch: str | None = Field(None, description="Branch of the artifact's own repo to download a missing folder from, where a GPU machine pushed it (e.g. `psycopref reward push RECIPE --hub --push.revision candidate`); tried before building.")

    @field_validator("kind")
    @classmethod
    def _publishable(cls, kind: str) -> str:
        names = [k.name for k in publishing_kinds()]
        if kind not in names:
            raise ValueError(f"kind {kind!r} is not one of {', '.join(names)}")
        return kind

    @model_validator(mode="after")
    def _fits_kind(self):
        if self.kind == "space" and (self.recipe or self.overrides or self.fetch):
            raise ValueError(f"artifact {self.name!r}: a Space has no recipe, overrides or fetch (set folder, config, repo_id)")
        if self.kind != "space" and not self.recipe:
            raise ValueError(f"artifact {self.name!r}: a {self.kind} artifact needs its recipe")
        if self.config and self.kind != "space":
            raise ValueError(f"artifact {self.name!r}: config is for the Space only")
        return self


class ReleaseRecipe(Strict):
    """A release: which artifacts are published together, where, under one version tag."""

    org: str = Field(DEFAULT_ORG, description="Hub organisation of every artifact whose entry names no repo_id.")
    hub_dir: str | None = Field(None, description="Local Hub mirror to publish into (<hub_dir>/<type>s/<org>/<name>, no tags); null: the Hub (HF_ENDPOINT, token from HF_TOKEN or `hf auth login`).")
    private: bool = Field(False, description="Create missing repos private.")
    staging_dir: str = Field("runs/release", description="Where each artifact's folder is staged with its release cards before the push (a copy: the build folders are never changed).")
    artifacts: list[ArtifactEntry] = Field(..., min_length=1, description="The artifacts, any order (they are pushed dataset, reward models, policies, Space).")

    @model_validator(mode="after")
    def _unique(self):
        names = [a.name for a in self.artifacts]
        if len(set(names)) != len(names):
            raise ValueError(f"artifact names repeat: {sorted({n for n in names if names.count(n) > 1})}")
        for kind in ("dataset", "space"):
            if sum(a.kind == kind for a in self.artifacts) > 1:
                raise ValueError(f"a release has at most one {kind} (the cards link one)")
        return self


@dataclass
class Artifact:
    """One artifact as planned: where it goes, where its folder comes from, what it holds."""

    entry: ArtifactEntry
    repo_id: str
    source_id: str  # the repo id its own recipe names (before the release's org)
    folder: Path
    state: str  # ready | fetch | build | missing
    command: str  # how its folder is built ("" for the Space)
    recipe: BaseModel | None = None
    files: list[tuple[str, int]] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.entry.name

    @property
    def kind(self) -> str:
        return self.entry.kind

    @property
    def repo_type(self) -> str:
        return KINDS.get(self.kind).repo_type

    @property
    def size(self) -> int:
        return sum(size for _, size in self.files)

    def source_text(self) -> str:
        if self.state == "ready":
            return f"folder {self.folder}"
        if self.state == "fetch":
            return f"to be built by `{self.command}`, then fetched from {self.repo_id}@{self.entry.fetch}"
        if self.state == "build":
            return f"to be built by `{self.command}`"
        return f"missing {self.folder}: build it with `{self.command}`"


@dataclass
class Plan:
    """The whole release: version, tag, target and every artifact (`selected`: the ones published now)."""

    path: str
    recipe: ReleaseRecipe
    version: str
    tag: str | None
    artifacts: list[Artifact]
    selected: list[Artifact]
    links: Links

    def as_json(self) -> dict[str, Any]:
        return {"recipe": self.path, "version": self.version, "tag": self.tag, "target": self.recipe.hub_dir or "hub",
                "artifacts": [{"name": a.name, "kind": a.kind, "repo_id": a.repo_id, "repo_type": a.repo_type,
                               "state": a.state, "folder": str(a.folder), "command": a.command, "fetch": a.entry.fetch,
                               "files": [{"path": p, "size": s} for p, s in a.files], "size": a.size}
                              for a in self.selected]}

    def table(self) -> str:
        target = f"the local mirror {self.recipe.hub_dir}" if self.recipe.hub_dir else "the Hub"
        head = [f"release {self.path}: psycopref {self.version}, {f'tag {self.tag}' if self.tag else 'no tag'}, to {target}", ""]
        rows = [("artifact", "kind", "repo", "files", "size", "source")] + [
            (a.name, a.kind, f"{a.repo_type}:{a.repo_id}", str(len(a.files)) if a.files else "-",
             human(a.size) if a.files else "-", a.source_text()) for a in self.selected]
        widths = [max(len(r[i]) for r in rows) for i in range(5)]
        lines = head + ["  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[5] for r in rows]
        for a in self.selected:
            if a.files:
                lines += ["", f"{a.name} -> {a.repo_id} ({len(a.files)} files, {human(a.size)}):"]
                lines += [f"  {human(size):>9}  {path}" for path, size in a.files]
        return "\n".join(lines)


def human(n: int) -> str:
    """Bytes as a size people read (binary units)."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def check_version(version: str, allow_dev: bool = False) -> None:
    """Refuse a version that is not PEP 440, or a dev / pre / local version unless `allow_dev`."""
    from packaging.version import InvalidVersion, Version

    try:
        v = Version(version)
    except InvalidVersion:
        raise ReleaseError(f"version {version!r} (hub_tools/__init__.py __version__) is not a PEP 440 version") from None
    if (v.is_prerelease or v.is_devrelease or v.local) and not allow_dev:
        raise ReleaseError(f"version {version} is a development or pre-release version: a release publishes a final one "
                           "(set __version__ in hub_tools/__init__.py), or pass --allow-dev")


def flags(overrides: dict[str, Any], prefix: str = "") -> list[str]:
    """Recipe overrides as the CLI flags that set them (`--work_dir runs/x`)."""
    out: list[str] = []
    for key, value in overrides.items():
        if isinstance(value, dict):
            out += flags(value, f"{prefix}{key}.")
        else:
            out += [f"--{prefix}{key}", shlex.quote(value if isinstance(value, str) else json.dumps(value))]
    return out


def _command(entry: ArtifactEntry, recipe: BaseModel) -> str:
    """The command(s) that build this artifact's folder from its recipe, with the entry's overrides."""
    extra = " ".join(flags(entry.overrides))
    lines = KINDS.get(entry.kind).load("command")(recipe, entry.recipe).splitlines()
    return " && ".join(f"{line} {extra}".strip() for line in lines)


def _plan_artifact(entry: ArtifactEntry, release: ReleaseRecipe) -> Artifact:
    if entry.kind == "space":
        from ..arena.cli import space_folder

        folder = space_folder(entry.folder)
        repo_id = entry.repo_id or f"{release.org}/{SPACE_NAME}"
        art = Artifact(entry, repo_id, repo_id, folder, "ready" if (folder / "README.md").is_file() else "missing", "")
        if art.state == "ready":
            with tempfile.TemporaryDirectory(prefix="psycopref-space-") as tmp:
                from .publish import stage_space_folder

                art.files = _files(stage_space_folder(art, Path(tmp) / "space"))
        return art
    recipe = load_any(find_recipe_file(entry.recipe), entry.overrides, kind=entry.kind)
    source_id, default_folder = recipe.repo_id, recipe.work_path / KINDS.get(entry.kind).folder
    repo_id = entry.repo_id or f"{release.org}/{source_id.split('/')[-1]}"
    if entry.kind == "dataset":
        recipe.dataset.repo_id = repo_id  # a dataset folder names its repo in its card: build it as released
    folder = Path(entry.folder) if entry.folder else default_folder
    ready = folder.is_dir() and any(folder.iterdir())
    state = "ready" if ready else "fetch" if entry.fetch else "build" if entry.build == "if_missing" else "missing"
    command = _command(entry, recipe)
    if entry.kind == "dataset" and repo_id != source_id:
        command += f" --dataset.repo_id {repo_id}"
    art = Artifact(entry, repo_id, source_id, folder, state, command, recipe)
    if ready:
        art.files = _files(folder)
    return art


def _files(folder: Path) -> list[tuple[str, int]]:
    from ..hub.push import published_files  # exactly the files a push publishes

    return [(rel, path.stat().st_size) for rel, path in published_files(folder).items()]


def _resolve(ref: str | None, artifacts: list[Artifact]) -> str | None:
    """A model or dataset reference in a recipe (a repo id, a built folder, a local mirror path) as the repo id
    the release publishes it under; a Hub id outside the release stays as it is; anything else: None."""
    if not ref:
        return None
    for a in artifacts:
        if ref in (a.source_id, a.repo_id):
            return a.repo_id
    path = Path(ref)
    for a in artifacts:  # a built (or still to be built) folder of the release
        if a.kind != "space" and os.path.abspath(path) == os.path.abspath(a.folder):
            return a.repo_id
    parts = path.parts
    if len(parts) >= 3 and parts[-3] in ("models", "datasets"):  # <hub_dir>/<type>s/<org>/<name>
        return _resolve(f"{parts[-2]}/{parts[-1]}", artifacts) or f"{parts[-2]}/{parts[-1]}"
    return ref if is_hub_id(ref) else None


def _linked(a: Artifact, artifacts: list[Artifact]) -> Linked:
    if a.repo_type != "model":
        return Linked(a.name, a.kind, a.repo_id, a.repo_type)
    r = a.recipe
    reward = None
    if a.kind == "dpo-iter":
        built = a.folder / RECIPE_FILE  # what the built folder was trained with beats what the recipe says now
        import yaml

        used = ((yaml.safe_load(built.read_text(encoding="utf-8")) or {}).get("iter") or {}).get("reward_model") \
            if a.state == "ready" and built.is_file() else None
        reward = _resolve(used or r.iter.reward_model, artifacts)
    dataset = _resolve(r.data.hub_dataset_id or r.data.path, artifacts)
    return Linked(a.name, a.kind, a.repo_id, a.repo_type, r.model.base_hub_id, r.model.method, reward, dataset)


def make_plan(path: str | Path, overrides: dict[str, Any] | None = None, *, version: str | None = None,
              allow_dev: bool = False, tag: bool = True, only: list[str] | None = None) -> Plan:
    """The plan of release recipe `path` (CLI `overrides` merged in) at `version` (default: the package's)."""
    from .. import __version__

    version = version or __version__
    check_version(version, allow_dev)
    recipe = load_any(path, overrides, kind="release")
    order = [k.name for k in publishing_kinds()]  # the kinds table's order: dataset, models, Space
    artifacts = sorted((_plan_artifact(e, recipe) for e in recipe.artifacts), key=lambda a: order.index(a.kind))
    ids = [(a.repo_type, a.repo_id) for a in artifacts]
    if len(set(ids)) != len(ids):
        raise ReleaseError(f"{path}: two artifacts publish to the same repo: {sorted({i for i in ids if ids.count(i) > 1})}")
    unknown = sorted(set(only or []) - {a.name for a in artifacts})
    if unknown:
        raise ReleaseError(f"--only {' '.join(unknown)}: no such artifact in {path} ({', '.join(a.name for a in artifacts)})")
    linked = [_linked(a, artifacts) for a in artifacts]
    links = Links(version, f"v{version}" if tag and recipe.hub_dir is None else None, Path(path).stem,
                  next((x for x in linked if x.kind == "dataset"), None), next((x for x in linked if x.kind == "space"), None),
                  [x for x in linked if x.repo_type == "model"])
    selected = [a for a in artifacts if not only or a.name in only]
    return Plan(str(path), recipe, version, links.tag, artifacts, selected, links)
