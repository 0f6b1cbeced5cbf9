"""Make a model train as a method does: peft for adapters, the registry's `Trains` rule for the rest.

One entry point shared by the counter, the memory trace, the CPU probe and the calibration runner, so each of
them works on exactly the configuration that was counted. Everything method-specific is read from the
registry entry (`Method.trains`, `Method.frozen_adapter_params`, ...); nothing here names a method.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable

import torch
from torch import nn

from core.errors import MissingPackageError, NotApplicableError
from core.registry import ALL_LINEAR, PEFT_DEFAULT, TRAIN_SCOPES, MethodChoice
from core.skeleton import PEFT_TASK_TYPES, SkeletonKey, is_head, linear_module_names, top_blocks

_HALF = {"bf16", "fp16"}


def apply_method(model: nn.Module, key: SkeletonKey, choice: MethodChoice) -> nn.Module:
    """`model` (real, fake or meta weights) set up to train as `choice`; peft methods return the PeftModel."""
    if choice.spec.trains is not None:
        chosen = {id(p) for _, p in trained_parameters(model, key, choice)}
        for parameter in model.parameters():
            parameter.requires_grad_(id(parameter) in chosen)
        return model
    peft_model = wrap_peft(model, key, choice)
    if choice.adapter_dtype in _HALF:
        dtype = torch.bfloat16 if choice.adapter_dtype == "bf16" else torch.float16
        for parameter in peft_model.parameters():
            if parameter.requires_grad:
                parameter.data = parameter.data.to(dtype)
    peft_model.train()
    return peft_model


def wrap_peft(
    model: nn.Module, key: SkeletonKey, choice: MethodChoice, *, low_cpu_mem_usage: bool = False
) -> nn.Module:
    """peft's `get_peft_model` with the method's config, then what peft's optimizer helper freezes (LoRA-FA's A).
    A method peft refuses on this model (or whose config does not fit the task) is a NotApplicableError."""
    from peft import get_peft_model

    linear_names = linear_module_names(model)  # before peft wraps (and, failing, half-wraps) the model
    try:
        config = choice.peft_config(PEFT_TASK_TYPES[key.task])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            wrapped = get_peft_model(model, config, low_cpu_mem_usage=low_cpu_mem_usage)
    except ImportError as exc:
        why = f"needs a package that is not installed: {_first_line(exc)}"
        raise MissingPackageError(f"{choice.spec.name} {why}") from None
    except (ValueError, TypeError, NotImplementedError, RuntimeError, KeyError, AttributeError) as exc:
        why = f"cannot be applied to {key.model.name}: {_first_line(exc)}"
        if choice.targets == PEFT_DEFAULT and "target_modules" in str(exc):
            why = (
                f"has no default target modules in peft for {key.model.name} ({key.model.model_type}): pass "
                f"--targets {ALL_LINEAR} or some of {','.join(linear_names)}"
            )
        elif "ParamWrapper" in str(exc):  # peft adapts an MoE's fused expert weights through lora.ParamWrapper
            fix = ("--dropout 0" if "lora_dropout" in str(exc) else
                   f"--targets naming layers outside the experts, some of {','.join(linear_names)}")
            why = (f"cannot adapt the experts of {key.model.name} ({_first_line(exc).rstrip('.')}, in peft's "
                   f"adapter for fused expert weights): pass {fix}")
        raise NotApplicableError(f"{choice.spec.name} {why}") from None
    as_on_real_weights(wrapped, choice)
    frozen = choice.spec.frozen_adapter_params
    for name, parameter in wrapped.named_parameters():
        if any(f".{part}." in name for part in frozen):
            parameter.requires_grad_(False)
    return wrapped


def as_on_real_weights(wrapped: nn.Module, choice: MethodChoice) -> None:
    """What peft does to a new adapter on real weights but skips on the meta device: it moves the adapter to its
    base layer's dtype and later upcasts half-precision adapters to fp32; how that leaves `ParameterDict` entries
    depends on the peft version (0.21 re-creates them as trainable parameters, so AdaLoRA's `ranknum` trains on a
    bf16 base; 0.19 kept it frozen). So the installed peft is asked, on a one-layer real module, which adapter
    entries it leaves trainable on a half-precision base, and the meta model is set the same way."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    for layer in wrapped.modules():
        if not isinstance(layer, BaseTunerLayer):
            continue
        weight = getattr(layer.get_base_layer(), "weight", None)
        if weight is None or weight.dtype not in (torch.float16, torch.bfloat16):
            continue
        trains = _real_weights_trainable(choice, weight.dtype)
        for name in (*layer.adapter_layer_names, *layer.other_param_names):
            entries = getattr(layer, name, None)
            if isinstance(entries, nn.ParameterDict) and name in trains:
                for parameter in entries.values():
                    parameter.requires_grad_(trains[name])


@functools.lru_cache(maxsize=128)
def _real_weights_trainable(choice: MethodChoice, dtype: torch.dtype) -> dict[str, bool]:
    """`ParameterDict` adapter entries -> trainable, as the installed peft leaves them on one real linear layer
    in `dtype` after its upcast (what `PeftModel` runs after wrapping); empty when the method's config does not
    apply to a lone linear layer (its entries are then left as peft made them on meta)."""
    from peft import inject_adapter_in_model
    from peft.tuners.tuners_utils import BaseTunerLayer, cast_adapter_dtype

    probe = nn.Module()
    probe.proj = nn.Linear(32, 32, bias=False, dtype=dtype, device="cpu")
    try:
        config = choice.peft_config(None)
        config.target_modules = {"proj"}
        with warnings.catch_warnings(), torch.device("cpu"):  # real weights, even inside a meta-device block
            warnings.simplefilter("ignore")
            inject_adapter_in_model(config, probe, adapter_name="default")
            cast_adapter_dtype(probe, adapter_name="default")
    except (ValueError, TypeError, NotImplementedError, RuntimeError, KeyError, AttributeError, ImportError):
        return {}
    layer = probe.proj
    if not isinstance(layer, BaseTunerLayer):
        return {}
    return {name: all(p.requires_grad for p in entries.values())
            for name in (*layer.adapter_layer_names, *layer.other_param_names)
            if isinstance(entries := getattr(layer, name, None), nn.ParameterDict) and len(entries)}


def trained_parameters(model: nn.Module, key: SkeletonKey, choice: MethodChoice) -> list[tuple[str, nn.Parameter]]:
    """The parameters (tied ones once) that the method's `Trains` rule selects, plus a new classification head."""
    rule = choice.spec.trains
    if rule is None:
        raise ValueError(f"{choice.spec.name} is a peft method: apply it with wrap_peft")
    prefixes = _top_prefixes(model, choice) if rule.scope == "top_blocks" else ()
    selects: dict[str, Callable[[str], bool]] = {
        "all": lambda name: True,
        "biases": lambda name: name.endswith("bias"),
        "top_blocks": lambda name: name.startswith(prefixes),
    }
    named = list(model.named_parameters(remove_duplicate=True))
    body = [(n, p) for n, p in named if selects[rule.scope](n) and not is_head(n)]
    if not body:
        raise NotApplicableError(
            f"{choice.spec.name} trains {TRAIN_SCOPES[rule.scope]}, and {key.model.name} has none; "
            "choose another method, e.g. lora or ia3"
        )
    with_head = rule.scope == "all" or (rule.new_head and key.task == "seq-cls")
    return body + [(n, p) for n, p in named if with_head and is_head(n)]


def _top_prefixes(model: nn.Module, choice: MethodChoice) -> tuple[str, ...]:
    if choice.top_layers is None:
        raise ValueError(f"{choice.spec.name} trains the top blocks but has no --top-layers")
    return tuple(f"{name}." for name, _ in top_blocks(model, choice.top_layers))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
