"""`psycopref space run|deploy`. run: the app serves on 127.0.0.1 until stopped. deploy: the Space folder goes to
the (test) Hub as a gradio Space in one commit, the repo created with its SDK; an unchanged folder makes no
commit; `--hub-dir` copies into a local mirror; a bad folder or config stops before anything is uploaded."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import yaml

from hub_tools.cli import main
from hub_tools.serving.llama_server import free_port

from fault_server import serve_faults
from hub_server import run_client, serve_hub
from space_helpers import responder, space_config

SPACE = Path(__file__).resolve().parents[2] / "spaces"

DEPLOY = """
import json, sys
from huggingface_hub import HfApi
from hub_tools.cli import main
codes = [main(["space", "deploy", "--repo-id", "tester/psycopref-compare", "--folder", sys.argv[1], *extra])
         for extra in ([], [], ["--config", sys.argv[2]])]
api = HfApi()
info = api.space_info("tester/psycopref-compare")
commits = api.list_repo_commits("tester/psycopref-compare", repo_type="space")
files = sorted(api.list_repo_files("tester/psycopref-compare", repo_type="space"))
from huggingface_hub import hf_hub_download
config = open(hf_hub_download("tester/psycopref-compare", "config.yaml", repo_type="space")).read()
print(json.dumps({"codes": codes, "sdk": info.sdk, "files": files, "commits": [c.title for c in commits],
                  "config": config}))
"""


def test_deploy_makes_one_commit_to_a_gradio_space(tmp_path, capsys):
    with serve_hub(tmp_path) as hub:
        proc = run_client(DEPLOY, hub.env(tmp_path / "home"), str(SPACE), str(SPACE / "config.local.yaml"))
        created = hub.hub.repos[("space", "tester/psycopref-compare")]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["codes"] == [0, 0, 0] and out["sdk"] == "gradio" and created.sdk == "gradio"
    # made deployable: the toolkit's wheel and, for the managed server of config.local.yaml, its GGUF ship inside
    assert out["files"] == [".gitattributes", "README.md", "app.py", "config.local.yaml", "config.yaml",
                            "models/SmolLM2-135M-Instruct.Q4_1.gguf", "requirements.txt",
                            "wheels/psycopref-0.1.0-py3-none-any.whl"]
    # creation, the first deploy (one commit for every file), nothing for the unchanged folder (a reproducible
    # wheel), the new config
    assert out["commits"][::-1] == ["initial commit", *["Deploy the PsyCoPref comparison Space with psycopref"] * 2]
    deployed, local = yaml.safe_load(out["config"]), yaml.safe_load((SPACE / "config.local.yaml").read_text())
    assert deployed["policies"] == local["policies"] and deployed["server"]["gguf"] == "models/SmolLM2-135M-Instruct.Q4_1.gguf"
    assert "deployed: " in proc.stdout and "unchanged: " in proc.stdout
    assert hub.hub.token not in proc.stdout + proc.stderr


def test_deploy_into_a_local_hub_mirror(tmp_path, capsys):
    assert main(["space", "deploy", "--repo-id", "tester/compare", "--folder", str(SPACE), "--hub-dir",
                 str(tmp_path / "hub")]) == 0
    mirrored = tmp_path / "hub" / "spaces" / "tester" / "compare"
    assert sorted(p.name for p in mirrored.iterdir()) == ["README.md", "app.py", "config.local.yaml", "config.yaml",
                                                          "requirements.txt", "wheels"]
    assert f"deployed: {mirrored}" in capsys.readouterr().out


def test_a_bad_config_stops_the_deploy_before_any_upload(tmp_path, capsys):
    bad = tmp_path / "config.yaml"
    bad.write_text("policies: []\n")
    assert main(["space", "deploy", "--repo-id", "tester/compare", "--folder", str(SPACE), "--config", str(bad),
                 "--hub-dir", str(tmp_path / "hub")]) == 2
    assert "config.yaml: invalid recipe" in capsys.readouterr().err and not (tmp_path / "hub").exists()


def test_space_run_serves_the_app_until_stopped(tmp_path):
    with serve_faults(responder=responder) as backend:
        config = tmp_path / "config.yaml"
        config.write_text(yaml.safe_dump(space_config(backend.url, tmp_path).model_dump(mode="json")))
        port = free_port()
        proc = subprocess.Popen([sys.executable, "-m", "hub_tools.cli", "space", "run", "--config", str(config),
                                 "--port", str(port)], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            deadline, page = time.monotonic() + 60, ""
            while time.monotonic() < deadline and "PsyCoPref" not in page:
                try:
                    page = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2).read().decode()
                except OSError:
                    time.sleep(0.3)
            assert "PsyCoPref: counselling policies side by side" in page
        finally:
            proc.send_signal(signal.SIGINT)
            out = proc.communicate(timeout=30)[0].decode()
    assert proc.returncode in (0, 130), out
