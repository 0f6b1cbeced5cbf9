"""Make a model train as a method does: peft for adapters, `requires_grad` rules for the rest.

One entry point shared by the memory trace, the CPU probe and the calibration runner, so each of them works on
exactly the configuration that was counted.
"""

from __future__ import annotations

import warnings

from torch import nn

from core.counting import _is_head
from core.registry import MethodChoice
from core.skeleton import PEFT_TASK_TYPES, SkeletonKey, top_blocks

_HALF = {"bf16", "fp16"}


def apply_method(model: nn.Module, key: SkeletonKey, choice: MethodChoice) -> nn.Module:
    """`model` (real, fake or meta weights) set up to train as `choice`; peft methods return the PeftModel."""
    if not choice.spec.is_peft:
        _select(model, key, choice)
        return model
    import torch
    from peft import get_peft_model

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        peft_model = get_peft_model(model, choice.peft_config(PEFT_TASK_TYPES[key.task]))
    if choice.adapter_dtype in _HALF:
        dtype = torch.bfloat16 if choice.adapter_dtype == "bf16" else torch.float16
        for parameter in peft_model.parameters():
            if parameter.requires_grad:
                parameter.data = parameter.data.to(dtype)
    peft_model.train()
    return peft_model


def _select(model: nn.Module, key: SkeletonKey, choice: MethodChoice) -> None:
    """FFT (everything), BitFit (biases) or partial fine-tuning (top K blocks), plus a sequence-classification head."""
    if choice.method == "fft":
        for parameter in model.parameters():
            parameter.requires_grad_(True)
        return
    prefixes: tuple[str, ...] = ()
    if choice.method == "partial_ft":
        assert choice.top_layers is not None
        prefixes = tuple(f"{name}." for name, _ in top_blocks(model, choice.top_layers))
    for name, parameter in model.named_parameters():
        selected = name.endswith("bias") if choice.method == "bitfit" else name.startswith(prefixes)
        parameter.requires_grad_(selected or (key.task == "seq-cls" and _is_head(name)))
