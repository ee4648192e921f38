"""`psycopref space run|deploy`: launch the comparison Space locally, or upload it as a Hub Space.

The Space folder is `spaces/` of a checkout (or the copy shipped in the wheel): `app.py`,
`requirements.txt`, `README.md` with the Space front matter, and its configs. `deploy` checks the
folder, validates the config it will run with, makes it deployable (`deploy.py`: requirements that
Hugging Face can install, portable paths, front matter) and publishes it with `hub.push.push_folder`
(one commit; the repo created as a gradio Space when missing), into a local Hub mirror with `--hub-dir`,
or into a plain folder with `--out`.
"""

from __future__ import annotations

import shutil
import tempfile
from importlib import resources
from pathlib import Path

from ..commands import group
from ..config import RecipeError, parse_yaml
from .config import load_space_config

LOCAL_CONFIG = "config.local.yaml"  # offline: SmolLM2 behind the Space's own llama.cpp server
SKIPPED = ("__init__.py", "__pycache__", "*.pyc", "votes", "logs", ".gradio", "flagged", ".cache")  # never uploaded
REQUIRED_FRONT_MATTER = ("title", "sdk", "sdk_version", "app_file", "license")


def space_folder(folder: str | Path | None = None) -> Path:
    """The Space folder: `folder`, else the package's own (`spaces/` of the checkout in an editable install,
    the copy inside the wheel otherwise), whatever the working directory holds."""
    if folder is not None:
        return Path(folder)
    return Path(str(resources.files("hub_tools.spaces")))


def front_matter(folder: Path) -> dict:
    """The YAML front matter of the Space's README.md (what the Hub reads to build and run it)."""
    readme = folder / "README.md"
    text = readme.read_text(encoding="utf-8") if readme.is_file() else ""
    if not text.startswith("---\n") or "\n---" not in text[4:]:
        raise RecipeError(f"{readme}: a Space README starts with YAML front matter between --- lines")
    meta = parse_yaml(text[4:text.index("\n---", 4)], str(readme)) or {}
    if not isinstance(meta, dict):
        raise RecipeError(f"{readme}: front matter is a mapping of keys, got {type(meta).__name__}")
    missing = [k for k in REQUIRED_FRONT_MATTER if not meta.get(k)]
    if missing:
        raise RecipeError(f"{readme}: front matter lacks {', '.join(missing)}")
    if meta["sdk"] != "gradio" or not (folder / str(meta["app_file"])).is_file():
        raise RecipeError(f"{readme}: expected sdk: gradio and an app_file that exists in {folder}")
    return meta


def stage_space(folder: Path, config: Path | None, dest: Path) -> Path:
    """Copy the Space folder to `dest` without local state (votes, logs, caches); `config` becomes its
    config.yaml. The config it will run with is validated first."""
    front_matter(folder)
    load_space_config(config or folder / "config.yaml")
    shutil.copytree(folder, dest, ignore=shutil.ignore_patterns(*SKIPPED))
    if config is not None:
        shutil.copyfile(config, dest / "config.yaml")
    return dest


def deploy(repo_id: str, folder: str | Path | None = None, config: str | Path | None = None, *, private: bool = False,
           hub_dir: str | Path | None = None, token: str | None = None, requirement: str = "auto",
           requirements: str | Path | None = None, wheel: str | Path | None = None, out: str | Path | None = None):
    """Publish the Space folder, made deployable, as the gradio Space `repo_id` (or into the local mirror
    `hub_dir`); with `out`, only write the deployable folder there."""
    from ..hub.push import push_folder
    from .deploy import write_deployable

    exists = None
    if hub_dir is not None:  # a mirror's models are folders of it
        exists = lambda rid: (Path(hub_dir) / "models" / rid).is_dir()  # noqa: E731
    with tempfile.TemporaryDirectory(prefix="psycopref-space-") as tmp:
        staged = stage_space(space_folder(folder), Path(config) if config else None, Path(tmp) / "space")
        write_deployable(staged, load_space_config(staged / "config.yaml"), repo_id, requirement=requirement,
                         requirements=Path(requirements) if requirements else None,
                         wheel=Path(wheel) if wheel else None, private=private, exists=exists)
        if out is not None:
            shutil.copytree(staged, out, dirs_exist_ok=True)
            return None
        return push_folder(staged, repo_id, "space", private=private, hub_dir=hub_dir, token=token, space_sdk="gradio",
                           commit_message="Deploy the PsyCoPref comparison Space with psycopref")


def _run(args) -> int:
    from .app import create_space

    folder = space_folder(args.folder)
    space = create_space(folder, args.config or folder / LOCAL_CONFIG)
    try:
        space.launch(server_name=args.host, server_port=args.port)
    finally:
        space.close()
    return 0


def _deploy(args) -> int:
    result = deploy(args.repo_id, args.folder, args.config, private=args.private, hub_dir=args.hub_dir,
                    requirement=args.requirement, requirements=args.requirements, wheel=args.wheel, out=args.out)
    if result is None:
        print(f"written: {args.out}")
        return 0
    print(f"{'deployed' if result.changed else 'unchanged'}: {result.url} ({result.commit_id})")
    return 0


def add_cli(sub) -> None:
    space = group(sub, "space", "the comparison Space: run it here, or deploy it to the Hub")
    run = space.verb("run", "launch the Space on this machine")
    run.add_argument("--folder", help="the Space folder (default: the package's spaces/)")
    run.add_argument("--config", help=f"the Space config (default: the folder's {LOCAL_CONFIG}, offline)")
    run.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0 to share on a network)")
    run.add_argument("--port", type=int, default=7860, help="port to listen on")
    run.set_defaults(func=_run)
    dep = space.verb("deploy", "upload the Space folder as a gradio Space (one commit)")
    dep.add_argument("--repo-id", required=True, help="the Space, <org>/<name>")
    dep.add_argument("--folder", help="the Space folder (default: the package's spaces/)")
    dep.add_argument("--config", help="a config to deploy as the Space's config.yaml (default: the folder's own)")
    dep.add_argument("--private", action="store_true", help="create the Space private")
    dep.add_argument("--hub-dir", help="copy into this local Hub mirror instead (<hub-dir>/spaces/<org>/<name>)")
    dep.add_argument("--out", help="only write the deployable folder here (nothing uploaded)")
    dep.add_argument("--requirement", choices=["auto", "wheel", "pypi"], default="auto",
                     help="how the Space installs psycopref: wheel (its own wheel, built into the Space and installed "
                          "by URL; a public Space), pypi (psycopref[space]==<version>, once published), auto (wheel "
                          "from a source checkout, else pypi)")
    dep.add_argument("--requirements", help="your own requirements.txt instead of the generated one (checked)")
    dep.add_argument("--wheel", help="a toolkit wheel already built, instead of building one")
    dep.set_defaults(func=_deploy)
