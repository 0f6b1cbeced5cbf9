"""The Memory page's inputs and the words around them: the starting scenario, the knob defaults read from the
registry (one per method, compared at equal settings unless asked otherwise), where methods' settings differ,
and the one-line assumptions every figure depends on. Kept out of the page so the page only renders and the
start-up warm-up (app/warmup.py) can compute the page's default estimate ahead of the first visit.
"""

from __future__ import annotations

from typing import Any

from core.memory.setup import TrainingSetup
from core.registry import ADAPTER_DTYPES, KNOBS, METHODS, PEFT_DEFAULT, REFERENCE, MethodChoice, choices_for, method_ids

DEFAULT_METHODS = (REFERENCE, "lora", "qlora", "dora", "ia3", "prefix_tuning")
# The page's starting scenario; every other setting is TrainingSetup's own default.
START = TrainingSetup(batch_size=4, seq_len=1024, gpu="A100-80GB", dataset_tokens=50_000_000, epochs=3.0)
EQUAL, OWN = "equal", "own"
KNOB_MODES = {EQUAL: "Same settings for every method", OWN: "Each method's own defaults (as published)"}
KNOB_CHOICES: dict[str, tuple[str, ...]] = {"adapter_dtype": ADAPTER_DTYPES}
MAX_KNOB = 1_000_000
# (label, low, high) of the setup's number inputs; the same bounds check a link's values.
NUMBERS: dict[str, tuple[str, float, float]] = {
    "batch": ("Micro-batch per GPU", 1, 4096),
    "accumulation": ("Gradient accumulation steps", 1, 4096),
    "seq": ("Sequence length (tokens)", 1, 1_048_576),
    "gpus": ("GPUs", 1, 4096),
    "train_tokens": ("Training tokens (for time and cost)", 1, 10**13),
    "epochs": ("Epochs", 0.1, 1000.0),
    "mfu": ("Model-FLOPs utilisation (MFU, 0-1)", 0.01, 1.0),
}
# The setup fields behind the page's inputs, so engine messages name the page's labels, not CLI flags.
FIELD_LABELS = {
    "batch_size": NUMBERS["batch"][0], "accumulation": NUMBERS["accumulation"][0], "seq_len": NUMBERS["seq"][0],
    "gpus": NUMBERS["gpus"][0],
    "dataset_tokens": NUMBERS["train_tokens"][0], "epochs": NUMBERS["epochs"][0], "mfu": NUMBERS["mfu"][0],
    "precision": "Precision", "optimizer": "Optimizer", "attention": "Attention", "sharding": "Sharding",
    "offload": "Offload", "gpu": "GPU", "gpu_price": "Price ($ per GPU-hour)", "quantization": "Base quantization",
    "gradient_checkpointing": "Gradient checkpointing", "reentrant_checkpointing": "Reentrant checkpointing",
}


def knob_label(name: str) -> str:
    return name.replace("_", " ").capitalize()


LABELS = {"--" + f.replace("_", "-"): label for f, label in FIELD_LABELS.items()}
LABELS |= {knob.cli_flag: knob_label(name) for name, knob in KNOBS.items()}


def shared_default(name: str) -> Any:
    """The value a knob starts at when every method shares it: the registry default of the first method (in
    registry order) that takes it; None (each method derives it) where a method scales it from another knob."""
    if any(name in METHODS[m].scaled_defaults for m in method_ids()):
        return None
    return next(METHODS[m].defaults[name] for m in method_ids() if name in METHODS[m].defaults)


def shown(value: Any) -> str:
    if value is None or value == PEFT_DEFAULT:
        return "peft's default for the model"
    return ",".join(value) if isinstance(value, tuple) else f"{value:g}" if isinstance(value, float) else str(value)


def differences(ours: tuple[MethodChoice, ...], own: tuple[MethodChoice, ...]) -> list[str]:
    """Per method, the knobs where the compared settings differ from the method's registry defaults."""
    lines = []
    for mine, theirs in zip(ours, own, strict=True):
        changed = [f"{knob_label(k)} {shown(v)}" for k, v in theirs.knob_values().items()
                   if mine.knob_values()[k] != v]
        if changed:
            lines.append(f"{theirs.spec.name}: {', '.join(changed)}")
    return lines


def spread(own: tuple[MethodChoice, ...]) -> list[str]:
    """The knobs whose value differs between the compared methods, with each method's value."""
    lines = []
    for name in KNOBS:
        values = {c.spec.name: c.knob_values()[name] for c in own if name in c.spec.defaults}
        if len(set(map(shown, values.values()))) > 1:
            lines.append(f"{knob_label(name)}: " + ", ".join(f"{m} {shown(v)}" for m, v in values.items()))
    return lines


def assumptions(setup: TrainingSetup, choices: tuple[MethodChoice, ...]) -> str:
    """The settings every figure below depends on, in one line."""
    peft = [c for c in choices if c.spec.is_peft]
    full = [c for c in choices if not c.spec.is_peft]
    parts = []
    if peft:
        dtypes = sorted({c.adapter_dtype for c in peft if c.adapter_dtype})
        parts.append(f"PEFT methods on {setup.compute_dtype} base weights with {'/'.join(dtypes) or 'fp32'} "
                     f"adapters (base quantization: {setup.quantization}; auto = 4-bit NF4 for QLoRA)")
    if full:
        master = " with fp32 master weights" if setup.mixed else ""
        parts.append(f"{', '.join(c.spec.name for c in full)} in {setup.precision}{master}")
    kind = "reentrant" if setup.reentrant_checkpointing else "non-reentrant"
    ckpt = f"on ({kind}, about a third more compute)" if setup.gradient_checkpointing else "off"
    parts.append(f"micro-batch {setup.batch_size} x {setup.seq_len:,} tokens per GPU, {setup.accumulation} per "
                 f"optimizer step, gradient checkpointing {ckpt}, "
                 f"{setup.optimizer}, {setup.attention} attention, {setup.gpus} GPU(s), sharding {setup.sharding}, "
                 f"offload {setup.offload}")
    parts.append(f"time and cost: {setup.epochs:g} epoch(s) over {setup.dataset_tokens:,} tokens at "
                 f"{setup.mfu:.0%} MFU")
    return "Assumptions: " + "; ".join(parts) + "."


def default_choices() -> tuple[MethodChoice, ...]:
    """The methods the page opens with, at the equal settings it opens with (what the warm-up precomputes)."""
    return choices_for(DEFAULT_METHODS, **{name: shared_default(name) for name in KNOBS})
