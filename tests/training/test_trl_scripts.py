"""What TRL's own scripts (`trl reward`, `trl dpo`: trl.scripts.reward / trl.scripts.dpo, the CLI's mains) see in
the dataset's two configs, one training step each with a tiny model: `pairs` gives them the speech as the prompt;
`default` (the public release's string columns, kept release-compatible) has no column TRL reads as the prompt,
so the reward model trains on the answers alone and DPO gets no prompt. The dataset card says to pass
`--dataset_config pairs` for that reason (test_the_card_tells_trl_users_which_config)."""

from __future__ import annotations

import importlib

import pytest

from preference_data import CURT, SPEECH_WORDS, WARM

pytestmark = pytest.mark.timeout(900)
torch = pytest.importorskip("torch")
trl = pytest.importorskip("trl")

TRAINER = {"reward": "RewardTrainer", "dpo": "DPOTrainer"}
SEEN = {"reward": ("chosen_ids", "chosen_input_ids"), "dpo": ("prompt_ids", "prompt_input_ids")}  # where the speech
# would be, by TRL's current column name and its older one


def _ids(ds, names: tuple[str, ...]) -> list[list[int]]:
    """Each example's token ids in the first of `names` the tokenized dataset has (none: no such input)."""
    name = next((n for n in names if n in ds.column_names), None)
    return [list(ids) for ids in ds[name]] if name else [[] for _ in range(len(ds))]


def _run_script(script: str, config: str, base, repo, out, monkeypatch) -> object:
    """Run TRL's script main for one step on `config` and return the train dataset its trainer built."""
    module = importlib.import_module(f"trl.scripts.{script}")
    seen = []

    class Recording(getattr(trl, TRAINER[script])):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            seen.append(self.train_dataset)

    monkeypatch.setattr(trl, TRAINER[script], Recording)
    args = ["--model_name_or_path", str(base), "--dataset_name", str(repo), "--dataset_config", config,
            "--output_dir", str(out), "--max_steps", "1", "--per_device_train_batch_size", "2", "--use_cpu", "true",
            "--bf16", "false", "--report_to", "none", "--save_strategy", "no", "--logging_steps", "1",
            "--dataloader_num_workers", "0", "--disable_tqdm", "true", "--max_length", "128"]
    module.main(*module.make_parser().parse_args_and_config(args=args, fail_with_unknown_args=False))
    assert len(seen) == 1 and (out / "config.json").is_file()  # it trained and saved
    return seen[0]


@pytest.mark.parametrize("script", ["reward", "dpo"])
def test_trl_scripts_see_the_speech_only_in_the_pairs_config(script, tiny_base, pairs_repo, tmp_path, monkeypatch):
    from transformers import AutoTokenizer

    only_in_speeches = sorted(set(SPEECH_WORDS) - set(WARM) - set(CURT))  # words no answer uses
    speech_ids = set(AutoTokenizer.from_pretrained(tiny_base).convert_tokens_to_ids(only_in_speeches))
    tokens = {}
    for config in ("pairs", "default"):
        ds = _run_script(script, config, tiny_base, pairs_repo, tmp_path / config, monkeypatch)
        rows = _ids(ds, SEEN[script])
        with_speech = sum(bool(speech_ids & set(ids)) for ids in rows)
        tokens[config] = sum(len(ids) for ids in rows) / len(ds)
        if config == "pairs":
            assert with_speech == len(ds), f"trl {script} on pairs: the speech is missing from some examples"
        else:
            assert with_speech == 0, f"trl {script} on default: it now reads the speech; update the dataset card"
    if script == "reward":  # the reward model's inputs: speech + answer with pairs, the answer alone with default
        assert tokens["pairs"] > 2 * tokens["default"], tokens


def test_the_card_tells_trl_users_which_config(tmp_path):
    from importlib.resources import files

    card = files("hub_tools.cards").joinpath("dataset_card.md").read_text(encoding="utf-8")
    snippet = card.split("## How to load", 1)[1].split("## ", 1)[0]
    assert "--dataset_config pairs" in snippet and "`default`" in snippet and "prompt" in snippet
