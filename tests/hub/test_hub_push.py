"""push_folder against a test Hub server (remote mode) and into a local Hub mirror (local mode).

Remote clients (push_folder and load_dataset) run in subprocesses because huggingface_hub reads
HF_ENDPOINT at import; the server runs in this process so tests can inspect and sabotage it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from datasets import Dataset, load_dataset

from hub_tools.hub import push as push_mod
from hub_tools.hub.push import PushError, push_folder, redact, resolve_token
from hub_tools.paper.principles import PRINCIPLE_NAMES

from hub_server import run_client, serve_hub

README = """---
license: cc-by-nc-4.0
configs:
- config_name: default
  data_files:
  - split: train
    path: data/train-*
  - split: test
    path: data/test-*
- config_name: pairs
  data_files:
  - split: train
    path: pairs/train-*
  - split: test
    path: pairs/test-*
---
# Test preference data
"""

PUSH_SCRIPT = """
import json, sys
from huggingface_hub import HfApi
from hub_tools.hub.push import PushError, push_folder
out = []
for kw in json.loads(sys.argv[1]):
    try:
        r = push_folder(**kw)
        out.append({"url": r.url, "commit_id": r.commit_id, "changed": r.changed})
    except PushError as err:
        out.append({"error": str(err)})
    try:
        out[-1]["commits"] = len(HfApi().list_repo_commits(kw["repo_id"], repo_type="dataset"))
    except Exception:
        out[-1]["commits"] = None
print(json.dumps(out))
"""

LOAD_SCRIPT = """
import json, sys
import datasets
out = []
for repo, config, revision in json.loads(sys.argv[1]):
    dd = datasets.load_dataset(repo, config, revision=revision)
    out.append({split: {"rows": d.num_rows, "ids": list(d["ID"]),
                        "features": {k: str(v) for k, v in d.features.items()}} for split, d in dd.items()})
print(json.dumps(out))
"""


def _pairs(n: int, start: int) -> tuple[Dataset, Dataset]:
    """`n` rows of the release ("default") config and of the "pairs" config, ids from `start`."""
    ids = [f"bundled-{i:012x}" for i in range(start, start + n)]
    default = {"ID": ids, "prefID": [i % 3 for i in range(n)], "question": [f"q{i}" for i in range(n)],
               "chosen": [f"good {i}" for i in range(n)], "rejected": [f"bad {i}" for i in range(n)],
               "chosen_model": ["m-a"] * n, "rejected_model": ["m-b"] * n}
    for side, base in (("chosen", 4), ("rejected", 2)):
        for p in PRINCIPLE_NAMES:
            default[f"{side}_{p}_rating"] = [base + (i % 2) for i in range(n)]
    pairs = {"ID": ids, "prefID": default["prefID"],
             "prompt": [[{"role": "user", "content": q}] for q in default["question"]],
             "chosen": [[{"role": "assistant", "content": c}] for c in default["chosen"]],
             "rejected": [[{"role": "assistant", "content": r}] for r in default["rejected"]],
             "margin_overall": [2.0 + i / 7 for i in range(n)], "safety_veto": [i == 1 for i in range(n)],
             "topic_coarse": [None if i == 0 else "anxiety" for i in range(n)]}
    return Dataset.from_dict(default), Dataset.from_dict(pairs)


def make_repo(folder: Path, n_test: int = 2, extra: bool = True) -> dict:
    """A dataset repo folder as the pairs stage would publish it; returns {(config, split): Dataset}."""
    sources = {}
    for split, (n, start) in {"train": (5, 0), "test": (n_test, 100)}.items():
        default, pairs = _pairs(n, start)
        for config, sub, ds in (("default", "data", default), ("pairs", "pairs", pairs)):
            (folder / sub).mkdir(parents=True, exist_ok=True)
            ds.to_parquet(str(folder / sub / f"{split}-00000-of-00001.parquet"))
            sources[(config, split)] = ds
    (folder / "README.md").write_text(README)
    if extra:
        (folder / "notes.txt").write_text("only in the first version\n")
    return sources


def _summary(sources: dict, config: str) -> dict:
    return {split: {"rows": ds.num_rows, "ids": list(ds["ID"]), "features": {k: str(v) for k, v in ds.features.items()}}
            for (cfg, split), ds in sources.items() if cfg == config}


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    with serve_hub(tmp_path_factory.mktemp("hub")) as server:
        yield server


@pytest.fixture(scope="module")
def versions(tmp_path_factory):
    """Two versions of the repo: v2 has one more test row in both configs and no notes.txt."""
    root = tmp_path_factory.mktemp("repo")
    return {"v1": (root / "v1", make_repo(root / "v1")), "v2": (root / "v2", make_repo(root / "v2", 3, False))}


def push(hub, tmp_path, *calls: dict, token: str | None = None) -> list[dict]:
    """Run push_folder once per kwargs dict in one client process; per call: result or error + commit count."""
    env = hub.env(tmp_path / "hf-home", token)  # token None: the server's valid one; "": none
    calls = [{"repo_type": "dataset", **{k: str(v) if isinstance(v, Path) else v for k, v in c.items()}} for c in calls]
    proc = run_client(PUSH_SCRIPT, env, json.dumps(calls))
    for secret in (hub.hub.token, token):
        assert not secret or secret not in proc.stdout + proc.stderr, "token leaked into the client's output"
    return json.loads(proc.stdout.strip().splitlines()[-1])


def load(hub, tmp_path, *requests: tuple) -> list[dict]:
    proc = run_client(LOAD_SCRIPT, hub.env(tmp_path / "hf-home-user", disable_xet=False), json.dumps(requests))
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_pushed_repo_loads_both_configs_like_the_hub(hub, versions, tmp_path):
    folder, sources = versions["v1"]
    [result] = push(hub, tmp_path, {"folder": folder, "repo_id": "Org/Roundtrip"})
    repo = hub.hub.repos[("dataset", "Org/Roundtrip")]
    assert result["changed"] and result["commit_id"] == repo.branches["main"]
    assert result["url"] == f"{hub.url}/datasets/Org/Roundtrip"
    head = repo.commits[repo.branches["main"]]
    parquet = [f"{d}/{s}-00000-of-00001.parquet" for d in ("data", "pairs") for s in ("train", "test")]
    assert sorted(head.files) == sorted([".gitattributes", "README.md", "notes.txt", *parquet])
    assert all(head.files[p].lfs for p in head.files if p.endswith(".parquet")), "parquet went through LFS"
    default, pairs = load(hub, tmp_path, ("Org/Roundtrip", None, None), ("Org/Roundtrip", "pairs", None))
    assert default == _summary(sources, "default")
    assert pairs == _summary(sources, "pairs")
    uploaded = [p.read_bytes() for p in hub.hub.uploaded_files()]
    assert any(b"config_name: pairs" in body for body in uploaded), "the README upload was recorded"
    assert not any(hub.hub.token.encode() in body for body in uploaded), "the token was uploaded"


def test_unchanged_push_makes_no_commit_and_a_change_makes_one(hub, versions, tmp_path):
    (v1, _), (v2, _) = versions["v1"], versions["v2"]
    first, again, changed = push(hub, tmp_path, {"folder": v1, "repo_id": "Org/Idem"},
                                 {"folder": v1, "repo_id": "Org/Idem"}, {"folder": v2, "repo_id": "Org/Idem"})
    assert first["changed"] and first["commits"] == 2  # the repo's initial commit + this push
    assert not again["changed"] and again["commit_id"] == first["commit_id"] and again["commits"] == 2
    assert changed["changed"] and changed["commit_id"] != first["commit_id"] and changed["commits"] == 3
    repo = hub.hub.repos[("dataset", "Org/Idem")]
    assert len(repo.commits) == 3 and repo.branches["main"] == changed["commit_id"]
    head = repo.commits[changed["commit_id"]]
    assert "notes.txt" not in head.files and ".gitattributes" in head.files  # the remote mirrors the folder
    assert repo.commits[first["commit_id"]].files["data/train-00000-of-00001.parquet"] == \
        head.files["data/train-00000-of-00001.parquet"]


def test_tag_marks_a_loadable_release_and_is_never_moved_silently(hub, versions, tmp_path):
    (v1, src1), (v2, src2) = versions["v1"], versions["v2"]
    tagged, retag, refused, second, moved, branch = push(
        hub, tmp_path,
        {"folder": v1, "repo_id": "Org/Tagged", "tag": "v0.1.0"},
        {"folder": v1, "repo_id": "Org/Tagged", "tag": "v0.1.0"},  # same content, same commit: fine
        {"folder": v2, "repo_id": "Org/Tagged", "tag": "v0.1.0"},  # would move the tag: refused
        {"folder": v2, "repo_id": "Org/Tagged", "tag": "v0.2.0"},
        {"folder": v1, "repo_id": "Org/Tagged", "tag": "v0.2.0", "overwrite_tag": True},
        {"folder": v2, "repo_id": "Org/Tagged", "revision": "next"},  # a new branch, from main
    )
    repo = hub.hub.repos[("dataset", "Org/Tagged")]
    assert tagged["changed"] and not retag["changed"] and retag["commit_id"] == tagged["commit_id"]
    assert "v0.1.0" in refused["error"] and "overwrite_tag" in refused["error"]
    assert refused["commits"] == 2, "a refused tag move must not commit"
    assert second["changed"] and moved["changed"] and repo.tags["v0.2.0"] == moved["commit_id"]
    assert repo.tags["v0.1.0"] == tagged["commit_id"] != moved["commit_id"] == repo.branches["main"]
    assert branch["changed"] and repo.branches["next"] == branch["commit_id"]
    assert repo.commits[branch["commit_id"]].parent == moved["commit_id"]
    old, by_id = load(hub, tmp_path, ("Org/Tagged", "pairs", "v0.1.0"), ("Org/Tagged", "pairs", second["commit_id"]))
    assert old == _summary(src1, "pairs") and by_id == _summary(src2, "pairs")


def test_bad_or_missing_token_is_a_push_error_that_never_shows_the_token(hub, versions, tmp_path):
    folder, _ = versions["v1"]
    wrong = "hf_WrongSecretValue0000000000000000"
    hub.hub.echo_auth = True  # the server puts the Authorization header in its 401 message
    try:
        [bad] = push(hub, tmp_path, {"folder": folder, "repo_id": "Org/Secret", "token": wrong}, token=wrong)
        [anon] = push(hub, tmp_path, {"folder": folder, "repo_id": "Org/Secret"}, token="")  # anonymous
    finally:
        hub.hub.echo_auth = False
    assert "401" in bad["error"] and "***" in bad["error"] and wrong not in bad["error"]
    assert "\n" not in bad["error"] and "\n" not in anon["error"]  # one line, as every expected error
    assert "401" in anon["error"]
    assert ("dataset", "Org/Secret") not in hub.hub.repos


def test_interrupted_push_leaves_the_remote_at_its_previous_revision(hub, versions, tmp_path):
    (v1, _), (v2, _) = versions["v1"], versions["v2"]
    [first] = push(hub, tmp_path, {"folder": v1, "repo_id": "Org/Interrupted"})
    hub.hub.fail_lfs_uploads = True
    try:
        [failed] = push(hub, tmp_path, {"folder": v2, "repo_id": "Org/Interrupted"})
    finally:
        hub.hub.fail_lfs_uploads = False
    repo = hub.hub.repos[("dataset", "Org/Interrupted")]
    assert "simulated failure" in failed["error"] and failed["commits"] == first["commits"] == 2
    assert "\n" not in failed["error"] and "caused by" in failed["error"]  # the chain, on one line
    assert repo.branches["main"] == first["commit_id"]
    assert "notes.txt" in repo.commits[first["commit_id"]].files  # v1's tree, untouched
    [retry] = push(hub, tmp_path, {"folder": v2, "repo_id": "Org/Interrupted"})
    assert retry["changed"] and retry["commits"] == 3


def test_local_mirror_layout_idempotency_and_load(versions, tmp_path):
    (v1, src1), (v2, src2) = versions["v1"], versions["v2"]
    hub_dir = tmp_path / "hub"
    first = push_folder(v1, "Org/Name", hub_dir=hub_dir)
    dest = hub_dir / "datasets" / "Org" / "Name"
    assert first.changed and first.url == str(dest)
    assert sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file()) == \
        sorted(p.relative_to(v1).as_posix() for p in v1.rglob("*") if p.is_file())
    again = push_folder(v1, "Org/Name", hub_dir=hub_dir)
    assert not again.changed and again.commit_id == first.commit_id
    pairs = load_dataset(str(dest), "pairs")
    assert {s: d.num_rows for s, d in pairs.items()} == {"train": 5, "test": 2}
    assert pairs["train"].features == src1[("pairs", "train")].features
    second = push_folder(v2, "Org/Name", hub_dir=hub_dir)
    assert second.changed and second.commit_id != first.commit_id and not (dest / "notes.txt").exists()
    assert list(load_dataset(str(dest))["test"]["ID"]) == list(src2[("default", "test")]["ID"])
    assert [p.name for p in dest.parent.iterdir()] == ["Name"], "no temp or old copies left behind"
    model = push_folder(v1, "Org/Name", "model", hub_dir=hub_dir)
    assert model.url == str(hub_dir / "models" / "Org" / "Name")


def test_local_interrupted_copy_keeps_the_previous_version(versions, tmp_path, monkeypatch):
    (v1, _), (v2, _) = versions["v1"], versions["v2"]
    hub_dir = tmp_path / "hub"
    first = push_folder(v1, "Org/Name", hub_dir=hub_dir)
    dest = hub_dir / "datasets" / "Org" / "Name"
    calls = []

    def copy_then_fail(src, dst):
        calls.append(src)
        if len(calls) == 3:
            raise OSError("disk full")
        return shutil.copy2(src, dst)

    monkeypatch.setattr(push_mod.mirror.shutil, "copy2", copy_then_fail)
    with pytest.raises(PushError, match="disk full"):
        push_folder(v2, "Org/Name", hub_dir=hub_dir)
    monkeypatch.undo()
    assert push_mod._digest(dest) == first.commit_id and (dest / "notes.txt").exists()
    dest.rename(dest.with_name(".Name.old"))  # as if a push died between its two renames
    assert push_folder(v1, "Org/Name", hub_dir=hub_dir).changed is False and dest.is_dir()


def test_redact_resolve_token_and_argument_errors(tmp_path, monkeypatch):
    token = "tok-without-the-usual-shape"
    text = f"401 for Bearer {token}; {token} again; other hf_abcdefghijklmnopqrstuvwxyz0123"
    clean = redact(text, token)
    assert token not in clean and "hf_abcdefghij" not in clean and clean.count("***") == 3
    monkeypatch.setenv("HF_TOKEN", "hf_fromEnvironment000000000000000")
    assert resolve_token() == "hf_fromEnvironment000000000000000"
    assert resolve_token("explicit") == "explicit"
    (tmp_path / "empty").mkdir()
    (tmp_path / "f").mkdir()
    (tmp_path / "f" / "README.md").write_text("# x\n")
    with pytest.raises(PushError, match="'<org>/<name>'"):
        push_folder(tmp_path / "f", "no-namespace", hub_dir=tmp_path)
    with pytest.raises(PushError, match="nothing to push"):
        push_folder(tmp_path / "missing", "Org/Name", hub_dir=tmp_path)
    with pytest.raises(PushError, match="nothing to push"):
        push_folder(tmp_path / "empty", "Org/Name", hub_dir=tmp_path)  # would delete the repo's files
    with pytest.raises(PushError, match="repo_type"):
        push_folder(tmp_path / "f", "Org/Name", "bucket", hub_dir=tmp_path)
    with pytest.raises(PushError, match="revision and tag need the Hub"):
        push_folder(tmp_path / "f", "Org/Name", tag="v1", hub_dir=tmp_path)
