"""Model skeletons on the meta device: the real transformers classes, with no memory and no weights.

Learned from accelerate's `estimate-memory`: build from the config under `torch.device("meta")`. Skeletons
are cached per `SkeletonKey` (config, task, labels: `core.skeleton_key`, which needs no torch); callers that
mutate one (peft does) take `fresh_copy`.
"""

from __future__ import annotations

import copy
import logging
import threading
import warnings
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache, wraps
from typing import Any, Literal, TypeVar, cast

import torch
from torch import nn

from core.errors import InputError
from core.models import TASKS
from core.skeleton_key import (
    SkeletonKey,
    default_task,  # noqa: F401  (re-exported: callers that build skeletons use both)
)

Task = Literal["causal-lm", "seq-cls", "seq2seq"]
PEFT_TASK_TYPES: dict[str, str] = {"causal-lm": "CAUSAL_LM", "seq-cls": "SEQ_CLS", "seq2seq": "SEQ_2_SEQ_LM"}
# peft's PeftModelForSequenceClassification trains (modules_to_save) the heads named like this.
CLASSIFIER_HEAD_NAMES: tuple[str, ...] = ("classifier", "score")

# One model build, copy, count, trace or probe at a time per process. They touch process-wide state: transformers'
# init functions while a model is built, a cached skeleton's block list while it is copied, torch's SDPA while a
# step is traced (`core.memory.standins.cuda_attention`). A Streamlit server runs its sessions and its warm-up in
# threads: interleaved, one thread's trace ran the other's patched (or unpatched) attention and both were wrong.
# They hold the GIL throughout, so taking turns costs no throughput. Re-entrant: a trace builds and copies too.
ENGINE_LOCK = threading.RLock()

_Call = TypeVar("_Call", bound=Callable[..., Any])


def one_at_a_time(function: _Call) -> _Call:
    """`function` run under `ENGINE_LOCK`, with transformers' notices below errors kept quiet: they speak of the
    engine's fake model ("`use_cache=True` is incompatible with gradient checkpointing", GPT-2's "`loss_type=None`
    ... unrecognized"), not of the user's run, and the CLI's stderr holds one line for bad input."""

    @wraps(function)
    def locked(*args: Any, **kwargs: Any) -> Any:
        library = logging.getLogger("transformers")
        with ENGINE_LOCK:
            level = library.level
            library.setLevel(max(logging.ERROR, library.getEffectiveLevel()))
            try:
                return function(*args, **kwargs)
            finally:
                library.setLevel(level)

    return cast(_Call, locked)


@lru_cache(maxsize=16)
@one_at_a_time
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
    except Exception as exc:  # only transformers' code runs in the try: whatever it raises, this config fails it
        if "Unrecognized configuration class" in str(exc):
            raise InputError(
                f"{key.model.name} ({key.model.model_type}) has no {key.task} head in transformers: "
                f"choose another --task ({', '.join(TASKS)})"
            ) from None
        import transformers

        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else "no message"
        raise InputError(
            f"transformers {transformers.__version__} cannot build {key.model.name} ({key.model.model_type}) from "
            f"this config ({type(exc).__name__}: {reason[:200]}): compare it with the model's published config.json"
        ) from None
    if key.model.config_dict.get("tie_word_embeddings") is False and config.tie_word_embeddings:
        _untie_output_head(model)
    model.train()
    return model


def _untie_output_head(model: nn.Module) -> None:
    """Give the output head its own weight, as the checkpoint does.

    transformers 5 ties every `_tied_weights_keys` entry through one flag, `tie_word_embeddings`, and T5, mT5
    and UMT5 configs force it to True whatever config.json says ("official weights have False serialized, but
    we have to tie always") so that the encoder's and decoder's token embeddings stay tied to `shared`. That
    ties `lm_head` too, although T5 v1.1 / mT5 / mt0 checkpoints store a separate `lm_head.weight`: mt0-large
    would count 975,825,920 instead of the 1,229,581,312 its checkpoint holds (peft's README: LoRA trains
    2,359,296 of 1,231,940,608).
    """
    head = model.get_output_embeddings()
    if head is not None and head.weight is model.get_input_embeddings().weight:
        head.weight = nn.Parameter(torch.empty_like(head.weight, device="meta"))


def fresh_copy(model: nn.Module, keep_blocks: dict[str, int] | None = None) -> nn.Module:
    """A deep copy of a meta skeleton, optionally keeping only the first N blocks of some block stacks."""
    with ENGINE_LOCK:
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


def is_head(name: str) -> bool:
    """Whether parameter or module `name` belongs to a sequence-classification head (new, so it trains)."""
    return name.split(".", maxsplit=1)[0] in CLASSIFIER_HEAD_NAMES


Signature = tuple[object, ...]


# Per-layer settings a config gives blocks of one class, which memory follows: sliding-window against global
# attention (Gemma 2/3's `is_sliding`, `layer_types` as `attention_type`: sliding layers take the masked path
# beyond the window) and layers without RoPE (SmolLM3's `no_rope_layers`, `use_rope`).
LAYER_SETTINGS = ("attention_type", "layer_type", "is_sliding", "use_rope")


def _signature(block: nn.Module, layer_settings: bool) -> Signature:
    """What makes two blocks interchangeable: class, parameter names and shapes (and, when asked, the
    `LAYER_SETTINGS` the block or its submodules hold)."""
    kind = None
    if layer_settings:
        kind = tuple((name, value) for m in block.modules() for name in LAYER_SETTINGS
                     if isinstance(value := getattr(m, name, None), str | bool | int))
    return (type(block).__name__, kind, *((name, tuple(p.shape)) for name, p in block.named_parameters()))


@dataclass(frozen=True)
class BlockStack:
    """A stack of transformer blocks and the kind of each block (blocks of one kind are interchangeable).

    `base` is the shortest prefix holding every kind (the copy every count starts from); `steps` are the
    (index, copies) pairs whose one-block growth `prefix index -> index + 1` measures the kind of block
    `index`, which `copies` more blocks beyond the base share. DeepSeek's first dense layers, T5's first
    block (it alone carries the relative-position bias) and interleaved MoE layers are simply other kinds.
    """

    name: str
    kinds: tuple[int, ...]

    def __post_init__(self) -> None:
        if not self.kinds or sorted(set(self.kinds)) != list(range(len(set(self.kinds)))):
            raise ValueError(f"stack {self.name}: kinds must number 0..n-1, got {self.kinds}")

    @property
    def depth(self) -> int:
        return len(self.kinds)

    @property
    def base(self) -> int:
        return max(self.kinds.index(kind) for kind in set(self.kinds)) + 1

    @property
    def left_out(self) -> dict[int, int]:
        """kind -> how many blocks of that kind lie beyond the base prefix."""
        beyond = self.kinds[self.base :]
        return {kind: beyond.count(kind) for kind in dict.fromkeys(beyond)}

    @property
    def steps(self) -> tuple[tuple[int, int], ...]:
        beyond = self.kinds[self.base :]
        seen: dict[int, tuple[int, int]] = {}
        for index, kind in enumerate(beyond, start=self.base):
            seen.setdefault(kind, (index, beyond.count(kind)))
        return tuple(seen.values())


def stack_plans(model: nn.Module, *, layer_settings: bool = False) -> tuple[BlockStack, ...]:
    """Top-level stacks of transformer blocks whose blocks repeat (a kind recurs beyond the base prefix).

    A stack is a ModuleList of at least 4 modules, not inside another stack; blocks are grouped into kinds by
    `_signature`. Stacks where every block is unique gain nothing from extrapolation and are left out.
    """
    stacks: list[BlockStack] = []
    for name, module in model.named_modules():
        if not isinstance(module, nn.ModuleList) or len(module) < 4:
            continue
        if any(name.startswith(f"{outer.name}.") for outer in stacks):
            continue
        numbering: dict[Signature, int] = {}
        kinds = tuple(numbering.setdefault(_signature(b, layer_settings), len(numbering)) for b in module)
        stack = BlockStack(name, kinds)
        if stack.base < stack.depth:
            stacks.append(stack)
    return tuple(stacks)


def block_stacks(model: nn.Module) -> dict[str, int]:
    """Top-level stacks whose blocks after the first are all of one kind (name -> depth), e.g. {'model.layers': 32}.

    For callers that extrapolate from "first N blocks" copies themselves; heterogeneous stacks (DeepSeek's dense
    then MoE layers) are left out here: `stack_plans` and `extrapolate` handle those exactly.
    """
    return {s.name: s.depth for s in stack_plans(model) if len(set(s.kinds[1:])) == 1}


Measure = Callable[[dict[str, int] | None], Sequence[int]]


@lru_cache(maxsize=16)
@one_at_a_time
def skeleton_stacks(key: SkeletonKey) -> tuple[BlockStack, ...]:
    """`stack_plans` of the cached skeleton of `key` (computed once: it reads every block's parameters)."""
    return stack_plans(skeleton(key), layer_settings=True)


def extrapolate(stacks: tuple[BlockStack, ...], measure: Measure) -> tuple[int, ...]:
    """The whole model's value of `measure` from copies that keep only a prefix of each of `stacks`.

    `measure(keep)` evaluates a copy keeping the first `keep[name]` blocks of each named stack (None: the whole
    model). Exact for any measure that is a sum over blocks plus the rest, when blocks of one kind contribute
    the same (a count, bytes, elements): value = m(base) + sum over kinds of copies x (m(i + 1) - m(i)).
    """
    if not stacks:
        return tuple(measure(None))
    seen: dict[tuple[tuple[str, int], ...], tuple[int, ...]] = {}

    def at(keep: dict[str, int]) -> tuple[int, ...]:
        key = tuple(keep.items())
        if key not in seen:
            seen[key] = tuple(measure(keep))
        return seen[key]

    base = {stack.name: stack.base for stack in stacks}
    total = list(at(base))
    for stack in stacks:
        for index, copies in stack.steps:
            low, high = at({**base, stack.name: index}), at({**base, stack.name: index + 1})
            total = [t + copies * (h - lo) for t, h, lo in zip(total, high, low, strict=True)]
    return tuple(total)


def linear_module_names(model: nn.Module) -> list[str]:
    """Distinct leaf names of the linear-like layers (what --targets can name)."""
    names = {name.split(".")[-1] for name, m in model.named_modules() if _is_linear_like(m) and name}
    return sorted(names)


def _is_linear_like(module: nn.Module) -> bool:
    # GPT-2 uses transformers' Conv1D, a linear layer with transposed weights.
    return isinstance(module, nn.Linear | nn.Embedding) or type(module).__name__ == "Conv1D"


def _short_stacks(model: nn.Module) -> tuple[BlockStack, ...]:
    """Block stacks of a truncated copy (the memory trace keeps a few blocks): top-level ModuleLists of one block
    class, however short, each block counted as its own kind."""
    stacks: list[BlockStack] = []
    for name, module in model.named_modules():
        if not isinstance(module, nn.ModuleList) or not len(module) or len({type(b) for b in module}) != 1:
            continue
        if not any(name.startswith(f"{outer.name}.") for outer in stacks):
            stacks.append(BlockStack(name, tuple(range(len(module)))))
    return tuple(stacks)


def top_blocks(model: nn.Module, count: int) -> list[tuple[str, nn.Module]]:
    """The last `count` blocks of the model's output-side stack (the decoder for encoder-decoders)."""
    stacks = stack_plans(model) or _short_stacks(model)
    if not stacks:
        raise InputError("partial fine-tuning needs a stack of transformer blocks, and none was found in this model")
    name, depth = stacks[-1].name, stacks[-1].depth
    if count > depth:
        raise InputError(f"--top-layers {count} exceeds the model's {depth} blocks; choose 1 to {depth}")
    stack = model.get_submodule(name)
    return [(f"{name}.{i}", stack[i]) for i in range(depth - count, depth)]
