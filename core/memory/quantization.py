"""Which base-weight format a method trains on, and whether that combination exists.

QLoRA defaults to NF4 with double quantization (Dettmers et al. 2023); every other method to none. A quantized
base needs half-precision compute and a method that leaves the base weights frozen and that peft has a
bitsandbytes layer for (or that needs none: soft prompts). Whether peft has one is asked of peft once per
method and peft version and kept in the disk cache (`core.memory.cache`): asking imports peft.
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path

from core import registry
from core.counting import model_shape
from core.errors import NotApplicableError
from core.memory import cache
from core.memory.setup import TrainingSetup
from core.registry import MethodChoice
from core.skeleton_key import SkeletonKey
from core.units import human_bytes


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
    if not _has_bnb_layer(choice):
        raise NotApplicableError(f"{choice.spec.name} cannot sit on a {quant} base: peft has no bitsandbytes layer "
                                 "for it; use lora, dora, adalora or ia3, or --quantization none")
    return quant


@lru_cache(maxsize=256)
def _has_bnb_layer(choice: MethodChoice) -> bool:
    """Whether peft has a bitsandbytes layer for the tuner of `choice` (kept in memory and in the disk cache)."""
    name = cache.record_name("bnb", (Path(__file__).resolve(), Path(registry.__file__)), choice=repr(choice))
    record = cache.load_record(name)
    if record is None or not isinstance(record.get("bnb"), bool):
        tuner = type(choice.peft_config("CAUSAL_LM")).__module__.rsplit(".", 1)[0]
        record = {"bnb": importlib.util.find_spec(f"{tuner}.bnb") is not None}
        cache.store_record(name, record)
    return bool(record["bnb"])


def unquantized_experts(key: SkeletonKey, quant: str) -> str:
    """What stays unquantized on a quantized base, where it is more than a rounding error: an MoE's fused experts.
    transformers (5.x) quantizes only exact `nn.Linear` modules (integrations/bitsandbytes.py
    `replace_with_bnb_linear`); fused experts are 3-D parameters, so they stay in the load dtype, and peft's
    `prepare_model_for_kbit_training` then makes them fp32 like every other unquantized weight."""
    experts = model_shape(key).fused_expert_params if quant != "none" else 0
    if not experts:
        return ""
    return (f"{key.model.name}'s fused MoE experts ({experts / 1e9:.2f}B parameters, {human_bytes(experts * 4)} "
            f"in fp32) are not quantized by {quant}: transformers quantizes only nn.Linear layers, and "
            "prepare_model_for_kbit_training makes unquantized weights fp32; they are counted so")
