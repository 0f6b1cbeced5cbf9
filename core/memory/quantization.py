"""Which base-weight format a method trains on, and whether that combination exists.

QLoRA defaults to NF4 with double quantization (Dettmers et al. 2023); every other method to none. A quantized
base needs half-precision compute and a method that leaves the base weights frozen and that peft has a
bitsandbytes layer for (or that needs none: soft prompts).
"""

from __future__ import annotations

import importlib.util

from core.errors import NotApplicableError
from core.memory.setup import TrainingSetup
from core.registry import MethodChoice


def quantization(choice: MethodChoice, setup: TrainingSetup) -> str:
    """The base-weight format: the setup's, or for `auto` the method's own (NF4 + double quantization for QLoRA)."""
    if setup.quantization != "auto":
        return setup.quantization
    return "nf4-dq" if choice.spec.quantized_base else "none"


def check_quantization(choice: MethodChoice, setup: TrainingSetup) -> str:
    """The base-weight format, after checking the method can train on it (NotApplicableError otherwise)."""
    quant = quantization(choice, setup)
    if quant == "none":
        return quant
    label = "QLoRA" if choice.spec.quantized_base else f"a {quant} base"
    if setup.precision == "fp32":
        raise NotApplicableError(f"{label} computes in bf16/fp16 on a quantized base: use --precision bf16-mixed "
                                 "(or fp16-mixed), not fp32")
    if not choice.spec.is_peft:
        raise NotApplicableError(f"{choice.spec.name} trains base weights, which cannot sit on a {quant} base; "
                                 "use a PEFT method or --quantization none")
    if choice.spec.family == "soft-prompt":
        return quant
    tuner = type(choice.peft_config("CAUSAL_LM")).__module__.rsplit(".", 1)[0]
    if importlib.util.find_spec(f"{tuner}.bnb") is None:
        raise NotApplicableError(f"{choice.spec.name} cannot sit on a {quant} base: peft has no bitsandbytes layer "
                                 "for it; use lora, dora, adalora or ia3, or --quantization none")
    return quant
