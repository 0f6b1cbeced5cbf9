"""Exact trainable-parameter counts: peft applied to the real model class on the meta device.

For peft methods the count is what `PeftModel.get_nb_trainable_parameters` reports. BitFit and partial
fine-tuning are not peft methods: they set `requires_grad` themselves, exactly as a training script would.

Speed: applying peft to every block of a 70B model costs about a second per method, almost all of it in
creating per-block adapter modules. Transformer blocks are identical, so peft is applied to a copy that
keeps the first 2 and then 3 blocks of each stack; the difference is one block's exact contribution and
the full count is `n(2) + (depth - 2) * (n(3) - n(2))`. `block_stacks` only admits stacks whose blocks have
identical parameter shapes; anything else (and any model under 4 blocks) gets peft on the whole model.
Tests check both paths agree for every method.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from torch import nn

from core.errors import InputError, NotApplicableError
from core.models import DTYPE_BYTES, ResolvedModel
from core.registry import ALL_LINEAR, MethodChoice
from core.skeleton import (
    CLASSIFIER_HEAD_NAMES,
    PEFT_TASK_TYPES,
    SkeletonKey,
    block_stacks,
    fresh_copy,
    skeleton,
    top_blocks,
)

_ADAPTER_DTYPE_BYTES = {"fp32": 4, "bf16": 2, "fp16": 2}


@dataclass(frozen=True)
class ParameterCount:
    """Counts for one method on one model; `adapter_bytes` is what training saves (the full model for FFT)."""

    method: str
    label: str
    total_params: int
    trainable_params: int
    trainable_share: float
    adapter_bytes: int
    targeted_modules: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not 0 <= self.trainable_params <= self.total_params:
            raise ValueError(f"{self.method}: trainable {self.trainable_params} outside [0, {self.total_params}]")


def unique_parameters(model: nn.Module) -> Iterable[tuple[str, nn.Parameter]]:
    """Named parameters with tied weights counted once (as `nn.Module.parameters` does)."""
    return model.named_parameters(remove_duplicate=True)


def count_parameters(key: SkeletonKey, choice: MethodChoice) -> ParameterCount:
    """Total, trainable, share and saved bytes for `choice` on the model of `key`."""
    base = skeleton(key)
    if choice.method == "fft":
        total = sum(p.numel() for _, p in unique_parameters(base))
        return _result(choice, total, total, _checkpoint_bytes(key.model, total))
    if choice.method in ("bitfit", "partial_ft"):
        trainable = _selected_count(base, key, choice)
        total = sum(p.numel() for _, p in unique_parameters(base))
        return _result(choice, total, trainable, _checkpoint_bytes(key.model, trainable))
    _check_targets(base, choice)
    trainable, total, targeted = _peft_counts(key, choice)
    return _result(choice, total, trainable, trainable * _ADAPTER_DTYPE_BYTES[choice.adapter_dtype], targeted)


def _result(
    choice: MethodChoice, total: int, trainable: int, saved_bytes: int, targeted: tuple[str, ...] = ()
) -> ParameterCount:
    return ParameterCount(
        method=choice.method,
        label=choice.label(),
        total_params=total,
        trainable_params=trainable,
        trainable_share=trainable / total if total else 0.0,
        adapter_bytes=saved_bytes,
        targeted_modules=targeted,
    )


def _checkpoint_bytes(model: ResolvedModel, params: int) -> int:
    return params * DTYPE_BYTES[model.saved_dtype]


def _is_head(name: str) -> bool:
    return name.split(".", maxsplit=1)[0] in CLASSIFIER_HEAD_NAMES


def _selected_count(base: nn.Module, key: SkeletonKey, choice: MethodChoice) -> int:
    """BitFit: biases; partial FT: every weight of the top K blocks. Both also train a new classifier head."""
    head = sum(p.numel() for n, p in unique_parameters(base) if _is_head(n)) if key.task == "seq-cls" else 0
    if choice.method == "bitfit":
        biases = sum(p.numel() for n, p in unique_parameters(base) if n.endswith("bias") and not _is_head(n))
        if biases == 0:
            raise NotApplicableError(
                f"BitFit trains biases, and {key.model.name} has none (its linear layers are bias-free); "
                "choose another method, e.g. lora or ia3"
            )
        return biases + head
    assert choice.top_layers is not None
    return sum(p.numel() for _, block in top_blocks(base, choice.top_layers) for p in block.parameters()) + head


def linear_module_names(model: nn.Module) -> list[str]:
    """Distinct leaf names of the linear-like layers (what --targets can name)."""
    names = {name.split(".")[-1] for name, m in model.named_modules() if _is_linear_like(m) and name}
    return sorted(names)


def _is_linear_like(module: nn.Module) -> bool:
    # GPT-2 uses transformers' Conv1D, a linear layer with transposed weights.
    return isinstance(module, nn.Linear | nn.Embedding) or type(module).__name__ == "Conv1D"


def _check_targets(base: nn.Module, choice: MethodChoice) -> None:
    if not isinstance(choice.targets, tuple):
        return
    names = [name for name, _ in base.named_modules() if name]
    missing = [t for t in choice.targets if not any(n == t or n.endswith(f".{t}") for n in names)]
    if missing:
        raise InputError(
            f"--targets {','.join(missing)} not found in the model; its linear layers are: "
            f"{','.join(linear_module_names(base))} (or use '{ALL_LINEAR}')"
        )


def _peft_counts(key: SkeletonKey, choice: MethodChoice) -> tuple[int, int, tuple[str, ...]]:
    """(trainable, total, targeted leaf names) as peft reports them, via the block-stack shortcut."""
    stacks = block_stacks(skeleton(key))
    if not stacks:
        return _apply_peft(key, choice, None)
    keep = dict.fromkeys(stacks, 2)
    base_trainable, base_total, targeted = _apply_peft(key, choice, keep)
    trainable, total = base_trainable, base_total
    for name, depth in stacks.items():
        grown_trainable, grown_total, _ = _apply_peft(key, choice, {**keep, name: 3})
        trainable += (depth - 2) * (grown_trainable - base_trainable)
        total += (depth - 2) * (grown_total - base_total)
    return trainable, total, targeted


def _apply_peft(
    key: SkeletonKey, choice: MethodChoice, keep_blocks: dict[str, int] | None
) -> tuple[int, int, tuple[str, ...]]:
    """Apply the real peft config to a fresh (possibly truncated) meta copy and ask peft for the counts."""
    wrapped = peft_model(key, choice, tuple(keep_blocks.items()) if keep_blocks else None)
    _check_rank(wrapped, choice)
    trainable, total = wrapped.get_nb_trainable_parameters()
    targeted = tuple(sorted({n.split(".")[-1] for n in getattr(wrapped.base_model, "targeted_module_names", [])}))
    return int(trainable), int(total), targeted


@lru_cache(maxsize=64)
def peft_model(key: SkeletonKey, choice: MethodChoice, keep_blocks: tuple[tuple[str, int], ...] | None) -> nn.Module:
    """The peft-wrapped meta copy of `key`'s skeleton (first N blocks of the named stacks), cached so that the
    memory engine reads the same modules counting built. Do not mutate it."""
    import torch
    from peft import get_peft_model

    model = fresh_copy(skeleton(key), dict(keep_blocks) if keep_blocks else None)
    config = choice.peft_config(PEFT_TASK_TYPES[key.task])
    try:
        with warnings.catch_warnings(), torch.device("meta"):
            warnings.simplefilter("ignore")
            return get_peft_model(model, config, low_cpu_mem_usage=True)
    except (ValueError, TypeError, NotImplementedError, RuntimeError) as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise NotApplicableError(f"{choice.spec.name} cannot be applied to {key.model.name}: {message}") from None


def _check_rank(peft_model: nn.Module, choice: MethodChoice) -> None:
    if choice.rank is None or choice.method in ("oft", "vera"):
        return
    for name in getattr(peft_model.base_model, "targeted_module_names", []):
        layer = peft_model.base_model.model.get_submodule(name)
        base_layer = layer.get_base_layer() if hasattr(layer, "get_base_layer") else layer
        weight = getattr(base_layer, "weight", None)
        if weight is not None and weight.dim() == 2 and choice.rank > min(weight.shape):
            raise InputError(
                f"--rank {choice.rank} is larger than layer {name.split('.')[-1]} "
                f"({weight.shape[1]}->{weight.shape[0]}); choose a rank up to {min(weight.shape)}"
            )
