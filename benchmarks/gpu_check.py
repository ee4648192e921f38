"""The GPU check: what no CPU run can measure, in one script that fits in 8 minutes on one GPU.

For the reward-model and DPO recipes of the 3B (full training) and 8B (LoRA; QLoRA too when bitsandbytes
imports) models, it trains a few steps with the recipe's own TRL config, batch and sequence length, through
the toolkit's own loaders (`load_reward_model`, `load_policy_model`) and TRL's trainers, on random weights
built from the Llama configs the package ships (nothing is downloaded: the GPU machine may have no network),
and records the real peak memory and seconds per step beside `psycopref estimate`'s prediction for the same
single-GPU plan, with their ratio. When vLLM imports, it also measures generation throughput through the
toolkit's `vllm` backend (`chat_many`, the batched path the stages use). Writes `gpu_check.json` and
`gpu_check.md` (a markdown table) into `--out`.

    python benchmarks/gpu_check.py                  # on a GPU machine: the real recipes (about 6-8 minutes)
    python benchmarks/gpu_check.py --tiny           # the same code on CPU with tiny configs (under 2 minutes)

Memory compared: `torch.cuda.max_memory_reserved()` (what the caching allocator took) against the estimate
less its 1 GiB CUDA-context line (the context is not in the allocator's count). On CPU (`--tiny`) there is no
device memory to read: the memory columns are empty and only seconds per step and the estimate are reported.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from hub_tools.config import load_any  # noqa: E402
from hub_tools.estimate.memory import CUDA_OVERHEAD, GIB, estimate  # noqa: E402

CHAT_TEMPLATE = ("{% for m in messages %}<|{{ m['role'] }}|> {{ m['content'] }} <|eot|> {% endfor %}"
                 "{% if add_generation_prompt %}<|assistant|> {% endif %}")
# (name, recipe, kind, overrides): the 3B recipes train every weight; the 8B QLoRA recipes without
# quantization are the 8B LoRA runs (bf16 base), and as written the QLoRA ones.
CASES = [
    ("reward-3b-full", "recipes/llama-3.2-3b-instruct/reward/config_full.yaml", "reward", {}),
    ("dpo-3b-full", "recipes/llama-3.2-3b-instruct/dpo/config_full.yaml", "dpo", {}),
    ("reward-8b-lora", "recipes/llama-3.1-8b-instruct/reward/config_qlora.yaml", "reward", {"model": {"quantization": None}}),
    ("dpo-8b-lora", "recipes/llama-3.1-8b-instruct/dpo/config_qlora.yaml", "dpo", {"model": {"quantization": None}}),
    ("reward-8b-qlora", "recipes/llama-3.1-8b-instruct/reward/config_qlora.yaml", "reward", {}),
    ("dpo-8b-qlora", "recipes/llama-3.1-8b-instruct/dpo/config_qlora.yaml", "dpo", {}),
]
TINY = {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
        "num_key_value_heads": 2, "vocab_size": 512, "max_position_embeddings": 256}


def imports(name: str) -> bool:
    try:
        __import__(name)
        return True
    except Exception:  # noqa: BLE001  (a broken install counts as absent)
        return False


def word_tokenizer(vocab_size: int):
    """A word-level tokenizer with a chat template: one token per word `w<i>`, so lengths are exact."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    special = ["<pad>", "<s>", "<|eot|>", "<unk>", "<|user|>", "<|assistant|>", "<|system|>"]
    words = special + [f"w{i}" for i in range(min(vocab_size, 4096) - len(special))]
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="<|eot|>", pad_token="<pad>",
                                   unk_token="<unk>")
    fast.chat_template = CHAT_TEMPLATE
    return fast, len(words)


def random_model(model_id: str, folder: Path, tiny: bool, device: str) -> Path:
    """A causal LM with random weights from the shipped config of `model_id` (or a tiny one), saved with a
    word-level tokenizer into `folder`, as a local base model the recipes can name."""
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig

    from hub_tools.serving.models import model_config

    config = LlamaConfig(**TINY) if tiny else model_config(model_id)
    tokenizer, _ = word_tokenizer(config.vocab_size)
    config.pad_token_id, config.bos_token_id, config.eos_token_id = 0, 1, 2
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32 if tiny else torch.bfloat16)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    del model
    gc.collect()
    return folder


def pairs(n: int, seq_len: int, vocab: int, seed: int = 0):
    """n conversational pairs whose prompt + answer fill `seq_len` tokens (the recipe's max length)."""
    from datasets import Dataset

    rng = random.Random(seed)

    def words(k: int) -> str:
        return " ".join(f"w{rng.randrange(vocab - 7)}" for _ in range(k))

    half = max(4, seq_len // 2 - 8)
    return Dataset.from_list([{"prompt": [{"role": "user", "content": words(half)}],
                               "chosen": [{"role": "assistant", "content": words(half)}],
                               "rejected": [{"role": "assistant", "content": words(half)}]} for _ in range(n)])


class StepTimer:
    """A TrainerCallback recording the wall time of every optimizer step."""

    def __init__(self):
        from transformers import TrainerCallback

        timer = self

        class _Callback(TrainerCallback):
            def on_step_begin(self, args, state, control, **kwargs):
                timer.start = time.perf_counter()

            def on_step_end(self, args, state, control, **kwargs):
                _sync()
                timer.steps.append(time.perf_counter() - timer.start)

        self.steps: list[float] = []
        self.start = 0.0
        self.callback = _Callback()


def _sync() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def run_case(name: str, recipe_path: str, kind: str, overrides: dict, base: Path, tiny: bool, steps: int,
             work: Path) -> dict:
    """A few training steps of one recipe on the random base: seconds per step, peak memory, the estimate."""
    import torch

    from hub_tools.policy.modeling import load_policy_model
    from hub_tools.reward.modeling import load_reward_model
    from hub_tools.training.modeling import load_tokenizer

    over = {**overrides, "work_dir": str(work / name), "model": {**overrides.get("model", {}), "name_or_path": str(base)}}
    if tiny:  # CPU: full precision, small batches and sequences, no checkpointing
        over["model"].update(dtype="float32", attn_implementation=None)
        over["training"] = {"per_device_train_batch_size": 2, "gradient_accumulation_steps": 1, "max_length": 64,
                            "bf16": False, "use_cpu": True, "gradient_checkpointing": False}
    recipe = load_any(REPO / recipe_path, over, kind=kind)
    if recipe.model.quantization and not torch.cuda.is_available():
        over["model"]["quantization"] = None  # 4-bit needs bitsandbytes' GPU kernels to mean anything
        recipe = load_any(REPO / recipe_path, over, kind=kind)
    plan = recipe.memory_plan().__class__(**{**recipe.memory_plan().__dict__, "devices": 1, "sharding": "none"})
    predicted = estimate(plan)
    train = recipe.training
    n = train.per_device_train_batch_size * train.gradient_accumulation_steps * (steps + 1)
    data = pairs(n, train.max_length or 1024, 4096 if not tiny else TINY["vocab_size"])
    tokenizer = load_tokenizer(str(base))
    timer = StepTimer()
    values = {"output_dir": str(work / name / "trainer"), "max_steps": steps + 1, "save_strategy": "no",
              "report_to": "none", "logging_steps": 1, "eval_strategy": "no"}
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    peft = recipe.model.lora.build() if recipe.model.lora else None
    if kind == "reward":
        from trl import RewardTrainer

        model = load_reward_model(recipe, str(base), tokenizer.pad_token_id)
        trainer = RewardTrainer(model=model, args=recipe.reward_config(**values), train_dataset=data,
                                processing_class=tokenizer, peft_config=peft, callbacks=[timer.callback])
    else:
        from trl import DPOTrainer

        model = load_policy_model(recipe.model, str(base))
        trainer = DPOTrainer(model=model, args=recipe.dpo_config(**values), train_dataset=data,
                             processing_class=tokenizer, peft_config=peft, callbacks=[timer.callback])
    trainer.train()
    peak = torch.cuda.max_memory_reserved() / GIB if torch.cuda.is_available() else None
    del trainer, model
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    timed = timer.steps[1:] or timer.steps  # the first step warms kernels and the allocator up
    expected = (predicted.total - CUDA_OVERHEAD) / GIB
    return {"case": name, "recipe": recipe_path, "method": ("qlora" if plan.quantization else "lora" if plan.lora is not None
                                                            else "full"),
            "sequences": plan.sequences, "seq_len": plan.seq_len, "checkpointing": plan.checkpointing,
            "accumulation": train.gradient_accumulation_steps, "steps_timed": len(timed),
            "seconds_per_step": sum(timed) / len(timed), "peak_gib": peak, "estimate_gib": expected,
            "ratio": None if peak is None else peak / expected}


def generation(base: Path, tiny: bool) -> dict | None:
    """Completion tokens per second through the toolkit's in-process vLLM backend (None without vLLM)."""
    if not imports("vllm"):
        return None
    from hub_tools.config import Endpoint
    from hub_tools.serving import ChatRequest, make_backend

    params = {"max_tokens": 32 if tiny else 256, "temperature": 1.0, "seed": 0, "gpu_memory_utilization": 0.5}
    backend = make_backend(Endpoint(backend="vllm", model=str(base), params=params))
    rng = random.Random(1)
    requests = [ChatRequest([{"role": "user", "content": " ".join(f"w{rng.randrange(4000)}" for _ in range(120))}],
                            {**params, "seed": i}) for i in range(16 if tiny else 512)]
    start = time.perf_counter()
    done = backend.chat_many(requests)
    seconds = time.perf_counter() - start
    backend.close()
    tokens = sum(c.completion_tokens for c in done)
    return {"requests": len(requests), "completion_tokens": tokens, "seconds": seconds, "tokens_per_s": tokens / seconds}


def markdown(result: dict) -> str:
    head = ("| case | method | seqs x len | accumulation | s / step | peak GiB (measured) | estimate GiB | ratio |\n"
            "|---|---|---|---:|---:|---:|---:|---:|")
    rows = [f"| {r['case']} | {r['method']}{', ckpt' if r['checkpointing'] else ''} | {r['sequences']} x {r['seq_len']} | "
            f"{r['accumulation']} | {r['seconds_per_step']:.2f} | "
            f"{'-' if r['peak_gib'] is None else format(r['peak_gib'], '.2f')} | {r['estimate_gib']:.2f} | "
            f"{'-' if r['ratio'] is None else format(r['ratio'], '.2f')} |" for r in result["training"]]
    gen = result["generation"]
    tail = ("\n\nGeneration (vLLM backend): " + (f"{gen['tokens_per_s']:,.0f} completion tokens/s ({gen['requests']} "
            f"requests, {gen['completion_tokens']:,} tokens in {gen['seconds']:.1f} s)" if gen else "vLLM not installed"))
    return f"{result['device']}\n\n" + "\n".join([head, *rows]) + tail + "\n"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="CPU, tiny configs: the same code in under 2 minutes")
    parser.add_argument("--out", default=str(REPO / "benchmarks"), help="folder for gpu_check.json and gpu_check.md")
    parser.add_argument("--steps", type=int, default=3, help="timed steps per case (after one warm-up step)")
    parser.add_argument("--only", nargs="*", default=None, help="case names to run (default: all that apply)")
    args = parser.parse_args(argv)
    import torch

    cuda = torch.cuda.is_available()
    device = torch.cuda.get_device_name(0) if cuda else "CPU (no GPU)"
    quantized = cuda and imports("bitsandbytes")
    cases = [c for c in CASES if (args.only is None or c[0] in args.only) and ("qlora" not in c[0] or quantized)]
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as tmp:
        work, bases, rows = Path(tmp), {}, []
        for name, recipe_path, kind, overrides in cases:
            model_id = load_any(REPO / recipe_path, {}, kind=kind).model.name_or_path
            if model_id not in bases:
                bases[model_id] = random_model(model_id, work / model_id.replace("/", "__"), args.tiny,
                                               "cuda" if cuda else "cpu")
            rows.append(run_case(name, recipe_path, kind, overrides, bases[model_id], args.tiny, args.steps, work))
            print(f"{name}: {rows[-1]['seconds_per_step']:.2f} s/step, peak {rows[-1]['peak_gib']} GiB, "
                  f"estimate {rows[-1]['estimate_gib']:.2f} GiB", flush=True)
        first = next(iter(bases.values()))
        result = {"device": device, "tiny": args.tiny, "torch": torch.__version__, "training": rows,
                  "generation": generation(first, args.tiny)}
    result["seconds"] = time.perf_counter() - start
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "gpu_check.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    (out / "gpu_check.md").write_text(markdown(result), encoding="utf-8")
    print(markdown(result))
    return result


if __name__ == "__main__":
    main()
