"""The tiny models of tests.support.tiny the counting tests use (no catalogue, no network), and peft's own count
for a method as the reference every TuneWise count is tested against."""

from __future__ import annotations

import contextlib
import copy
import warnings
from collections.abc import Callable

from torch import nn

from core.apply import as_on_real_weights
from core.models import ResolvedModel
from core.registry import MethodChoice
from core.skeleton import PEFT_TASK_TYPES, SkeletonKey, skeleton
from tests.support.tiny import tiny_model as core_tiny_model

# The families the counting tests cover, from the one table of tiny configs (tests.support.tiny).
TINY_CONFIGS: tuple[str, ...] = ("llama", "qwen2", "gemma2", "gpt2", "opt", "roberta", "t5")
# Mixture-of-experts families with heterogeneous block stacks: DeepSeek's first dense layer, then MoE layers;
# Qwen3-MoE with dense MLPs interleaved (mlp_only_layers). peft has no default targets for them.
TINY_MOE_CONFIGS: tuple[str, ...] = ("deepseek_v2", "qwen3_moe")
_OVERRIDES: dict[str, dict[str, object]] = {"qwen3_moe": {"num_hidden_layers": 6, "mlp_only_layers": [0, 2, 4]}}


def tiny_model(family: str, **overrides: object) -> ResolvedModel:
    """tests.support.tiny's config of `family`, with the overrides these tests need (Qwen3-MoE's interleaved
    dense layers) and the caller's."""
    return core_tiny_model(family, **(_OVERRIDES.get(family, {}) | overrides))


def peft_reference(key: SkeletonKey, choice: MethodChoice) -> tuple[int, int]:
    """(trainable, total) as peft reports them when applied plainly to a full copy of the model (no block-stack
    shortcut, no TuneWise wrapper), after peft's own optimizer helper where the method needs one (LoRA-FA's
    helper freezes A)."""
    import torch
    from peft import get_peft_model
    from peft.optimizers import create_lorafa_optimizer, create_loraplus_optimizer

    helpers: dict[str, Callable[[nn.Module], object]] = {
        "create_lorafa_optimizer": lambda m: create_lorafa_optimizer(
            m, r=choice.rank, lora_alpha=choice.alpha, lr=1e-4
        ),
        "create_loraplus_optimizer": lambda m: create_loraplus_optimizer(
            m, torch.optim.AdamW, lr=1e-4, loraplus_lr_ratio=16
        ),
    }
    model = copy.deepcopy(skeleton(key))
    device = torch.device("meta") if choice.spec.meta_init else contextlib.nullcontext()
    with warnings.catch_warnings(), device:
        warnings.simplefilter("ignore")
        wrapped = get_peft_model(model, choice.peft_config(PEFT_TASK_TYPES[key.task]), low_cpu_mem_usage=True)
        as_on_real_weights(wrapped, choice)  # what peft does on real weights only (tested in test_methods_peft.py)
        if choice.spec.optimizer:
            helpers[choice.spec.optimizer](wrapped)
    trainable, total = wrapped.get_nb_trainable_parameters()
    return int(trainable), int(total)
