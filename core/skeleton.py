"""Model skeletons on the meta device: the real transformers classes, with no memory and no weights.

Learned from accelerate's `estimate-memory`: build from the config under `torch.device("meta")`. Skeletons
are cached per (config, task, labels); callers that mutate one (peft does) take `fresh_copy`.
"""

from __future__ import annotations

import copy
import threading
import warnings
from collections import OrderedDict
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import torch
from torch import nn

from core.errors import InputError
from core.models import ResolvedModel

Task = Literal["causal-lm", "seq-cls", "seq2seq"]
TASKS: tuple[str, ...] = ("causal-lm", "seq-cls", "seq2seq")
PEFT_TASK_TYPES: dict[str, str] = {"causal-lm": "CAUSAL_LM", "seq-cls": "SEQ_CLS", "seq2seq": "SEQ_2_SEQ_LM"}
# peft's PeftModelForSequenceClassification trains (modules_to_save) the heads named like this.
CLASSIFIER_HEAD_NAMES: tuple[str, ...] = ("classifier", "score")

_copy_lock = threading.Lock()


@dataclass(frozen=True)
class SkeletonKey:
    """What identifies a skeleton: the config and the head."""

    model: ResolvedModel
    task: str
    num_labels: int

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise InputError(f"unknown task {self.task!r}: choose one of {', '.join(TASKS)}")
        if self.num_labels < 1:
            raise InputError(f"--num-labels {self.num_labels} must be at least 1")


def default_task(model: ResolvedModel) -> str:
    """Causal LM for decoders, seq2seq for encoder-decoders, sequence classification for encoders."""
    config = model.config_dict
    if config.get("is_encoder_decoder"):
        return "seq2seq"
    architectures = config.get("architectures") or []
    if any(a.endswith(("ForCausalLM", "LMHeadModel")) for a in architectures):
        return "causal-lm"
    if architectures or model.model_type in {"bert", "roberta", "deberta", "deberta-v2", "distilbert", "electra"}:
        return "seq-cls"
    return "causal-lm"


@lru_cache(maxsize=16)
def skeleton(key: SkeletonKey) -> nn.Module:
    """The cached meta-device model for `key`. Do not mutate it: use `fresh_copy`."""
    from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoModelForSequenceClassification

    auto = {
        "causal-lm": AutoModelForCausalLM,
        "seq-cls": AutoModelForSequenceClassification,
        "seq2seq": AutoModelForSeq2SeqLM,
    }[key.task]
    config = key.model.build_config()
    if key.task == "seq-cls":
        config.num_labels = key.num_labels
        if getattr(config, "pad_token_id", None) is None:
            config.pad_token_id = 0  # decoder classifiers need a pad id to find the last token; counts do not
    try:
        with warnings.catch_warnings(), torch.device("meta"):
            warnings.simplefilter("ignore")
            model = auto.from_config(config, trust_remote_code=key.model.trust_remote_code)
    except ValueError as exc:
        if "Unrecognized configuration class" in str(exc):
            raise InputError(
                f"{key.model.name} ({key.model.model_type}) has no {key.task} head in transformers: "
                f"choose another --task ({', '.join(TASKS)})"
            ) from None
        raise InputError(f"cannot build {key.model.name}: {str(exc).splitlines()[0]}") from None
    model.train()
    return model


def fresh_copy(model: nn.Module, keep_blocks: dict[str, int] | None = None) -> nn.Module:
    """A deep copy of a meta skeleton, optionally keeping only the first N blocks of some block stacks."""
    with _copy_lock:
        saved: dict[str, OrderedDict[str, nn.Module]] = {}
        try:
            for name, keep in (keep_blocks or {}).items():
                stack = model.get_submodule(name)
                saved[name] = stack._modules
                stack._modules = OrderedDict(list(stack._modules.items())[:keep])
            return copy.deepcopy(model)
        finally:
            for name, modules in saved.items():
                model.get_submodule(name)._modules = modules


def _signature(block: nn.Module) -> tuple[tuple[str, tuple[int, ...]], ...]:
    return tuple((name, tuple(p.shape)) for name, p in block.named_parameters())


def block_stacks(model: nn.Module) -> dict[str, int]:
    """Top-level stacks of transformer blocks (name -> depth), e.g. {'model.layers': 32}.

    A stack is a ModuleList of at least 4 modules of one class whose blocks after the first have identical
    parameter names and shapes (T5's first block alone carries the relative-position bias).
    """
    stacks: dict[str, int] = {}
    for name, module in model.named_modules():
        if not isinstance(module, nn.ModuleList) or len(module) < 4:
            continue
        if any(name.startswith(f"{outer}.") for outer in stacks):
            continue
        blocks = list(module)
        if len({type(b) for b in blocks}) != 1:
            continue
        if len({_signature(b) for b in blocks[1:]}) == 1:
            stacks[name] = len(blocks)
    return stacks


def top_blocks(model: nn.Module, count: int) -> list[tuple[str, nn.Module]]:
    """The last `count` blocks of the model's output-side stack (the decoder for encoder-decoders)."""
    stacks = block_stacks(model)
    if not stacks:
        raise InputError("partial fine-tuning needs a stack of transformer blocks, and none was found in this model")
    name = list(stacks)[-1]
    depth = stacks[name]
    if count > depth:
        raise InputError(f"--top-layers {count} exceeds the model's {depth} blocks; choose 1 to {depth}")
    stack = model.get_submodule(name)
    return [(f"{name}.{i}", stack[i]) for i in range(depth - count, depth)]
