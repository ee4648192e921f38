"""Helpers of the reward-model tests: a small CPU-only reward recipe, and a fake ranking backend
registered as `fake-ranker` (the preference pairs are in tests/helpers/preference_data.py)."""

from __future__ import annotations

import json
from pathlib import Path

from hub_tools.serving import Backend, Completion, register_backend

from preference_data import CURT, WARM


def recipe_data(tiny_base: Path, pairs_repo: Path, work_dir: Path, **sections) -> dict:
    """A reward recipe for the fixtures, small and CPU-only; `sections` are merged in one level deep."""
    data = {
        "work_dir": str(work_dir),
        "model": {"name_or_path": str(tiny_base), "hub_id": "test-org/tiny-llama", "dtype": "float32",
                  "save_dtype": "float32"},
        "data": {"path": str(pairs_repo), "config": "pairs", "dev_fraction": 0.25},
        "training": {"use_cpu": True, "bf16": False, "activation_checkpointing": False, "report_to": "none",
                     "num_train_epochs": 1, "max_steps": 15, "per_device_train_batch_size": 8, "learning_rate": 5e-3,
                     "lr_scheduler_type": "constant", "logging_steps": 1, "save_strategy": "no",
                     "dataloader_num_workers": 0, "disable_tqdm": True, "seed": 0},
        "eval": {"batch_size": 8, "max_batch_tokens": 512},
        "push": {"hub_dir": str(work_dir.parent / "hub")},
        "card": {"base_license": "apache-2.0"},  # the tiny base has no card saying it
    }
    for key, value in sections.items():
        data[key] = {**data.get(key, {}), **value} if isinstance(value, dict) else value
    return data


# --- a ranking model that reads the LLM-as-Ranker Prompt ---------------------------------------------------

class RankerScript:
    """How the fake ranker answers (`mode`) and every prompt it was sent."""

    def __init__(self) -> None:
        self.mode, self.calls = "content", []


RANKER = RankerScript()


@register_backend("fake-ranker")
class FakeRanker(Backend):
    """content: picks the warm response wherever it is; first: always "1" (position bias);
    fenced: the content verdict inside a ```json fence; garbage: no JSON at all."""

    name = "fake-ranker"
    supports_json_schema = True

    def chat(self, messages, params, json_schema=None):
        prompt = messages[-1]["content"]
        RANKER.calls.append({"prompt": prompt, "schema": json_schema})
        first = prompt.split("Response 1: ", 1)[1].split("\n\nResponse 2: ", 1)[0]
        better = 1 if set(first.split()) & set(WARM) - set(CURT) else 2
        text = {"content": json.dumps({"better": better}), "first": '{"better": 1}',
                "fenced": f"Sure.\n```json\n{{\"better\": {better}}}\n```", "garbage": "Response 1, clearly."}[RANKER.mode]
        return Completion(text, prompt_tokens=len(prompt) // 4, completion_tokens=5)

    def close(self):
        pass
