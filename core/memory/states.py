"""Model states per GPU before sharding: weights, gradients and optimizer states, by precision and optimizer.

Accounting (torch AMP, as HF Trainer runs it; Rajbhandari et al. 2019, ZeRO, §3.1 for the 2+2+12 split):

* frozen weights are held in the compute dtype (fp32, or 2 bytes for any half precision), or quantized:
  NF4 stores 0.5 byte per weight plus one fp32 absmax per 64-weight block; double quantization stores that
  absmax in 8 bits plus one fp32 constant per 256 absmaxes (Dettmers et al. 2023, QLoRA, §3: 0.5 -> 0.127
  bits per parameter); LLM.int8 stores 1 byte per weight plus an fp32 scale per output row. Embeddings,
  norms, biases and the output head stay in the compute dtype, as transformers' bitsandbytes loader leaves them;
* trained parameters are fp32 in fp32 and `*-mixed` precision (the fp32 master copy *is* the parameter under
  AMP; autocast adds a half-precision working copy of each trained weight, counted with the weights), and in
  the parameter dtype for `*-true`; peft adapters keep their own dtype (fp32 by default);
* gradients exist only for trained parameters, in their dtype;
* optimizer states exist only for trained parameters: AdamW two states in the parameter dtype (as torch keeps
  them); 8-bit AdamW (bitsandbytes, Dettmers et al. 2022) one byte per state plus an fp32 absmax per
  256-value block; SGD one momentum buffer; Adafactor (Shazeer & Stern 2018, HF defaults: no first moment)
  fp32 row and column statistics per matrix, a full second moment per vector.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

import torch
from torch import nn

from core.counting import ParameterCount, _is_head, peft_model, unique_parameters
from core.errors import NotApplicableError
from core.memory.layout import ELEM_BYTES
from core.memory.setup import TrainingSetup
from core.registry import MethodChoice
from core.skeleton import SkeletonKey, block_stacks, skeleton, top_blocks

NF4_BLOCK = 64  # weights per absmax block (QLoRA §3)
NF4_DQ_BLOCK = 256  # absmaxes per second-level fp32 constant (QLoRA §3, double quantization)
ADAM8_BLOCK = 256  # bitsandbytes block-wise 8-bit optimizer block size


@dataclass(frozen=True)
class ModelStates:
    """Per-GPU bytes of the model states (before sharding)."""

    weights: int
    gradients: int
    optimizer: int


@dataclass(frozen=True)
class LinearStats:
    """The linear-layer weights a quantized loader converts, and the largest block (ZeRO-3 gathers one)."""

    quantizable: int
    rows: int
    block_params: int


def quantization(choice: MethodChoice, setup: TrainingSetup) -> str:
    """The base-weight format: QLoRA defaults to NF4 with double quantization, everything else to none."""
    if setup.quantization != "auto":
        return setup.quantization
    return "nf4-dq" if choice.spec.quantized_base else "none"


def check_quantization(choice: MethodChoice, setup: TrainingSetup) -> None:
    """A quantized base needs half-precision compute and a method that leaves the base weights frozen and has
    a bitsandbytes layer in peft (or needs none: soft prompts)."""
    quant = quantization(choice, setup)
    if quant == "none":
        return
    label = "QLoRA" if choice.spec.quantized_base else f"a {quant} base"
    if setup.precision == "fp32":
        raise NotApplicableError(f"{label} computes in bf16/fp16 on a quantized base: use --precision bf16-mixed "
                                 "(or fp16-mixed), not fp32")
    if not choice.spec.is_peft:
        raise NotApplicableError(f"{choice.spec.name} trains base weights, which cannot sit on a {quant} base; "
                                 "use a PEFT method or --quantization none")
    if choice.spec.family == "soft-prompt":
        return
    tuner = type(choice.peft_config("CAUSAL_LM")).__module__.rsplit(".", 1)[0]
    if importlib.util.find_spec(f"{tuner}.bnb") is None:
        raise NotApplicableError(f"{choice.spec.name} cannot sit on a {quant} base: peft has no bitsandbytes layer "
                                 "for it; use lora, dora, adalora or ia3, or --quantization none")


def model_states(key: SkeletonKey, choice: MethodChoice, count: ParameterCount, setup: TrainingSetup) -> ModelStates:
    """Weights, gradients and optimizer bytes on one GPU without sharding (see the module docstring)."""
    check_quantization(choice, setup)
    total, trained = count.total_params, count.trainable_params
    frozen_elem = 4 if setup.precision == "fp32" else 2
    trained_elem = _trained_elem(choice, setup)
    frozen = total - trained
    quant = quantization(choice, setup)
    weights = frozen * frozen_elem
    if quant != "none":
        stats = linear_stats(key)
        q = min(stats.quantizable, frozen)
        weights += _quantized_bytes(q, stats.rows, quant) - q * frozen_elem
    weights += trained * trained_elem
    if setup.mixed and trained_elem == 4:
        weights += trained * 2  # autocast's half-precision copy of each trained weight
    gradients = trained * trained_elem
    return ModelStates(int(weights), int(gradients), _optimizer_bytes(key, choice, trained, trained_elem, setup))


def _trained_elem(choice: MethodChoice, setup: TrainingSetup) -> int:
    if choice.spec.is_peft:
        return ELEM_BYTES[choice.adapter_dtype or "fp32"]
    return 2 if setup.precision.endswith("-true") else 4


def _quantized_bytes(params: int, rows: int, quant: str) -> float:
    if quant == "int8":
        return params + rows * 4
    constants = params / NF4_BLOCK * (1 + 4 / NF4_DQ_BLOCK if quant == "nf4-dq" else 4)
    return params * 0.5 + constants


def _optimizer_bytes(key: SkeletonKey, choice: MethodChoice, trained: int, elem: int, setup: TrainingSetup) -> int:
    if setup.optimizer == "adamw":
        return 2 * trained * elem
    if setup.optimizer in ("adamw-8bit", "paged-adamw-8bit"):
        return int(trained * (2 + 2 * 4 / ADAM8_BLOCK))
    if setup.optimizer == "sgd":
        return trained * elem
    return 4 * factored_elements(key, choice)


@lru_cache(maxsize=128)
def linear_stats(key: SkeletonKey) -> LinearStats:
    """Weights of the linear layers a 4/8-bit loader converts (not the output or classification head)."""
    model = skeleton(key)
    quantizable = rows = 0
    for name, module in model.named_modules():
        if not _is_linear(module) or name.split(".")[-1] == "lm_head" or _is_head(name):
            continue
        quantizable += module.weight.numel()
        rows += _out_features(module)
    stacks = block_stacks(model)
    block = 0
    for name in stacks:
        first = model.get_submodule(name)[0]
        block = max(block, sum(p.numel() for p in first.parameters()))
    return LinearStats(quantizable, rows, block)


@lru_cache(maxsize=128)
def factored_elements(key: SkeletonKey, choice: MethodChoice) -> int:
    """Adafactor's state elements for the trained parameters: rows + columns per matrix, all of a vector."""
    model = skeleton(key)
    if choice.method == "fft":
        return _factored(p for _, p in unique_parameters(model))
    if choice.method == "bitfit":
        return _factored(p for n, p in unique_parameters(model) if n.endswith("bias") or _is_head(n))
    if choice.method == "partial_ft":
        assert choice.top_layers is not None
        blocks = [b for _, b in top_blocks(model, choice.top_layers)]
        heads = [p for n, p in unique_parameters(model) if _is_head(n)] if key.task == "seq-cls" else []
        return _factored([*(p for b in blocks for p in b.parameters()), *heads])
    stacks = block_stacks(model)
    if not stacks:
        return _trained_factored(peft_model(key, choice, None))
    keep = tuple((name, 2) for name in stacks)
    base = _trained_factored(peft_model(key, choice, keep))
    total = base
    for name, depth in stacks.items():
        grown = tuple((n, 3 if n == name else 2) for n in stacks)
        total += (depth - 2) * (_trained_factored(peft_model(key, choice, grown)) - base)
    return total


def _trained_factored(model: nn.Module) -> int:
    return _factored(p for _, p in unique_parameters(model) if p.requires_grad)


def _factored(params: Iterable[torch.Tensor]) -> int:
    total = 0
    for p in params:
        shape = tuple(p.shape)
        total += shape[-1] + shape[-2] if len(shape) >= 2 else p.numel()
    return total


def _is_linear(module: nn.Module) -> bool:
    return isinstance(module, nn.Linear) or type(module).__name__ == "Conv1D"


def _out_features(module: nn.Module) -> int:
    if isinstance(module, nn.Linear):
        return module.out_features
    return int(module.weight.shape[1])

