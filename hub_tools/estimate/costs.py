"""GPU-hours and API dollars of a build, computed from its recipes and measured inputs:
`psycopref estimate RECIPE --costs [--inputs FILE]` (the command: `estimate/cli.py`;
without --costs it estimates peak memory per GPU, `estimate/memory.py`).

The inputs file (schema `CostInputs`, every number with its basis: measured by a named benchmark, or an
assumption) holds the build's size, tokens per prompt, answer and judged speech, GPU types (peak bf16
TFLOPS, price per hour), training efficiency (MFU) or measured throughputs, the serving throughput of
self-hosted models and the list prices of API models. From a recipe:

- dataset: the pool's answers (N speeches x members_per_speech x samples, shared evenly by the members: API
  members at their list price, self-hosted ones in GPU-hours at their serving throughput) and the judge per
  protocol, online and through the Batch API, at the recipe's own price table (`judge.prices`). The recipe's
  own protocol counts in the total; the others are listed beside it.
- reward model, DPO: tokens = pairs x epochs x 2 sequences x (prompt + answer) tokens; throughput per GPU =
  the measured one, else MFU x peak FLOP/s / FLOPs per token, with FLOPs per token from the recipe's parameter
  count N (its model built on the meta device, as for the memory estimate): 6N full fine-tuning, 4N with
  LoRA / QLoRA (no weight gradients for the frozen base), +2N recomputed under activation checkpointing, +2N
  for DPO's reference pass. GPU-hours = tokens / throughput / 3600; hours on the recipe's GPUs = GPU-hours / GPUs.
- DPO-Iter: each round samples speeches x samples answers (plus the dev answers) at the policy's serving
  throughput (scaled from the serving table's GPU to the recipe's by peak FLOP/s) and scores them with a reward model of the policy's size, on the main process while the job holds
  all its GPUs (billed as such), then trains DPO on one pair per speech.
- win-rate evaluation: the reference's and the policies' answers and the pairwise judge's calls.
- release: every artifact's recipe.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import Field

from ..config import RecipeError, Strict, find_recipe_file, load, load_any

INPUTS_FILE = "data/measured.yaml"  # the default inputs, inside this package (any install, any working dir)
PROTOCOLS = ("per_principle", "all_principles_keyed", "all_principles_compact")


class Based(Strict):
    """An input that says where its numbers come from."""

    basis: str = Field(..., description="Where the numbers come from: 'measured: <benchmark and date>', 'paper: <section>' or 'assumption: <why>'.")


class BuildSize(Based):
    """The build being costed (default: the paper's)."""

    speeches: int = Field(..., ge=1, description="Client speeches judged (paper: 26,483).")
    test_speeches: int = Field(..., ge=0, description="Speeches held out for the test split (paper: 3,291).")
    train_pairs: int = Field(..., ge=1, description="Train preference pairs (paper: 34,329).")
    helpsteer2_pairs: int | None = Field(None, ge=1, description="Usable HelpSteer2 preference pairs (single-turn, non-tie, train split): what a recipe's `data.helpsteer2.count: all` takes.")


class TokenSizes(Based):
    """Token counts of one model call's parts."""

    prompt: float = Field(..., gt=0, description="Responding Prompt around one speech, in tokens (what a pool member or policy reads; a training sequence's prompt).")
    answer: float = Field(..., gt=0, description="One answer of a pool member or policy, in tokens.")


class JudgeTokens(Based):
    """Judge tokens per speech (all of its calls) in one protocol."""

    prompt: float = Field(..., ge=0, description="Prompt tokens per speech.")
    completion: float = Field(..., ge=0, description="Completion tokens per speech.")


class GpuType(Based):
    """A GPU a recipe's `hardware.device` names."""

    name: str = Field(..., description="Name in the tables, e.g. 'A100 80GB'.")
    match: list[str] = Field(..., min_length=1, description="Substrings of hardware.device that mean this GPU (first type matching wins).")
    peak_tflops: float = Field(..., gt=0, description="Dense bf16 tensor TFLOP/s (datasheet).")
    usd_per_hour: float = Field(..., ge=0, description="Price of one GPU for one hour.")


class TrainingSpeed(Based):
    """How fast training and scoring run on a GPU."""

    mfu: dict[str, float] = Field(..., description="Model FLOPs utilisation by method (full, lora, qlora) and for reward-model scoring (scoring).")
    tokens_per_s: dict[str, float] = Field(default_factory=dict, description="Measured training tokens/s per GPU by recipe (path under recipes/, e.g. llama-3.1-8b-instruct/reward/config_full.yaml); replaces the MFU estimate.")


class Serving(Based):
    """One self-hosted model behind vLLM or TGI."""

    tokens_per_s: float = Field(..., gt=0, description="Generated tokens/s of one replica at full batch.")
    gpus: int = Field(1, ge=1, description="GPUs of one replica (tensor parallel).")
    gpu: str = Field(..., description="GpuType name it runs on (its price).")


class ServingTable(Strict):
    default: Serving = Field(..., description="Any self-hosted model not listed in models.")
    models: dict[str, Serving] = Field(default_factory=dict, description="By model id (a pool member's `model`, a policy's base model).")


class ApiPrice(Based):
    prompt_per_1m: float = Field(..., ge=0, description="USD per million prompt tokens.")
    completion_per_1m: float = Field(..., ge=0, description="USD per million completion tokens.")


class CostInputs(Strict):
    """Everything the cost estimate assumes or measured, in one file."""

    build: BuildSize = Field(..., description="Size of the build.")
    tokens: TokenSizes = Field(..., description="Prompt and answer lengths.")
    judge: dict[str, JudgeTokens] = Field(..., description=f"Judge tokens per speech by protocol: {', '.join(PROTOCOLS)}.")
    gpus: list[GpuType] = Field(..., min_length=1, description="GPU types, matched against hardware.device in order.")
    training: TrainingSpeed = Field(..., description="Training and scoring speed.")
    serving: ServingTable = Field(..., description="Self-hosted generation throughput.")
    api_prices: dict[str, ApiPrice] = Field(default_factory=dict, description="List prices of API models by model id (pool members; the judge uses its recipe's judge.prices).")


@dataclass
class CostLine:
    """One row: what is paid for, how much of it, and its GPU-hours, hours on the recipe's GPUs and dollars."""

    recipe: str
    item: str
    quantity: str
    gpu_hours: float | None = None
    hours: float | None = None
    usd: float | None = None
    counted: bool = True  # False: an alternative shown beside the recipe's choice, not in the total


def default_inputs() -> Path:
    """The inputs shipped with the package (`hub_tools/estimate/data/measured.yaml`)."""
    from importlib import resources

    return Path(str(resources.files("hub_tools.estimate").joinpath(INPUTS_FILE)))


def load_inputs(path: str | Path | None = None) -> CostInputs:
    """The cost inputs of `path`, by default the packaged ones."""
    return load(CostInputs, path or default_inputs())


def gpu_type(device: str, inputs: CostInputs, source: str = "inputs") -> GpuType:
    for gpu in inputs.gpus:
        if any(m.lower() in device.lower() for m in gpu.match):
            return gpu
    raise RecipeError(f"{source}: no GPU type of gpus[] matches hardware.device {device!r}; add one")


def _gpu_named(name: str, inputs: CostInputs) -> GpuType:
    found = [g for g in inputs.gpus if g.name == name]
    if not found:
        raise RecipeError(f"serving: gpu {name!r} is not one of gpus[].name ({', '.join(g.name for g in inputs.gpus)})")
    return found[0]


def dataset_lines(name: str, recipe, inputs: CostInputs, speeches: int | None = None) -> list[CostLine]:
    """The pool's answers and the judge's calls of a dataset recipe."""
    n = speeches or inputs.build.speeches
    tok, lines = inputs.tokens, []
    gen = recipe.generate
    if gen is not None:
        share = n * gen.members_per_speech * gen.samples_per_member / len(gen.pool)
        api = [m for m in gen.pool if m.model in inputs.api_prices]
        hosted = [m for m in gen.pool if m.model not in inputs.api_prices]
        usd = sum(share * (tok.prompt * p.prompt_per_1m + tok.answer * p.completion_per_1m) / 1e6
                  for p in (inputs.api_prices[m.model] for m in api))
        lines.append(CostLine(name, f"pool answers, {len(api)} API models", f"{share * len(api):,.0f} answers", usd=usd))
        gpu_h = usd = 0.0
        for m in hosted:
            s = inputs.serving.models.get(m.model, inputs.serving.default)
            hours = share * tok.answer / s.tokens_per_s / 3600
            gpu_h += hours * s.gpus
            usd += hours * s.gpus * _gpu_named(s.gpu, inputs).usd_per_hour
        lines.append(CostLine(name, f"pool answers, {len(hosted)} self-hosted models (vLLM/TGI)",
                              f"{share * len(hosted):,.0f} answers x {tok.answer:,.0f} tokens", gpu_h, None, usd))
    if recipe.judge is not None:
        j = recipe.judge
        own = "per_principle" if j.mode == "per_principle" else "all_principles_compact" if j.compact else "all_principles_keyed"
        for key in PROTOCOLS:
            t = inputs.judge.get(key)
            if t is None:
                continue
            for batch in (False, True):
                lines.append(CostLine(name, f"judge {j.endpoint.model}, {key}{' (recipe)' if key == own else ''}, "
                                            f"{'Batch API' if batch else 'online'}",
                                      f"{n:,} speeches x {t.prompt:,.0f} + {t.completion:,.0f} tokens",
                                      usd=n * j.prices.cost(t.prompt, t.completion, batch=batch),
                                      counted=key == own and batch == j.batch))
    return lines


def eval_lines(name: str, recipe, inputs: CostInputs) -> list[CostLine]:
    """A win-rate evaluation: the reference's and every policy's answers (API at list price, else self-hosted
    GPU-hours) and the pairwise judge, two calls per speech, policy and setting at the recipe's `judge.prices`.
    A judge call reads the Pairwise Prompt around the speech and two answers (template characters at 4 per token
    plus the inputs' prompt and answer tokens) and writes a verdict (~8 tokens) after its reason, when asked."""
    from ..paper.prompts import pairwise_template

    n, tok = recipe.speeches.limit or inputs.build.test_speeches, inputs.tokens
    lines = []
    for who, count in [(recipe.reference, n)] + [(p, n * len(recipe.settings)) for p in recipe.policies]:
        price = inputs.api_prices.get(who.model)
        if price is not None:
            lines.append(CostLine(name, f"answers, {who.name} (API)", f"{count:,} answers",
                                  usd=count * (tok.prompt * price.prompt_per_1m + tok.answer * price.completion_per_1m) / 1e6))
            continue
        s = inputs.serving.models.get(who.model, inputs.serving.default)
        gpu_h = count * tok.answer / s.tokens_per_s / 3600 * s.gpus
        lines.append(CostLine(name, f"answers, {who.name} (self-hosted)", f"{count:,} answers x {tok.answer:,.0f} tokens",
                              gpu_h, gpu_h / s.gpus, gpu_h * _gpu_named(s.gpu, inputs).usd_per_hour))
    j = recipe.judge
    calls = 2 * n * len(recipe.settings) * len(recipe.policies)
    prompt = len(pairwise_template(bool(j.reason_max_chars))) / 4 + tok.prompt + 2 * tok.answer
    completion = 8 + (j.reason_max_chars or 0) / 4
    lines.append(CostLine(name, f"judge {j.endpoint.model}, pairwise, both orders", f"{calls:,} calls x {prompt:,.0f} + "
                          f"{completion:,.0f} tokens", usd=calls * j.prices.cost(prompt, completion)))
    return lines


def _train_pairs(recipe, inputs: CostInputs) -> float:
    d = recipe.data
    pairs = d.max_train_pairs if d.max_train_pairs is not None else inputs.build.train_pairs * (1 - d.dev_fraction)
    hs = d.helpsteer2
    if hs is None:
        return pairs
    if hs.count == "all" and inputs.build.helpsteer2_pairs is None:
        raise RecipeError("data.helpsteer2.count: 'all' needs build.helpsteer2_pairs in the cost inputs")
    return pairs + (inputs.build.helpsteer2_pairs if hs.count == "all" else hs.count or hs.ratio * pairs)


def training_lines(name: str, recipe, inputs: CostInputs, recipe_key: str = "") -> list[CostLine]:
    """GPU-hours of a reward, DPO or DPO-Iter recipe on the hardware it states."""
    from .memory import estimate

    plan = recipe.memory_plan()
    n_params = estimate(plan).params
    t, hw, tok = recipe.training, recipe.hardware, inputs.tokens
    gpu = gpu_type(hw.device, inputs, name)
    method = recipe.model.method
    dpo = hasattr(recipe, "dpo_config")  # DPO and DPO-Iter: a frozen reference pass per token
    flops = ((6 if method == "full" else 4) + (2 if plan.checkpointing else 0)
             + (2 if dpo and not t.precompute_ref_log_probs else 0)) * n_params
    speed = inputs.training.tokens_per_s.get(recipe_key) or inputs.training.mfu[method] * gpu.peak_tflops * 1e12 / flops
    seq = tok.prompt + tok.answer
    lines = []
    if hasattr(recipe, "iter"):  # DPO-Iter: its rounds sample and score before they train
        it = recipe.iter
        dev = it.dev_limit or (inputs.build.speeches - inputs.build.test_speeches) * it.dev_fraction
        answers = it.rounds * (it.speeches_per_round * it.generation.samples + dev)
        length = min(tok.answer, it.generation.params.get("max_tokens") or tok.answer)
        s = inputs.serving.models.get(recipe.model.base_hub_id or "", inputs.serving.default)
        speed_here = s.tokens_per_s * gpu.peak_tflops / _gpu_named(s.gpu, inputs).peak_tflops  # on the recipe's GPU
        wall = answers * length / speed_here / 3600
        lines.append(CostLine(name, "sampling (main process, all GPUs held)",
                              f"{answers:,.0f} answers x {length:,.0f} tokens, {speed_here:,.0f} tokens/s", wall * hw.gpus,
                              wall, wall * hw.gpus * gpu.usd_per_hour))
        score = answers * seq * 2 * n_params / (inputs.training.mfu["scoring"] * gpu.peak_tflops * 1e12) / 3600
        lines.append(CostLine(name, "reward scoring (main process, all GPUs held)", f"{answers:,.0f} answers x {seq:,.0f} tokens",
                              score * hw.gpus, score, score * hw.gpus * gpu.usd_per_hour))
        pairs, epochs = it.rounds * it.speeches_per_round, t.num_train_epochs
    else:
        pairs = _train_pairs(recipe, inputs)
        epochs = t.max_steps * recipe.effective_batch_size / pairs if t.max_steps and t.max_steps > 0 else t.num_train_epochs
    tokens = pairs * epochs * 2 * seq
    gpu_h = tokens / speed / 3600
    what = f"{pairs:,.0f} pairs x {epochs:g} epoch{'' if epochs == 1 else 's'} x 2 x {seq:,.0f} tokens, {speed:,.0f} tokens/s/GPU"
    lines.append(CostLine(name, f"training ({method}, {hw.gpus} x {gpu.name})", what, gpu_h, gpu_h / hw.gpus,
                          gpu_h * gpu.usd_per_hour))
    return lines


def recipe_lines(path: str | Path, inputs: CostInputs, overrides: dict | None = None, kind: str | None = None,
                 speeches: int | None = None, name: str | None = None) -> list[CostLine]:
    """The cost lines of any recipe: a dataset, a trained model, or a release (every artifact's recipe)."""
    from ..config import recipe_kind

    kind = kind or recipe_kind(path)
    recipe = load_any(path, overrides, kind)
    name = name or Path(path).parent.parent.name + "/" + Path(path).stem.removeprefix("config_")
    if kind == "release":
        return [line for a in recipe.artifacts if a.kind != "space"
                for line in recipe_lines(find_recipe_file(a.recipe), inputs, a.overrides, a.kind, speeches, a.name)]
    if kind == "dataset":
        return dataset_lines(name, recipe, inputs, speeches)
    if kind == "eval":
        return eval_lines(name, recipe, inputs)
    if not hasattr(recipe, "memory_plan"):
        raise RecipeError(f"{path}: a {type(recipe).__name__} has no costs to estimate")
    key = "/".join(Path(path).resolve().parts[-3:])
    return training_lines(name, recipe, inputs, key)


def _num(x: float | None, fmt: str) -> str:
    return "-" if x is None else format(x, fmt)


def cost_table(lines: list[CostLine], inputs: CostInputs, inputs_path: str | Path) -> str:
    """Markdown: one row per line, the total of the counted ones, then every input with its basis."""
    out = ["| recipe | item | quantity | GPU-hours | hours on its GPUs | USD |", "|---|---|---|---:|---:|---:|"]
    for c in lines:
        mark = "" if c.counted else " (alternative, not in the total)"
        out.append(f"| {c.recipe} | {c.item}{mark} | {c.quantity} | {_num(c.gpu_hours, ',.1f')} | {_num(c.hours, ',.1f')} | "
                   f"{_num(c.usd, ',.0f')} |")
    counted = [c for c in lines if c.counted]
    out.append(f"| **total** | | | **{sum(c.gpu_hours or 0 for c in counted):,.0f}** | | "
               f"**{sum(c.usd or 0 for c in counted):,.0f}** |")
    out += ["", f"Inputs ({inputs_path}):", ""]
    out += [f"- {label}: {basis}" for label, basis in _bases(inputs)]
    return "\n".join(out)


def _bases(inputs: CostInputs) -> list[tuple[str, str]]:
    rows: list[tuple[str, Any]] = [("build size", inputs.build.basis), ("prompt and answer tokens", inputs.tokens.basis)]
    rows += [(f"judge tokens, {k}", v.basis) for k, v in inputs.judge.items()]
    rows += [(f"GPU {g.name} ({g.peak_tflops:g} TFLOP/s, ${g.usd_per_hour:g}/h)", g.basis) for g in inputs.gpus]
    rows.append(("training speed (MFU " + ", ".join(f"{k} {v:g}" for k, v in inputs.training.mfu.items()) + ")",
                 inputs.training.basis))
    rows.append((f"serving, default ({inputs.serving.default.tokens_per_s:g} tokens/s)", inputs.serving.default.basis))
    rows += [(f"serving, {k}", v.basis) for k, v in inputs.serving.models.items()]
    rows += [(f"API price, {k}", v.basis) for k, v in inputs.api_prices.items()]
    return rows
