"""The deployed Space built the way Hugging Face builds it: `space deploy` pushes it to the (test) Hub; a fresh
virtual environment (no site packages of this machine) installs `gradio==<sdk_version>`, then only the
Space's requirements.txt, mounted alone in an empty folder as the Hub's builder does (the Space's files are
copied in afterwards, so no requirement may be a path); `python app.py` starts in the Space's files with
GRADIO_SERVER_PORT, the endpoint variables pointed at a local llama.cpp server and the Hub unreachable; one
comparison runs through gradio_client. For the packaged Space (votes off: its dataset cannot be reached)
and the release's Space (its own DPO and DPO-Iter policies against their base); and the demo's Space config,
its tiny models published to the test Hub, which the Space then downloads (that Hub reachable)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml
from gradio_client import Client

from hub_tools.arena.deploy import build_wheel
from hub_tools.config import ServerConfig
from hub_tools.serving.llama_server import LlamaServer, free_port

from hub_server import run_client, serve_hub

pytestmark = [pytest.mark.server, pytest.mark.timeout(900)]

SPACE = Path(__file__).resolve().parents[2] / "spaces"
SPEECH = "I moved here for work two years ago and I still don't have a single friend I could call."
TIMES: dict[str, float] = {}  # seconds per step, printed at the end of the module (pytest -s) for the report

DEPLOY = """
import sys, tempfile
from pathlib import Path
from huggingface_hub import snapshot_download
from hub_tools.arena.cli import deploy, space_folder, stage_space
from hub_tools.arena.release_space import stage_release_space
from hub_tools.hub.push import push_folder
from hub_tools.release.cards import Linked, Links

kind, repo, wheel, out = sys.argv[1:5]
if kind == "packaged":
    deploy(repo, wheel=wheel)
else:  # the release's Space, as `psycopref release` stages it from its plan's links
    base = "meta-llama/Llama-3.1-8B-Instruct"
    links = Links("0.1.0", "v0.1.0", "config_full", Linked("dataset", "dataset", "rel/Pref", "dataset"),
                  Linked("space", "space", repo, "space"),
                  [Linked("dpo", "dpo", "rel/8B-DPO", "model", base), Linked("dpo-iter", "dpo-iter", "rel/8B-DPO-Iter", "model", base)])
    with tempfile.TemporaryDirectory() as tmp:
        staged = stage_space(space_folder(), None, Path(tmp) / "space")
        stage_release_space(staged, repo, links, wheel=Path(wheel))
        push_folder(staged, repo, "space", space_sdk="gradio")
snapshot_download(repo, repo_type="space", local_dir=out)
"""


def timed(step: str, cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    start = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    TIMES[step] = time.monotonic() - start
    assert proc.returncode == 0, f"{step} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """The test Hub, a llama.cpp server with SmolLM2 (the policies' endpoints), the toolkit's wheel and a fresh
    virtual environment with gradio==sdk_version (the Hub's base image installs it with the requirements)."""
    tmp = tmp_path_factory.mktemp("fresh")
    sdk = yaml.safe_load((SPACE / "README.md").read_text().split("---")[1])["sdk_version"]
    start = time.monotonic()
    wheel = build_wheel(tmp / "wheel")
    TIMES["build the toolkit's wheel"] = time.monotonic() - start
    venv = tmp / "venv"
    timed("create the virtualenv", [sys.executable, "-m", "venv", str(venv)])
    timed(f"pip install gradio=={sdk}", [str(venv / "bin" / "pip"), "install", "-q", f"gradio=={sdk}"])
    server = LlamaServer(ServerConfig(threads=1, n_parallel=3, ctx_size=4096), tmp / "logs").start()
    try:
        with serve_hub(tmp) as hub:
            yield tmp, hub, wheel, venv, server
    finally:
        server.stop()
        print("\nfresh-environment deploy test, seconds per step:")
        for step, seconds in TIMES.items():
            print(f"  {step}: {seconds:.1f}")


def deploy_and_install(world, kind: str, repo: str) -> Path:
    tmp, hub, wheel, venv, _ = world
    out = tmp / kind
    start = time.monotonic()
    run_client(DEPLOY, hub.env(tmp / "home"), kind, repo, str(wheel), str(out), timeout=300)
    TIMES[f"{kind}: deploy to the Hub and download the Space"] = time.monotonic() - start
    mount = tmp / f"{kind}-mount"  # requirements.txt alone, as the builder mounts it at /tmp/requirements.txt
    mount.mkdir()
    shutil.copy(out / "requirements.txt", mount / "requirements.txt")
    timed(f"{kind}: pip install -r requirements.txt", [str(venv / "bin" / "pip"), "install", "-q", "-r",
                                                        str(mount / "requirements.txt")], cwd=mount)
    return out


def run_space(world, folder: Path, urls: dict[str, str], extra_env: dict[str, str] | None = None) -> tuple[list, str]:
    """`python app.py` in the Space's files, the Hub unreachable (unless `extra_env` names one); one comparison
    through gradio_client."""
    tmp, _, _, venv, server = world
    port = free_port()
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp / "home"), "HF_HOME": str(tmp / "hf-home"),
           "HF_ENDPOINT": "http://127.0.0.1:9", "HF_TOKEN": "hf_notARealTokenButShapedLikeOne", "GRADIO_SERVER_PORT": str(port),
           **{name: server.base_url for name in urls}, **(extra_env or {})}
    log = open(folder / "app.log", "w+")  # noqa: SIM115
    start = time.monotonic()
    proc = subprocess.Popen([str(venv / "bin" / "python"), "app.py"], cwd=folder, env=env, stdout=log,
                            stderr=subprocess.STDOUT)
    try:
        deadline, up = time.monotonic() + 180, False
        while time.monotonic() < deadline and not up and proc.poll() is None:
            try:
                up = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2).status == 200
            except OSError:
                time.sleep(0.5)
        TIMES[f"{folder.name}: python app.py until it serves"] = time.monotonic() - start
        assert up, f"the Space did not start:\n{(folder / 'app.log').read_text()[-4000:]}"
        start = time.monotonic()
        result = Client(f"http://127.0.0.1:{port}/", verbose=False).predict(SPEECH, api_name="/compare")
        TIMES[f"{folder.name}: one comparison"] = time.monotonic() - start
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()
    return list(result), (folder / "app.log").read_text()


def test_the_packaged_space_installs_and_compares_with_votes_off(world):
    folder = deploy_and_install(world, "packaged", "tester/psycopref-compare")
    venv = world[3]
    where = subprocess.run([str(venv / "bin" / "python"), "-c", "import hub_tools, gradio; print(hub_tools.__file__)"],
                           capture_output=True, text=True, cwd=world[0])
    assert str(venv) in where.stdout  # the toolkit came from the Space's requirements, not from this checkout
    banner, *columns = run_space(world, folder, {"PSYCOPREF_POLICY_URL": "", "PSYCOPREF_BASE_URL": ""})[0]
    assert len(columns) == 4 and all(a.strip() for a in columns[0::2]) and all(" words" in s for s in columns[1::2])
    log = (folder / "app.log").read_text()
    assert "votes are off" in log and "Traceback" not in log  # the votes dataset could not be reached: served anyway


def test_the_release_space_installs_and_compares_its_own_policies(world):
    folder = deploy_and_install(world, "release", "tester/release-space")
    names = [p["name"] for p in yaml.safe_load((folder / "config.yaml").read_text())["policies"]]
    assert names == ["Llama-3.1-8B-Instruct", "8B-DPO", "8B-DPO-Iter"]
    urls = {"PSYCOPREF_BASE_URL": "", "PSYCOPREF_DPO_URL": "", "PSYCOPREF_DPO_ITER_URL": ""}
    (banner, *columns), log = run_space(world, folder, urls)
    assert len(columns) == 6 and all(a.strip() for a in columns[0::2]), log[-3000:]


PUSH_MODELS = """
import sys
from hub_tools.hub.push import push_folder
for folder, repo in zip(sys.argv[1::2], sys.argv[2::2]):
    push_folder(folder, repo, "model", hub_dir=None)
"""


def test_the_demo_space_config_deploys_with_its_models_from_the_hub(world):
    """The config `psycopref demo` writes (the base model on the Space's own llama.cpp server, the demo's
    policy and reward model in-process from mirror folders, a votes file of this machine): deploy rewrites
    the folders into the Hub ids they were published as and ships the GGUF; the Space downloads its tiny
    models from the (test) Hub at start."""
    from transformers import AutoModelForSequenceClassification

    from hub_tools.demo import Demo, write_space_config

    from tiny_models import save_tiny_llama

    tmp, hub, wheel, venv, _ = world
    demo = Demo(work=tmp / "demo-work", hub=tmp / "demo-hub")
    words = "I hear you tell me more about how that feels it sounds hard and what happens next".split()
    repos = {step: demo.recipe(step).repo_id for step in ("dpo", "reward")}
    folders = {step: demo.hub / "models" / repo for step, repo in repos.items()}
    save_tiny_llama(folders["dpo"], words=words, seed=3)
    save_tiny_llama(folders["reward"], words=words, seed=4)
    AutoModelForSequenceClassification.from_pretrained(folders["reward"], num_labels=1).save_pretrained(folders["reward"])
    config = write_space_config(demo)
    assert str(folders["dpo"]) in config.read_text()  # the demo's config names this machine's folders
    args = [str(x) for step in repos for x in (folders[step], repos[step])]
    run_client(PUSH_MODELS, hub.env(tmp / "home"), *args, timeout=300)  # published: deploy may name them
    DEMO = DEPLOY.replace('if kind == "packaged":\n    deploy(repo, wheel=wheel)',
                          'if kind == "demo":\n    deploy(repo, config=sys.argv[5], wheel=wheel)')
    out = tmp / "demo"
    start = time.monotonic()
    run_client(DEMO, hub.env(tmp / "home"), "demo", "tester/demo-space", str(wheel), str(out), str(config), timeout=300)
    TIMES["demo: deploy to the Hub and download the Space"] = time.monotonic() - start
    deployed = yaml.safe_load((out / "config.yaml").read_text())
    assert [p["model"] for p in deployed["policies"]][1:] == [repos["dpo"]] and deployed["reward"]["model"] == repos["reward"]
    assert str(tmp) not in (out / "config.yaml").read_text() and (out / deployed["server"]["gguf"]).is_file()
    mount = tmp / "demo-mount"
    mount.mkdir()
    shutil.copy(out / "requirements.txt", mount / "requirements.txt")
    timed("demo: pip install -r requirements.txt (xllamacpp, torch, transformers)",
          [str(venv / "bin" / "pip"), "install", "-q", "-r", str(mount / "requirements.txt")], cwd=mount)
    env = {k: v for k, v in hub.env(tmp / "home-app").items() if k.startswith(("HF_", "HUGGING"))}
    (banner, *columns), log = run_space(world, out, {}, extra_env=env)
    assert len(columns) == 4 and all(a.strip() for a in columns[0::2]), log[-3000:]
    assert "PsyCoPref reward" in columns[3]  # the demo's reward model scored the policy's answer
