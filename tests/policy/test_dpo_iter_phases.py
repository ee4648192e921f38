"""DPO-Iter through the phase runner: a whole round on tiny models, each phase (generate, score, train,
evaluate) a process of its own reading the resolved recipe, the same manifests as the in-process loop, and
a rerun that starts no process because every phase is recorded as done."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from test_dpo_iter import iter_recipe, tiny_reward  # noqa: F401  (the reward model fixture)

from hub_tools.errors import StageError
from hub_tools.policy import phases

pytest.importorskip("torch")
pytest.importorskip("trl")


def test_a_round_runs_as_separate_phase_processes_and_resumes(tiny_base, tiny_reward, pairs_repo, tmp_path,  # noqa: F811
                                                              monkeypatch):
    work = tmp_path / "work"
    recipe = iter_recipe(tiny_base, tiny_reward, pairs_repo, work, rounds=1)
    launched = []
    real_run = subprocess.run

    def run(cmd, **kwargs):
        launched.append(cmd)
        return real_run(cmd, **kwargs)

    monkeypatch.setattr(phases.subprocess, "run", run)
    folder = phases.run_phases(recipe)
    assert [(c[c.index("--phase") + 1], c[c.index("--round") + 1]) for c in launched] == [
        ("evaluate", "0"), ("generate", "1"), ("score", "1"), ("train", "1"), ("evaluate", "1")]
    assert all(c[0] == sys.executable and c[-5] == str(work / "recipe.resolved.yaml") for c in launched)
    steps = json.loads((work / "round-1" / "manifest.json").read_text())["steps"]
    assert list(steps) == ["speeches", "generate", "score", "pairs", "train", "dev"]
    assert steps["generate"]["samples"] == 3 and steps["pairs"]["pairs"] >= 1
    assert (work / "round-1" / "checkpoint" / "model.safetensors").is_file()
    rounds = json.loads((folder / "rounds.json").read_text())
    assert [r["round"] for r in rounds] == [0, 1] and rounds[1]["dev_reward"] is not None
    assert json.loads((folder / "train_results.json").read_text())["best_round"] == 1

    launched.clear()
    assert phases.run_phases(recipe) == folder and launched == []  # every phase done: nothing starts again


def test_the_train_phase_takes_the_launcher_and_a_failed_phase_says_where_to_resume(tiny_base, tiny_reward,  # noqa: F811
                                                                                     pairs_repo, tmp_path, monkeypatch):
    launcher = "accelerate launch --config_file recipes/accelerate/deepspeed_zero3.yaml --num_processes 8"
    cmd = phases.phase_command(tmp_path / "r.yaml", "train", 2, launcher)
    assert cmd[:6] == ["accelerate", "launch", "--config_file", "recipes/accelerate/deepspeed_zero3.yaml",
                       "--num_processes", "8"]
    assert cmd[6:] == ["-m", "hub_tools.cli", "policy", "dpo-iter", str(tmp_path / "r.yaml"), "--phase", "train",
                       "--round", "2"]
    assert phases.phase_command(tmp_path / "r.yaml", "generate", 2, launcher)[0] == sys.executable

    recipe = iter_recipe(tiny_base, tiny_reward, pairs_repo, tmp_path / "work", rounds=1)
    monkeypatch.setattr(phases.subprocess, "run", lambda cmd, **kw: subprocess.CompletedProcess(cmd, 3))
    with pytest.raises(StageError, match=r"round 0, phase evaluate failed \(exit 3\).*rerun the same command"):
        phases.run_phases(recipe)


def test_the_evaluate_phase_is_done_only_when_the_dev_judge_has_judged(tiny_base, tiny_reward, pairs_repo,  # noqa: F811
                                                                       tmp_path):
    from hub_tools.config import validate
    from hub_tools.policy.config import DevJudgeSection
    from hub_tools.policy.iterate import Manifest

    plain = iter_recipe(tiny_base, tiny_reward, pairs_repo, tmp_path / "work", rounds=1)
    judge = {"judge": {"endpoint": {"backend": "fake-judge", "model": "judge"}}}

    def judged(**extra):
        section = validate(DevJudgeSection, {**judge, **extra})
        return plain.model_copy(update={"iter": plain.iter.model_copy(update={"dev_judge": section})})

    m = Manifest(tmp_path / "work" / "round-1", 1)
    m.mark("dev", reward=0.1)
    assert phases.phase_done(plain, "evaluate", 1)  # no judge: the dev reward is the whole phase
    assert not phases.phase_done(judged(), "evaluate", 1)  # a judge added later: the phase runs again for it
    m.mark("judge", win_rate=0.5)
    assert phases.phase_done(judged(), "evaluate", 1)
    Manifest(tmp_path / "work" / "round-0", 0).mark("dev", reward=0.0)
    assert phases.phase_done(judged(), "evaluate", 0)  # the start is judged only against an outside reference
    assert not phases.phase_done(judged(reference={"name": "gpt-4o", "backend": "fake-judge", "model": "reference"}), "evaluate", 0)
