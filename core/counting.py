"""Exact trainable-parameter counts per (model, head, method), and the built model's shape that the time model
reads, kept in memory and in the disk cache so that a warm estimate never imports torch, transformers or peft.

Counting builds the real model class on the meta device and applies peft to it (`core.peft_counts`): about 7 s
of importing peft, transformers and torch and seconds of building, for a handful of numbers. Those numbers are
stored in the cache of `core.memory.cache`, keyed by the model's name and config JSON, the head, the method's
knobs, the installed torch, transformers and peft versions and a hash of the counting code's source files, and
read back in milliseconds. A refusal (`InputError`, `NotApplicableError`: a method that trains nothing on this
model, a --rank larger than a layer) is stored too and raised again with the same message; one for a missing
package (`MissingPackageError`) only while the same packages are installed. Models whose code comes from their
own folder (`trust_remote_code`) are never stored: their code is not part of the key.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from core.errors import InputError, MissingPackageError, NotApplicableError
from core.memory import cache
from core.registry import MethodChoice
from core.skeleton_key import SkeletonKey

_CORE = Path(__file__).resolve().parent
# What transformers names a learned absolute position table (GPT-2 / GPT-Neo, BERT-likes, OPT and BART).
POSITION_TABLES = frozenset({"wpe", "position_embeddings", "embed_positions"})
# The code a stored count depends on: editing any of it counts again.
COUNTING_SOURCES: tuple[Path, ...] = tuple(
    _CORE / name
    for name in ("counting.py", "peft_counts.py", "apply.py", "skeleton.py", "skeleton_key.py", "registry.py",
                 "models.py")
)
_REFUSALS: dict[str, type[InputError]] = {
    error.__name__: error for error in (InputError, NotApplicableError, MissingPackageError)
}


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


@dataclass(frozen=True)
class ModelShape:
    """The built config's depth and width (`num_hidden_layers`, `hidden_size`; 0 where it has none), which the
    FLOPs per token read, and the parameters outside the block stacks (embeddings, final norms, heads; tied
    weights once), which FSDP's root unit holds, with the largest of those modules, which ZeRO-3 gathers on its
    own (a 256k-vocabulary embedding outweighs a block)."""

    layers: int
    width: int
    root_params: int
    largest_root_params: int
    learned_positions: int = 0  # tokens a learned absolute position table can index (0: RoPE, ALiBi, relative)
    fused_expert_params: int = 0  # parameters of 3-D or larger tensors (an MoE's fused experts): never nn.Linear


@lru_cache(maxsize=1024)
def count_parameters(key: SkeletonKey, choice: MethodChoice) -> ParameterCount:
    """Total, trainable, share and saved bytes for `choice` on the model of `key` (cached: both are frozen)."""
    record = _remembered(key, {"record": "count", "choice": repr(choice)}, lambda: _measured_count(key, choice))
    return ParameterCount(**{**record, "targeted_modules": tuple(record["targeted_modules"])})


@lru_cache(maxsize=64)
def model_shape(key: SkeletonKey) -> ModelShape:
    """Depth and width of the model of `key` as its built transformers config gives them (cached)."""
    return ModelShape(**_remembered(key, {"record": "shape"}, lambda: _measured_shape(key)))


def _measured_count(key: SkeletonKey, choice: MethodChoice) -> dict[str, Any]:
    from core.peft_counts import measure_count

    return asdict(measure_count(key, choice))


def _measured_shape(key: SkeletonKey) -> dict[str, int]:
    from core.skeleton import ENGINE_LOCK, skeleton, skeleton_stacks

    with ENGINE_LOCK:  # no copy may cut the skeleton's blocks while they are read
        model = skeleton(key)
        config = model.config
        seen = {id(p) for stack in skeleton_stacks(key) for p in model.get_submodule(stack.name).parameters()}
        per_module = []  # each module's own parameters outside the blocks, a tied weight with its first module
        for module in model.modules():
            own = [p for p in module.parameters(recurse=False) if id(p) not in seen]
            seen |= {id(p) for p in own}
            per_module.append(sum(p.numel() for p in own))
        positions = _learned_positions(model)
    return {"layers": int(getattr(config, "num_hidden_layers", 0) or 0),
            "width": int(getattr(config, "hidden_size", 0) or 0),
            "root_params": sum(per_module), "largest_root_params": max(per_module, default=0),
            "learned_positions": positions,
            "fused_expert_params": sum(p.numel() for p in model.parameters() if p.dim() >= 3)}


def _learned_positions(model: Any) -> int:
    """The fewest token positions any learned absolute position table of `model` can index: its rows less the
    ones before the first position (OPT's and BART's `offset` of 2; RoBERTa's padding index and the row before
    it). GPT-2's `wpe`, BERT's `position_embeddings`, OPT's and BART's `embed_positions`; a vision tower's
    patch table (`position_embedding`) is not one."""
    from torch import nn

    rows = [module.num_embeddings - getattr(module, "offset", 0)
            - (module.padding_idx + 1 if module.padding_idx is not None else 0)
            for name, module in model.named_modules()
            if isinstance(module, nn.Embedding) and name.rsplit(".", 1)[-1] in POSITION_TABLES]
    return min(rows, default=0)


def _remembered(key: SkeletonKey, what: dict[str, str], derive: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """`derive()`'s JSON record for `key`, read from the disk cache when it holds one (nothing heavy is imported
    then), else derived and stored; a refusal is stored as such and raised again with its message."""
    model = key.model
    name = None if model.trust_remote_code else cache.record_name(
        what["record"], COUNTING_SOURCES, **{k: v for k, v in what.items() if k != "record"}, model=model.name,
        config=model.config_json, task=key.task, labels=key.num_labels)  # fmt: skip
    record = cache.load_record(name) if name else None
    if record is None or not _current(record):
        try:
            record = {"value": derive()}
        except InputError as exc:
            if name and type(exc) in _REFUSALS.values():
                cache.store_record(name, _refusal(exc))
            raise
        if name:
            cache.store_record(name, record)
    if "refusal" in record:
        raise _REFUSALS[record["refusal"]](record["message"])
    return dict(record["value"])


def _refusal(exc: InputError) -> dict[str, str]:
    """The record of a refusal: its type and message (and, for a missing package, what was installed)."""
    record = {"refusal": type(exc).__name__, "message": str(exc)}
    if isinstance(exc, MissingPackageError):
        record["installed"] = cache.installed_packages()
    return record


def _current(record: dict[str, Any]) -> bool:
    """Whether a stored record holds: one this code writes, and a missing package's with the same packages
    installed as when it was stored."""
    if "value" in record:
        return True
    if record.get("refusal") == MissingPackageError.__name__:
        return record.get("installed") == cache.installed_packages()
    return record.get("refusal") in _REFUSALS
