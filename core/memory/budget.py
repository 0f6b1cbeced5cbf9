"""The per-GPU memory breakdown, fit, time and cost of training one method: the engine's answer.

Everything that depends on batch, sequence, GPU count or GPU is arithmetic on cached pieces (the parameter
count, the model-state bytes and the activation polynomial), so re-estimating after such a change is cheap.
Memory is linear in the micro-batch, which gives the largest batch that fits in closed form.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

from core.counting import ParameterCount
from core.memory.activations import ActivationModel, activation_model
from core.memory.gpus import Gpu, find_gpu
from core.memory.layout import layout
from core.memory.overhead import overhead_bytes
from core.memory.setup import SHARDINGS, TrainingSetup
from core.memory.sharding import gather_bytes, shard
from core.memory.states import ModelStates, linear_stats, model_states
from core.memory.throughput import TrainingTime, flops_per_token, training_time
from core.registry import MethodChoice
from core.skeleton import SkeletonKey, skeleton

MAX_GPUS = 4096


@dataclass(frozen=True)
class MemoryBreakdown:
    """Bytes on one GPU at the training step's peak; `total` is the predicted peak (reserved) memory."""

    weights: int
    gradients: int
    optimizer: int
    activations: int
    overhead: int
    total: int = field(default=-1)

    def __post_init__(self) -> None:
        parts = (self.weights, self.gradients, self.optimizer, self.activations, self.overhead)
        if min(parts) < 0:
            raise ValueError(f"negative memory term in {parts}")
        if self.total == -1:
            object.__setattr__(self, "total", sum(parts))
        elif self.total != sum(parts):
            raise ValueError("total must be the sum of the terms")

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass(frozen=True)
class Fit:
    """Whether the step fits the GPU, with what headroom, the largest micro-batch at this length, and the fewest
    GPUs per sharding mode (None: does not fit at any count, e.g. plain data parallelism replicates)."""

    gpu: str
    gpu_memory: int
    fits: bool
    headroom: int
    max_batch_size: int
    min_gpus: dict[str, int | None]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class TrainingEstimate:
    """Memory, fit (with --gpu) and time/cost of one method under one training setup."""

    memory: MemoryBreakdown
    fit: Fit | None
    time: TrainingTime


@dataclass(frozen=True)
class _Pieces:
    """What an estimate is made of; batch, sequence, GPU count and GPU only enter through `breakdown`."""

    states: ModelStates
    master: int
    activations: ActivationModel
    block_params: int
    elem: int

    def breakdown(self, setup: TrainingSetup, *, batch_size: int | None = None,
                  gpus: int | None = None) -> MemoryBreakdown:
        b = batch_size or setup.batch_size
        per_gpu = shard(self.states, setup, master_bytes=self.master, gpus=gpus)
        activations = self.activations.bytes(b, setup.seq_len)
        transient = max(self.activations.logits_bytes(b, setup.seq_len), 0) + gather_bytes(
            self.block_params, self.elem, setup)
        allocated = per_gpu.weights + per_gpu.gradients + per_gpu.optimizer + activations
        return MemoryBreakdown(per_gpu.weights, per_gpu.gradients, per_gpu.optimizer, activations,
                               overhead_bytes(allocated, transient))


def pieces(key: SkeletonKey, choice: MethodChoice, count: ParameterCount, setup: TrainingSetup) -> _Pieces:
    """The cached-work part of an estimate (model states and the activation polynomial)."""
    states = model_states(key, choice, count, setup)
    master = count.trainable_params * 4 if setup.mixed and not choice.spec.is_peft else 0
    act = activation_model(key, choice, dtype=setup.compute_dtype, attention=setup.attention,
                           checkpointing=setup.gradient_checkpointing)
    elem = 4 if setup.precision == "fp32" else 2
    return _Pieces(states, master, act, linear_stats(key).block_params, elem)


def estimate_training(key: SkeletonKey, choice: MethodChoice, count: ParameterCount,
                      setup: TrainingSetup) -> TrainingEstimate:
    """Breakdown, fit and time for `choice` (raises NotApplicableError when it cannot be estimated)."""
    parts = pieces(key, choice, count, setup)
    memory = parts.breakdown(setup)
    gpu = find_gpu(setup.gpu, price=setup.gpu_price) if setup.gpu else None
    fit = _fit(parts, setup, gpu, memory) if gpu else None
    config = skeleton(key).config
    per_token = flops_per_token(choice, count, layers=int(getattr(config, "num_hidden_layers", 0) or 0),
                                width=int(getattr(config, "hidden_size", 0) or 0), seq_len=setup.seq_len)
    prompt = layout(key, choice).soft_prompt
    extra = prompt.tokens if prompt and prompt.peft_type != "PREFIX_TUNING" else 0
    return TrainingEstimate(memory, fit, training_time(per_token, setup, gpu, extra_tokens=extra))


def _fit(parts: _Pieces, setup: TrainingSetup, gpu: Gpu, memory: MemoryBreakdown) -> Fit:
    capacity = gpu.memory_bytes
    one = parts.breakdown(setup, batch_size=1).total
    per_sample = parts.breakdown(setup, batch_size=2).total - one
    max_batch = 0 if one > capacity else (capacity - one) // max(per_sample, 1) + 1
    return Fit(gpu.id, capacity, memory.total <= capacity, capacity - memory.total, int(max_batch),
               {mode: _min_gpus(parts, setup, mode, capacity) for mode in SHARDINGS})


def _min_gpus(parts: _Pieces, setup: TrainingSetup, mode: str, capacity: int) -> int | None:
    """Fewest GPUs whose per-GPU peak fits, at this micro-batch, under sharding `mode` (binary search)."""
    offload = setup.offload if mode != "none" and (setup.offload != "params" or mode in ("zero3", "fsdp")) else "none"
    if mode == "none":
        single = replace(setup, gpus=1, sharding="none", offload="none")
        return 1 if parts.breakdown(single).total <= capacity else None
    trial = replace(setup, gpus=2, sharding=mode, offload=offload)

    def fits(n: int) -> bool:
        return parts.breakdown(trial, gpus=n).total <= capacity

    if not fits(MAX_GPUS):
        return None
    low, high = 2, MAX_GPUS
    while low < high:
        mid = (low + high) // 2
        if fits(mid):
            high = mid
        else:
            low = mid + 1
    return low
