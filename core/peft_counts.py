"""Exact trainable-parameter counts: peft applied to the real model class on the meta device (what
`core.counting.count_parameters` runs when its disk cache has no entry: this module imports torch and peft).

For peft methods the count is what `PeftModel.get_nb_trainable_parameters` reports after `wrap_peft` (which
also freezes what the method's optimizer helper freezes, e.g. LoRA-FA's A). Methods with a registry `Trains`
rule (full fine-tuning, BitFit, partial fine-tuning) count the parameters `trained_parameters` selects, the
same ones `apply_method` sets trainable.

Speed: applying peft to every block of a 70B model costs about a second per method, almost all of it in
creating per-block adapter modules. Blocks of one kind (`skeleton.stack_plans`) are interchangeable, so peft
is applied once, to a copy that keeps the shortest prefix of each stack holding every kind (one block for a
plain decoder; DeepSeek's dense layer 0 and its MoE layers are two kinds), and each left-out block counts
what peft put into the kept block of its kind. Methods whose adapters are shared across layers
(`Method.blocks == "shared"`) take the difference of 1- and 2-block copies instead (`skeleton.extrapolate`)
on stacks of one repeated kind, and peft on the whole model otherwise, as do top-K methods. Tests check
every path against peft on the whole model, for every method and every tiny family.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from functools import lru_cache

from torch import nn

from core.apply import trained_parameters, wrap_peft
from core.counting import ParameterCount
from core.errors import InputError, NotApplicableError
from core.models import DTYPE_BYTES, ResolvedModel
from core.registry import ALL_LINEAR, MethodChoice
from core.skeleton import (
    BlockStack,
    SkeletonKey,
    extrapolate,
    fresh_copy,
    linear_module_names,
    one_at_a_time,
    skeleton,
    skeleton_stacks,
    top_blocks,
)

_ADAPTER_DTYPE_BYTES = {"fp32": 4, "bf16": 2, "fp16": 2}


def unique_parameters(model: nn.Module) -> Iterable[tuple[str, nn.Parameter]]:
    """Named parameters with tied weights counted once (as `nn.Module.parameters` does)."""
    return model.named_parameters(remove_duplicate=True)


@one_at_a_time
def measure_count(key: SkeletonKey, choice: MethodChoice) -> ParameterCount:
    """Total, trainable, share and saved bytes for `choice` on the model of `key`, counted on the built model."""
    base = skeleton(key)
    if choice.spec.trains is not None:
        total = sum(p.numel() for _, p in unique_parameters(base))
        trainable = sum(p.numel() for _, p in trained_parameters(base, key, choice))
        return _result(choice, total, trainable, _checkpoint_bytes(key.model, trainable))
    _check_targets(base, choice)
    if choice.top_layers is not None:  # adaption prompts: the same "top K blocks" bound as partial fine-tuning
        top_blocks(base, choice.top_layers)
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
    """(trainable, total, targeted leaf names) as peft reports them, by the shortcut `Method.blocks` allows."""
    stacks = skeleton_stacks(key)
    targeted: set[str] = set()

    def measure(keep: dict[str, int] | None) -> tuple[int, int]:
        wrapped = _wrapped(key, choice, tuple(keep.items()) if keep else None, targeted)
        trainable, total = wrapped.get_nb_trainable_parameters()
        return int(trainable), int(total)

    sharing = choice.spec.blocks
    if sharing == "own" and stacks:
        trainable, total = _one_block_per_kind(key, choice, stacks, targeted)
    elif sharing == "shared" and stacks and all(len(set(s.kinds)) == 1 for s in stacks):
        trainable, total = extrapolate(stacks, measure)
    else:
        trainable, total = measure(None)
    if trainable == 0:
        where = f"the layers it targets ({', '.join(sorted(targeted))})" if targeted else "no layer it targets"
        raise NotApplicableError(
            f"{choice.spec.name} trains nothing on {key.model.name}: peft adds no trainable parameter to {where}; "
            "name other --targets or choose another method"
        )
    return trainable, total, tuple(sorted(targeted))


def _wrapped(
    key: SkeletonKey, choice: MethodChoice, keep: tuple[tuple[str, int], ...] | None, targeted: set[str]
) -> nn.Module:
    """The cached peft copy, its rank checked and its targeted layer names collected into `targeted`."""
    wrapped = peft_model(key, choice, keep)
    _check_rank(wrapped, choice)
    targeted.update(n.split(".")[-1] for n in getattr(wrapped.base_model, "targeted_module_names", []))
    return wrapped


def _one_block_per_kind(
    key: SkeletonKey, choice: MethodChoice, stacks: tuple[BlockStack, ...], targeted: set[str]
) -> tuple[int, int]:
    """peft's counts on one copy that keeps each stack's base prefix (one block of every kind), plus, for each
    block the copy left out, what peft put into the kept block of its kind. Adapters every layer shares
    (VeRA's projections, prompt encoders) live outside the blocks and are counted once, as peft counts them."""
    wrapped = _wrapped(key, choice, tuple((stack.name, stack.base) for stack in stacks), targeted)
    trainable, total = (int(n) for n in wrapped.get_nb_trainable_parameters())
    for stack in stacks:
        blocks = wrapped.get_base_model().get_submodule(stack.name)
        for kind, copies in stack.left_out.items():
            own = _block_own_parameters(wrapped, blocks[stack.kinds.index(kind)])
            trainable += copies * sum(p.numel() for p in own if p.requires_grad)
            total += copies * sum(p.numel() for p in own)
    return trainable, total


def _block_own_parameters(wrapped: nn.Module, block: nn.Module) -> list[nn.Parameter]:
    """The block's parameters that no module outside it also holds: a vector one layer registers and every
    layer shares (UniLoRA's, TinyLoRA's) belongs to the whole model and is counted once, by peft."""
    path = next(name for name, module in wrapped.named_modules(remove_duplicate=False) if module is block)
    outside = {id(p) for name, p in wrapped.named_parameters(remove_duplicate=False) if not name.startswith(f"{path}.")}
    return [p for p in block.parameters() if id(p) not in outside]


@lru_cache(maxsize=256)
def peft_model(key: SkeletonKey, choice: MethodChoice, keep_blocks: tuple[tuple[str, int], ...] | None) -> nn.Module:
    """The peft-wrapped meta copy of `key`'s skeleton (first N blocks of the named stacks), cached so that the
    memory engine reads the same modules counting built. Do not mutate it."""
    import torch

    model = fresh_copy(skeleton(key), dict(keep_blocks) if keep_blocks else None)
    # The base is on meta already; peft's own small index tensors need real data where `meta_init` is False.
    device = torch.device("meta") if choice.spec.meta_init else contextlib.nullcontext()
    with device:
        return wrap_peft(model, key, choice, low_cpu_mem_usage=True)


def _check_rank(peft_model: nn.Module, choice: MethodChoice) -> None:
    """A rank above a named layer's smaller side is refused; with --targets all-linear peft also adapts one-output
    gates (Qwen-MoE's shared_expert_gate), and an over-sized factor there is peft's own behaviour, not an error."""
    if choice.rank is None or not choice.spec.rank_bounds_layers or choice.targets == ALL_LINEAR:
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
