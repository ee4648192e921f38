"""benchmarks/gpu_check.py --tiny: the GPU check's own code on CPU with tiny configs, end to end (the recipes'
TRL configs, the toolkit's loaders, TRL's trainers, the estimator), writing its JSON and markdown table."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytest.importorskip("trl")


def test_gpu_check_tiny_runs_every_cpu_case_and_writes_its_tables(tmp_path):
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / "gpu_check.py"), "--tiny", "--steps", "1",
                           "--out", str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads((tmp_path / "gpu_check.json").read_text())
    assert result["tiny"] is True and result["device"] == "CPU (no GPU)"
    cases = {r["case"]: r for r in result["training"]}
    assert set(cases) == {"reward-3b-full", "dpo-3b-full", "reward-8b-lora", "dpo-8b-lora"}  # QLoRA needs a GPU
    assert cases["dpo-3b-full"]["method"] == "full" and cases["dpo-8b-lora"]["method"] == "lora"
    for row in cases.values():
        assert row["seconds_per_step"] > 0 and row["steps_timed"] == 1
        assert row["estimate_gib"] > 0 and row["peak_gib"] is None and row["ratio"] is None  # no device memory on CPU
        assert row["seq_len"] == 64 and row["sequences"] == 4
    # DPO with full training holds the frozen reference copy: the estimate says more than for the reward model
    assert cases["dpo-3b-full"]["estimate_gib"] > cases["reward-3b-full"]["estimate_gib"]
    table = (tmp_path / "gpu_check.md").read_text()
    assert table.count("\n| ") == 5 and "| dpo-8b-lora | lora" in table
    if result["generation"] is None:
        assert "vLLM not installed" in table
