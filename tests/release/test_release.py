"""`psycopref release`: the plan of the full recipe (dry run, no folders), version rules, and real releases of
tiny demo-scale artifacts (a dataset repo folder, a tiny model folder with its card per model kind, the Space)
into a local mirror and to the Hub test server (clients in subprocesses, as the Hub tests do)."""

from __future__ import annotations

import importlib.metadata
import json
import shutil
import tomllib
from pathlib import Path

import pytest
import yaml

from hub_tools import __version__
from hub_tools.cli import main
from hub_tools.config import validate
from hub_tools.io import write_json, write_text
from hub_tools.kinds import KINDS
from hub_tools.release.plan import ReleaseError, make_plan
from hub_tools.release.publish import publish

from hub_server import TOKEN, run_client, serve_hub
from published import files_naming_machine_paths, machine_roots

ROOT = Path(__file__).resolve().parents[2]
FULL = ROOT / "recipes/psycopref/release/config_full.yaml"
DEMO = ROOT / "recipes/psycopref/release/config_demo.yaml"
ORG = "test-org"
IDS = {"dataset": f"{ORG}/TinyPref", "reward": f"{ORG}/PsyCoPref-tiny-llama-Reward", "dpo": f"{ORG}/PsyCoPref-tiny-llama-DPO",
       "dpo-iter": f"{ORG}/PsyCoPref-tiny-llama-DPO-Iter", "space": f"{ORG}/PsyCoPref-Space"}
TYPES = {"dataset": "dataset", "reward": "model", "dpo": "model", "dpo-iter": "model", "space": "space"}
TRAIN = {"method": "full", "train_pairs": 24, "dev_pairs": 2, "test_pairs": 10, "processes": 1, "effective_batch_size": 8,
         "global_step": 3, "epochs": 1.0, "train_loss": 0.69, "logged_losses": [0.7, 0.69]}
POLICY = {"beta": 0.1, "loss_type": "sigmoid", "reward_margins": [0.1], "reference": "starting policy"}
RELEASE_SCRIPT = "import sys\nfrom hub_tools.cli import main\nsys.exit(main(sys.argv[1:]))"


# --------------------------------------------------------------------------- the full recipe, no folders

def test_full_recipe_dry_run_lists_every_artifact_without_the_folders(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # no built folder anywhere: everything is still to be built
    plan = make_plan(FULL)
    got = {a.name: (a.kind, a.repo_type, a.repo_id) for a in plan.selected}
    base = {"3b": "Llama-3.2-3B-Instruct", "8b": "Llama-3.1-8B-Instruct"}
    want = {"dataset": ("dataset", "dataset", "Psychotherapy-LLM/PsyCoPref"),
            "space": ("space", "space", "Psychotherapy-LLM/PsyCoPref-Space")}
    for size, name in base.items():
        for key, kind, suffix in (("reward", "reward", "Reward"), ("dpo", "dpo", "DPO"), ("dpo-iter", "dpo-iter", "DPO-Iter")):
            want[f"{key}-{size}"] = (kind, "model", f"Psychotherapy-LLM/PsyCoPref-{name}-{suffix}")
        for key, kind, suffix in (("reward", "reward", "Reward"), ("dpo", "dpo", "DPO"), ("dpo-iter", "dpo-iter", "DPO-Iter")):
            want[f"{key}-{size}-qlora"] = (kind, "model", f"Psychotherapy-LLM/PsyCoPref-{name}-{suffix}-QLoRA")
    assert got == want
    assert plan.tag == f"v{__version__}"
    assert [a.kind for a in plan.selected] == sorted((a.kind for a in plan.selected), key=("dataset", "reward", "dpo", "dpo-iter", "space").index)
    models = {a.name: a for a in plan.selected if a.repo_type == "model"}
    assert all(a.state == "fetch" and not a.files for a in models.values())
    assert "reward train recipes/llama-3.1-8b-instruct/reward/config_full.yaml" in models["reward-8b"].command
    assert "--num_processes 8" in models["dpo-iter-8b"].command
    iters = {m.name: m.reward_model for m in plan.links.models if m.kind == "dpo-iter"}
    assert iters == {f"dpo-iter-{v}": want[f"reward-{v}"][2] for v in ("3b", "8b", "3b-qlora", "8b-qlora")}  # same size, variant

    assert main(["release", str(FULL), "--dry-run", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["tag"] == f"v{__version__}" and len(out["artifacts"]) == 14
    space = next(a for a in out["artifacts"] if a["kind"] == "space")
    assert {f["path"] for f in space["files"]} >= {"README.md", "app.py", "config.yaml", "requirements.txt"}
    assert main(["release", str(FULL), "--dry-run"]) == 0
    table = capsys.readouterr().out
    assert "to be built by `accelerate launch" in table and "Psychotherapy-LLM/PsyCoPref-Llama-3.1-8B-Instruct-DPO-Iter" in table
    assert not (tmp_path / "runs").exists()  # a dry run writes nothing


def test_demo_recipe_plans_the_demo_folders(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    plan = make_plan(DEMO)
    assert plan.tag is None  # a local mirror keeps one version: no tag
    states = {a.name: (a.state, str(a.folder)) for a in plan.selected if a.kind != "space"}
    assert states["reward"] == ("build", "runs/demo/reward/reward_model")
    assert states["dataset"] == ("build", "runs/demo/dataset/dataset_repo")
    iter_ = next(m for m in plan.links.models if m.kind == "dpo-iter")
    assert iter_.reward_model == "Psychotherapy-LLM/PsyCoPref-SmolLM2-135M-Instruct-Reward-LoRA"  # a folder, resolved


@pytest.mark.parametrize("version", ["0.2.0.dev1", "0.2.0rc1", "0.2.0a2", "0.2.0+local"])
def test_dev_and_pre_release_versions_are_refused(version, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ReleaseError, match="pre-release.*--allow-dev"):
        make_plan(FULL, version=version)
    assert make_plan(FULL, version=version, allow_dev=True).tag == f"v{version}"
    monkeypatch.setattr("hub_tools.__version__", version)
    assert main(["release", str(FULL), "--dry-run"]) == 2
    assert "--allow-dev" in capsys.readouterr().err


def test_version_has_one_source():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in project["project"] and "version" in project["project"]["dynamic"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "hub_tools.__version__"}
    assert importlib.metadata.version("psycopref") == __version__


# --------------------------------------------------------------------------- tiny artifacts, really released

def _model(root: Path, kind: str, base: Path, data_path: Path, reward: Path | None = None) -> Path:
    """A model folder as `psycopref train-*` leaves it: tiny weights, tokenizer, recipe.yaml, results, card.
    Returns the recipe file (the folder is <work_dir>/<model folder>)."""
    data = {"work_dir": str(root / kind), "model": {"name_or_path": str(base), "hub_id": "hf-base/tiny-llama"},
            "data": {"path": str(data_path)}}
    if kind == "dpo-iter":
        data["iter"] = {"rounds": 2, "speeches_per_round": 4, "reward_model": str(reward)}
    recipe = validate(KINDS.get(kind).load("schema"), data)
    folder = recipe.model_dir
    shutil.copytree(base, folder)
    write_text(folder / "recipe.yaml", yaml.safe_dump(recipe.public(), sort_keys=False))
    write_json(folder / "train_results.json", TRAIN | ({} if kind == "reward" else POLICY) | {"helpsteer2_pairs": 0})
    if kind == "dpo-iter":
        write_json(folder / "rounds.json", [{"round": 0, "dev_reward": 0.1}, {"round": 1, "pairs": 4, "dev_reward": 0.3}])
    if kind == "reward":
        from hub_tools.reward.card import write_card
    else:
        from hub_tools.policy.card import write_card
    write_card(recipe, folder, recipe.repo_id)
    path = root / f"{kind}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture
def release(tmp_path, tiny_base, pairs_repo) -> Path:
    """A release recipe over a dataset folder, a reward model, a DPO and a DPO-Iter policy and the Space."""
    root = tmp_path / "build"
    dataset = shutil.copytree(pairs_repo, root / "dataset_repo")
    write_text(dataset / "recipe.yaml", yaml.safe_dump({"dataset": {"repo_id": IDS["dataset"]}}))
    (root / "dataset.yaml").write_text(yaml.safe_dump({"work_dir": str(root / "dsw"), "dataset": {"repo_id": IDS["dataset"]}}))
    reward = _model(root, "reward", tiny_base, pairs_repo)
    artifacts = [{"name": "dataset", "kind": "dataset", "recipe": str(root / "dataset.yaml"), "folder": str(dataset), "build": "never"},
                 {"name": "reward", "kind": "reward", "recipe": str(reward), "build": "never"},
                 {"name": "dpo", "kind": "dpo", "recipe": str(_model(root, "dpo", tiny_base, pairs_repo)), "build": "never"},
                 {"name": "dpo-iter", "kind": "dpo-iter", "build": "never", "recipe": str(
                     _model(root, "dpo-iter", tiny_base, pairs_repo, reward=root / "reward" / "reward_model"))},
                 {"name": "space", "kind": "space", "folder": str(ROOT / "spaces"), "repo_id": IDS["space"],
                  "config": str(ROOT / "spaces" / "config.local.yaml")}]
    path = tmp_path / "release.yaml"
    path.write_text(yaml.safe_dump({"org": ORG, "hub_dir": str(tmp_path / "mirror"), "staging_dir": str(tmp_path / "staging"),
                                    "artifacts": artifacts}))
    return path


def _front_matter(text: str) -> dict:
    return yaml.safe_load(text.split("---", 2)[1])


def _check_cards(read) -> None:
    """`read(kind, path)` -> text of a published file: every card cross-linked and versioned."""
    dataset = read("dataset", "README.md")
    for kind in ("reward", "dpo", "dpo-iter"):
        assert f"[`{IDS[kind]}`](https://huggingface.co/{IDS[kind]})" in dataset
    assert f"https://huggingface.co/spaces/{IDS['space']}" in dataset and f"psycopref {__version__}" in dataset
    iter_card = read("dpo-iter", "README.md")
    assert f"[`{IDS['reward']}`](https://huggingface.co/{IDS['reward']}), which scored" in iter_card
    assert f"https://huggingface.co/datasets/{IDS['dataset']}" in iter_card and f"spaces/{IDS['space']}" in iter_card
    assert _front_matter(iter_card)["datasets"] == [IDS["dataset"]]
    assert "runs/" not in read("dpo-iter", "recipe.yaml") and IDS["reward"] in read("dpo-iter", "recipe.yaml")
    reward_card = read("reward", "README.md")
    assert "Policies trained with this reward model**: [`" + IDS["dpo-iter"] in reward_card
    assert f"# {IDS['reward'].split('/')[1]}" in reward_card  # re-rendered with the release's repo id
    space = read("space", "README.md")
    meta = _front_matter(space)
    assert meta["models"][:3] == [IDS["reward"], IDS["dpo"], IDS["dpo-iter"]] and meta["datasets"][0] == IDS["dataset"]
    assert meta["sdk"] == "gradio" and f"[`{IDS['dpo']}`]" in space


def test_release_into_a_local_mirror_links_every_card_and_reruns_as_a_no_op(release, tmp_path):
    build_card = (tmp_path / "build" / "dpo-iter" / "policy_model" / "README.md").read_bytes()
    first = publish(make_plan(release))
    assert [r["name"] for r in first] == ["dataset", "reward", "dpo", "dpo-iter", "space"]
    assert all(r["changed"] for r in first)
    mirror = tmp_path / "mirror"
    _check_cards(lambda kind, path: (mirror / f"{TYPES[kind]}s" / IDS[kind] / path).read_text(encoding="utf-8"))
    assert (mirror / "models" / IDS["dpo"] / "model.safetensors").is_file()
    assert (mirror / "spaces" / IDS["space"] / "config.yaml").read_text() == (ROOT / "spaces/config.local.yaml").read_text()
    second = publish(make_plan(release))
    assert not any(r["changed"] for r in second) and [r["commit_id"] for r in second] == [r["commit_id"] for r in first]
    assert (tmp_path / "build" / "dpo-iter" / "policy_model" / "README.md").read_bytes() == build_card  # a copy was edited
    roots = machine_roots(tmp_path)  # the build's folders, the staging dir, the mirror: all under tmp_path
    assert files_naming_machine_paths(mirror, roots) == [] and files_naming_machine_paths(tmp_path / "staging", roots) == []


def test_a_missing_folder_that_must_not_be_built_stops_before_any_push(release, tmp_path):
    shutil.rmtree(tmp_path / "build" / "dpo" / "policy_model")
    plan = make_plan(release)
    assert next(a for a in plan.selected if a.name == "dpo").state == "missing"
    with pytest.raises(ReleaseError, match=r"dpo: .*build: never.*psycopref policy dpo"):
        publish(make_plan(release, only=["dpo", "space"]))
    assert not (tmp_path / "mirror").exists()
    with pytest.raises(ReleaseError, match="--only nope: no such artifact"):
        make_plan(release, only=["nope"])


def test_a_missing_folder_is_built_with_its_recipe_first(release, tmp_path, monkeypatch):
    built = tmp_path / "elsewhere"
    shutil.move(tmp_path / "build" / "dpo" / "policy_model", built)
    data = yaml.safe_load(release.read_text())
    data["artifacts"][2]["build"] = "if_missing"
    release.write_text(yaml.safe_dump(data))
    calls = []
    monkeypatch.setattr("hub_tools.release.publish._build", lambda a: calls.append(a.name) or shutil.copytree(built, a.folder))
    plan = make_plan(release, only=["dpo"])
    assert plan.selected[0].state == "build" and "psycopref policy dpo" in plan.selected[0].command
    (result,) = publish(plan)
    assert calls == ["dpo"] and result["changed"]
    assert "## Related" in (tmp_path / "mirror" / "models" / IDS["dpo"] / "README.md").read_text()


def test_release_to_the_hub_tags_every_repo_and_never_leaks_the_token(release, tmp_path):
    data = yaml.safe_load(release.read_text())
    with serve_hub(tmp_path) as hub:
        env = hub.env(tmp_path / "home")
        runs = [run_client(RELEASE_SCRIPT, env, "release", str(release), "--hub", "--json") for _ in range(2)]
        first, second = (json.loads(r.stdout) for r in runs)
        assert all(r["changed"] and r["tag"] == f"v{__version__}" for r in first)
        assert not any(r["changed"] for r in second)  # unchanged release: no new commit anywhere
        repos = {kind: hub.hub.repos[(TYPES[kind], IDS[kind])] for kind in IDS}
        for kind, repo in repos.items():
            assert len(repo.commits) == 2, kind  # the repo's initial commit + the release
            assert repo.tags[f"v{__version__}"] == repo.branches["main"] == next(r for r in first if r["name"] == kind)["commit_id"]
        assert repos["space"].sdk == "gradio"

        def read(kind, path):
            repo = repos[kind]
            return hub.hub.blob_path(repo.commits[repo.branches["main"]].files[path]).read_text(encoding="utf-8")

        _check_cards(read)
        # The same version with different content is refused at that repo's tag, before it commits.
        (Path(data["artifacts"][2]["recipe"]).parent / "dpo" / "policy_model" / "notes.txt").write_text("retrained")
        third = run_client(RELEASE_SCRIPT, env, "release", str(release), "--hub", check=False)
        assert third.returncode == 2 and "tag 'v" in third.stderr and IDS["dpo"] in third.stderr
        assert len(repos["dpo"].commits) == 2
    outputs = "".join(r.stdout + r.stderr for r in [*runs, third])
    assert TOKEN not in outputs
    assert not any(TOKEN.encode() in p.read_bytes() for p in hub.hub.uploaded_files())
    assert not any(TOKEN.encode() in p.read_bytes() for p in (tmp_path / "staging").rglob("*") if p.is_file())


FETCH_SCRIPT = """
import json, sys
from hub_tools.hub.push import push_folder
from hub_tools.release.plan import make_plan
from hub_tools.release.publish import publish
push_folder(sys.argv[1], sys.argv[2], "model", revision="candidate")  # what the GPU machine pushed
print(json.dumps(publish(make_plan(sys.argv[3], {"hub_dir": None}))))
"""


def test_a_folder_built_elsewhere_is_promoted_from_its_candidate_branch_by_server_side_copies(release, tmp_path):
    data = yaml.safe_load(release.read_text())
    built = tmp_path / "gpu-machine"
    shutil.move(tmp_path / "build" / "reward" / "reward_model", built)  # not on the publishing machine
    data["artifacts"] = [data["artifacts"][1] | {"fetch": "candidate"}]
    release.write_text(yaml.safe_dump(data))
    with serve_hub(tmp_path) as hub:
        out = json.loads(run_client(FETCH_SCRIPT, hub.env(tmp_path / "home"), str(built), IDS["reward"], str(release)).stdout)
        repo = hub.hub.repos[("model", IDS["reward"])]
        assert out[0]["changed"] and repo.tags[f"v{__version__}"] == repo.branches["main"] != repo.branches["candidate"]
        main, candidate = (repo.commits[repo.branches[b]] for b in ("main", "candidate"))
        assert set(main.files) == set(candidate.files)
        assert "## Release" in hub.hub.blob_path(main.files["README.md"]).read_text()
        assert len(repo.commits) == 3  # initial, candidate, and ONE release commit: weights and cards together
        weights = [p for p, b in candidate.files.items() if b.lfs]
        assert "model.safetensors" in weights and all(main.files[p] == candidate.files[p] for p in weights)
        downloaded = [(path, size) for rid, path, size, lfs in hub.hub.served if rid == IDS["reward"]]
        assert downloaded and "recipe.yaml" in dict(downloaded)  # what the cards are re-rendered from came down
        assert not [p for p, _ in downloaded if p in weights]  # no weight byte passed through this machine
        lfs_bytes = sum(size for rid, _, size, lfs in hub.hub.served if lfs)
        assert lfs_bytes == 0
        # Promoting again is a no-op: no commit, the tag stays, still no weight downloaded.
        again = json.loads(run_client(FETCH_SCRIPT, hub.env(tmp_path / "home"), str(built), IDS["reward"], str(release)).stdout)
        assert not again[0]["changed"] and len(repo.commits) == 3
        assert sum(size for _, _, size, lfs in hub.hub.served if lfs) == 0
    assert not (tmp_path / "staging" / ".fetch" / "reward").exists()  # the download is removed after the push


def test_staging_links_big_data_files_and_copies_what_a_release_may_rewrite(tmp_path):
    from hub_tools.release.publish import LINK_MIN_BYTES, _link_or_copy

    for name in ("model.safetensors", "README.md", "figures.png"):
        (tmp_path / name).write_bytes(b"0" * LINK_MIN_BYTES)
        _link_or_copy(str(tmp_path / name), str(tmp_path / f"staged-{name}"))
    inode = {p.name: p.stat().st_ino for p in tmp_path.iterdir()}
    assert inode["staged-model.safetensors"] == inode["model.safetensors"]  # 16 GB of weights are not copied
    assert inode["staged-README.md"] != inode["README.md"] and inode["staged-figures.png"] != inode["figures.png"]

