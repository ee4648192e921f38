"""Card rows every trained model shares: base, method, LoRA, epochs, batch, learning rate, optimizer,
precision, steps, loss, hardware and seeds, from the recipe's sections and the run's report."""

from __future__ import annotations

from typing import Any

METHODS = {"full": "full fine-tuning", "lora": "LoRA adapters, merged into the base",
           "qlora": "QLoRA: LoRA adapters on a 4-bit NF4 base, merged into the unquantised base"}  # model.method -> card text


def training_rows(m, t, hw, train: dict[str, Any], seed: int,
                  head: list[tuple[str, str]] = (), tail: list[tuple[str, str]] = ()) -> list[dict[str, str]]:
    """(name, value) rows of a card's training table; `m` model section, `t` TRL config section, `hw`
    hardware section, `train` the run's report; `head` rows follow the method, `tail` rows the precision."""
    value = lambda v: str(getattr(v, "value", v))  # noqa: E731  enums (optim, schedulers) by their value
    rows = [("Base model", f"`{m.base_hub_id}`"), ("Method", METHODS[m.method]), *head]
    if m.lora is not None:
        lora = m.lora
        targets = lora.target_modules if isinstance(lora.target_modules, str) else ", ".join(sorted(lora.target_modules or []))
        rows.append(("LoRA", f"r = {lora.r}, alpha = {lora.lora_alpha}, dropout = {lora.lora_dropout}, targets: {targets}"
                     + (f", layers {lora.layers_to_transform}" if lora.layers_to_transform is not None else "")))
    epochs = f"{t.num_train_epochs:g}" if not t.max_steps or t.max_steps < 0 else \
        f"{train['epochs']:g} (set by max_steps = {t.max_steps})"
    processes = f"{train['processes']} process" + ("es" if train["processes"] > 1 else "")
    rows += [
        ("Epochs", epochs),
        ("Effective batch size", f"{train['effective_batch_size']} pairs ({t.per_device_train_batch_size} per device x "
                                 f"{t.gradient_accumulation_steps} accumulation x {processes})"),
        ("Learning rate", f"{t.learning_rate:g}, {value(t.lr_scheduler_type)} schedule, warmup "
         + (f"{t.warmup_steps:.0%} of the steps" if 0 < t.warmup_steps < 1 else f"{t.warmup_steps:g} steps")),
        ("Optimizer", f"{value(t.optim)}, weight decay {t.weight_decay:g}"),
        ("Precision", ("bf16 mixed precision" if t.bf16 in (True, None) and not t.fp16 else "fp16 mixed precision" if t.fp16
                       else "fp32") + f"; weights held in {m.dtype}" + (", base in 4-bit NF4" if m.quantization else "")
         + f"; published in {m.save_dtype}"),
        *tail,
        ("Optimizer steps", f"{train['global_step']:,}"),
        ("Final training loss", f"{train['train_loss']:.4f}"),
        ("Hardware", f"{hw.gpus} x {hw.device}" + (f", launched with `{hw.accelerate_config}`" if hw.accelerate_config else "")),
        ("Seed", f"{t.seed} (trainer), {seed} (data splits)"),
    ]
    return [{"name": k, "value": v} for k, v in rows]


