"""DPO-Iter's data-parallel phases: 2 generate workers (vLLM stand-in, 2 GPUs each) and 2 score workers (one
GPU each), real subprocesses started by the phase, give the round the same answers, rewards, pairs and
manifest as one process; each worker saw its own GPUs and a disjoint share; the phase's own generate asks
no engine; a rerun starts no worker."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
from datasets import load_from_disk
from test_dpo_iter import iter_recipe, tiny_reward  # noqa: F401  (the reward model fixture)

from hub_tools.policy import phases, workers

pytest.importorskip("torch")
pytest.importorskip("trl")

FAKE = Path(__file__).resolve().parents[1] / "helpers" / "fake_vllm"


def recipe(tiny_base, tiny_reward, pairs_repo, work, dp: int, score_dp: int):  # noqa: F811
    r = iter_recipe(tiny_base, tiny_reward, pairs_repo, work, rounds=1)
    params = {"temperature": 1.0, "max_tokens": 4, "tensor_parallel_size": 2}
    gen = r.iter.generation.model_copy(update={"backend": "vllm", "data_parallel_size": dp, "params": params})
    return r.model_copy(update={"iter": r.iter.model_copy(update={"generation": gen, "score_batch_size": 2,
                                                                  "score_data_parallel_size": score_dp})})


def round_of(work: Path) -> dict:
    folder = work / "round-1"
    return {"manifest": json.loads((folder / "manifest.json").read_text())["steps"],
            **{name: load_from_disk(str(folder / name)).to_list() for name in ("speeches", "responses", "scores", "pairs")}}


def test_generate_and_score_workers_give_one_process_result(tiny_base, tiny_reward, pairs_repo, tmp_path,  # noqa: F811
                                                             fake_vllm, monkeypatch):
    log = tmp_path / "vllm.jsonl"
    monkeypatch.setenv("FAKE_VLLM_LOG", str(log))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(FAKE), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,5,6,7")  # the GPUs this job was given
    one = recipe(tiny_base, tiny_reward, pairs_repo, tmp_path / "one", dp=1, score_dp=1)
    many = recipe(tiny_base, tiny_reward, pairs_repo, tmp_path / "many", dp=2, score_dp=2)
    for phase in ("generate", "score"):
        phases.run_phase(one, phase, 1)
    fake_vllm.LLM.calls.clear()
    log.write_text("")
    for phase in ("generate", "score"):
        phases.run_phase(many, phase, 1)
    assert fake_vllm.LLM.calls == []  # the phase's own generate found every answer cached
    assert round_of(tmp_path / "many") == round_of(tmp_path / "one")  # manifest, answers, rewards, pairs

    lines = [json.loads(x) for x in log.read_text().splitlines()]
    assert lines and all(x["ppid"] == os.getpid() for x in lines)  # only the workers asked an engine
    engines = {x["pid"]: x for x in lines if x["event"] == "engine"}
    assert sorted(x["devices"] for x in engines.values()) == ["4,5", "6,7"]
    assert all(x["engine_args"] == {"tensor_parallel_size": 2} for x in engines.values())
    asked = {pid: [t for x in lines if x["event"] == "chat" and x["pid"] == pid for t in x["last"]] for pid in engines}
    a, b = asked.values()
    assert a and b and not set(a) & set(b) and len(a) + len(b) == 4 * 3  # disjoint shares, every answer once

    shards = [np.load(workers.shard_file(many, 1, i, 2)) for i in range(2)]
    assert [str(s["devices"]) for s in shards] == ["4", "5"]
    assert sorted(np.concatenate([s["index"] for s in shards]).tolist()) == list(range(12))
    assert min(len(s["index"]) for s in shards) > 0

    started = []
    monkeypatch.setattr(phases.subprocess, "Popen", lambda cmd, **kw: started.append(cmd))
    for phase in ("generate", "score"):
        phases.run_phase(many, phase, 1)
    assert started == [] and fake_vllm.LLM.calls == []  # done phases start no worker, ask no engine


def test_a_failed_worker_is_named_and_its_finished_shard_is_kept(tiny_base, tiny_reward, pairs_repo, tmp_path,  # noqa: F811
                                                                 fake_vllm, monkeypatch):
    from hub_tools.errors import StageError

    many = recipe(tiny_base, tiny_reward, pairs_repo, tmp_path / "many", dp=2, score_dp=2)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(FAKE), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    phases.run_phase(many, "generate", 1)
    real = subprocess.Popen

    def second_dies(cmd, **kw):
        return real(["false"] if cmd[-1] == "1/2" else cmd, **kw)

    monkeypatch.setattr(phases.subprocess, "Popen", second_dies)
    with pytest.raises(StageError, match=r"round 1, phase score: 1 of 2 workers failed.*--shard 1/2.*rerun"):
        phases.run_phase(many, "score", 1)
    assert workers.shard_file(many, 1, 0, 2).is_file() and not workers.shard_file(many, 1, 1, 2).exists()
    started = []
    monkeypatch.setattr(phases.subprocess, "Popen", lambda cmd, **kw: started.append(cmd) or real(cmd, **kw))
    phases.run_phase(many, "score", 1)
    assert len(started) == 2 and (tmp_path / "many" / "round-1" / "pairs").is_dir()


def test_the_gpu_plan_takes_the_visible_gpus_in_order(monkeypatch):
    from hub_tools.config import RecipeError

    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert workers.gpu_plan(4, 2) == ["0,1", "2,3", "4,5", "6,7"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5,7")
    assert workers.gpu_plan(3, 1) == ["3", "5", "7"]
    with pytest.raises(RecipeError, match=r"2 workers of 2 GPU\(s\) each need 4 GPUs"):
        workers.gpu_plan(2, 2)
