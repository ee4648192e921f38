"""Which upload path the tests exercise, pinned. With hf_xet installed (a dependency of huggingface_hub on
common platforms) huggingface_hub 2.x uploads LFS files through Xet storage, decided on the client without
asking the server; the test Hub has no Xet storage, so the tests set HF_HUB_DISABLE_XET=1 and push through the
LFS batch API. `push_folder` is the same either way: one `create_commit` of file paths; which path the bytes
take is huggingface_hub's choice. If huggingface_hub ever falls back to LFS on a server without Xet, the second
test fails: then drop HF_HUB_DISABLE_XET from `hub_server.client_env`."""

from __future__ import annotations

import json
import os

import pytest

from hub_server import TOKEN, run_client, serve_hub

PUSH = """
import json, sys
from hub_tools.hub.push import PushError, push_folder
try:
    r = push_folder(sys.argv[1], "Org/Tiny", repo_type="model")
    print(json.dumps({"commit_id": r.commit_id, "changed": r.changed}))
except PushError as err:
    print(json.dumps({"error": str(err)}))
"""


@pytest.fixture
def folder(tmp_path):
    """A model folder with a regular file and an LFS one (by its suffix, as the Hub's .gitattributes says)."""
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "README.md").write_text("---\nlicense: apache-2.0\n---\n# Tiny\n")
    (folder / "model.safetensors").write_bytes(os.urandom(4096))
    return folder


def push(hub, folder, env: dict) -> dict:
    proc = run_client(PUSH, env, str(folder))
    assert TOKEN not in proc.stdout + proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_the_tests_upload_through_the_lfs_batch_api(tmp_path, folder):
    with serve_hub(tmp_path) as hub:
        env = hub.env(tmp_path / "home")
        assert env["HF_HUB_DISABLE_XET"] == "1"
        result = push(hub, folder, env)
        requests = list(hub.hub.requests)
        stored = hub.hub.repos[("model", "Org/Tiny")].commits[result["commit_id"]].files
    assert result["changed"]
    assert "POST /Org/Tiny.git/info/lfs/objects/batch" in requests  # the LFS batch API, basic transfer
    assert sum(r.startswith("PUT /__lfs/model/Org/Tiny/") for r in requests) == 1  # the weights, uploaded once
    assert not [r for r in requests if "xet" in r]
    assert stored["model.safetensors"].lfs and not stored["README.md"].lfs  # the README went inline
    assert hub.hub.blob_path(stored["model.safetensors"]).read_bytes() == (folder / "model.safetensors").read_bytes()


def test_a_user_with_the_default_settings_downloads_over_http(tmp_path, folder):
    """Downloads need no HF_HUB_DISABLE_XET: huggingface_hub takes the Xet path only when the server's answer
    names a Xet hash, which the test Hub never sends, so a user's default settings download over plain HTTP."""
    with serve_hub(tmp_path) as hub:
        push(hub, folder, hub.env(tmp_path / "maintainer"))
        script = ("import sys\nfrom huggingface_hub import hf_hub_download\n"
                  "print(hf_hub_download('Org/Tiny', 'model.safetensors'))")
        proc = run_client(script, hub.env(tmp_path / "user", token="", disable_xet=False))
        requests = list(hub.hub.requests)
    path = proc.stdout.strip().splitlines()[-1]
    assert open(path, "rb").read() == (folder / "model.safetensors").read_bytes()
    assert "GET /Org/Tiny/resolve/main/model.safetensors" in requests and not [r for r in requests if "xet" in r]


def test_by_default_huggingface_hub_uploads_through_xet_which_the_test_hub_lacks(tmp_path, folder):
    """A user's default: hf_xet installed, HF_HUB_DISABLE_XET unset. huggingface_hub asks for a Xet write token
    and never for the LFS batch API; the test Hub refuses (no Xet storage), the push fails as one PushError,
    and the repo keeps its first commit (nothing half-pushed)."""
    pytest.importorskip("hf_xet")
    with serve_hub(tmp_path) as hub:
        env = hub.env(tmp_path / "home", disable_xet=False)
        assert "HF_HUB_DISABLE_XET" not in env
        result = push(hub, folder, env)
        requests = list(hub.hub.requests)
        repo = hub.hub.repos[("model", "Org/Tiny")]
    assert "GET /api/models/Org/Tiny/xet-write-token/main" in requests
    assert not [r for r in requests if "/info/lfs/" in r or r.startswith("PUT /__lfs/")]
    assert "501" in result["error"] and "xet-write-token" in result["error"]
    assert len(repo.commits) == 1  # the Hub's initial commit only
