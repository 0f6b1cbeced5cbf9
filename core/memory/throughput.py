"""Training FLOPs per token by method, and the time and cost of a run: compute, recomputation, the optimizer
step and communication for the chosen sharding.

Kaplan et al. 2020 ("Scaling Laws for Neural Language Models", §2.1): a forward pass costs about 2N FLOPs per
token and the backward pass 4N (2N for gradients with respect to activations, 2N with respect to weights),
6N in all for full fine-tuning. A frozen base needs no weight gradients, only the activation-gradient path,
so PEFT costs about 4N + 2·N_trained (the "2/3 of FFT" rule of thumb, Thinking Machines 2025, "LoRA Without
Regret"); partial fine-tuning stops the backward pass below its lowest trained block: 2N + 4·N_trained.
Attention adds 2·2·L·s·d per token forward (scores and weighted sum), three times that with backward.
Gradient checkpointing runs each block's forward again in backward (one more forward of what backward
reaches). Compute time is FLOPs / (GPUs x peak dense bf16 TFLOPS x MFU); MFU is an editable assumption.
The optimizer step is bound by memory bandwidth; gradients and (ZeRO-3/FSDP) weights travel between GPUs
over the catalogue's link, overlapped with compute as DDP's buckets and FSDP's prefetch do.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from core.counting import ParameterCount
from core.memory.gpus import Gpu
from core.memory.optimizers import OPTIMIZERS
from core.memory.setup import TrainingSetup
from core.memory.sharding import SHARDINGS
from core.registry import MethodChoice

# Bytes the optimizer step reads and writes per trained parameter (`core.memory.optimizers`, with its sources).
OPTIMIZER_BYTES: dict[str, int] = {o.id: o.step_bytes for o in OPTIMIZERS.values()}
# Bytes per frozen base weight as the collectives move it: the compute dtype, or the quantized storage.
QUANT_BYTES: dict[str, float] = {"nf4": 0.5, "nf4-dq": 0.5, "int8": 1.0}
NODE_GPUS = 8  # GPUs per node (DGX/HGX servers); collectives beyond one node cross the network
# One 400 Gb/s InfiniBand NDR adapter per GPU, as NVIDIA's DGX H100 reference design has: 50 GB/s per direction.
INTER_NODE_GBS = 50.0
HOST_LINK_GBS = 32.0  # PCIe 4.0 x16, one direction: how offloaded gradients and parameters move to and from the CPU
HOST_MEMORY_GBS = 100.0  # a server CPU's memory bandwidth, which an offloaded (CPU) optimizer step is bound by


@dataclass(frozen=True)
class StepTime:
    """Seconds of one optimizer step on one GPU, by part; `seconds` overlaps communication with compute."""

    compute_s: float
    recompute_s: float
    optimizer_s: float
    communication_s: float

    def __post_init__(self) -> None:
        if min(self.compute_s, self.recompute_s, self.optimizer_s, self.communication_s) < 0:
            raise ValueError("step time parts must not be negative")
        if self.recompute_s > self.compute_s:
            raise ValueError("recomputation is part of the compute time")

    @property
    def seconds(self) -> float:
        return max(self.compute_s, self.communication_s) + self.optimizer_s


@dataclass(frozen=True)
class TrainingTime:
    """FLOPs per token and, with a GPU and a dataset size, the steps, hours and dollars of the run. Where there
    is no time (no dataset size, no GPU, or the step does not fit) `note` says why and hours/dollars are absent."""

    flops_per_token: float
    mfu: float
    tokens: float | None = None
    steps: int | None = None
    step: StepTime | None = None
    hours: float | None = None
    usd: float | None = None
    note: str = ""

    def __post_init__(self) -> None:
        if (self.hours is None) != bool(self.note):
            raise ValueError("a training time has either hours or the reason it has none")
        if (self.hours is None) != (self.usd is None) or (self.hours is None) != (self.step is None):
            raise ValueError("hours, dollars and the step time come together")

    def to_dict(self) -> dict[str, Any]:
        """Only the figures that exist: no hours or dollars for a run that has none, the reason instead."""
        out: dict[str, Any] = {"flops_per_token": self.flops_per_token, "mfu": self.mfu}
        for name in ("tokens", "steps", "hours", "usd"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        if self.step is not None:
            out["step"] = asdict(self.step) | {"seconds": self.step.seconds}
        if self.note:
            out["note"] = self.note
        return out


def _forward_flops(choice: MethodChoice, count: ParameterCount, attention_forward: float) -> float:
    """One forward of what backward reaches (what checkpointing recomputes): the top blocks for partial FT."""
    scope = choice.spec.trains.scope if choice.spec.trains is not None else ""
    if scope == "top_blocks":
        return 2 * count.trainable_params
    return 2 * count.total_params + attention_forward


def flops_per_token(choice: MethodChoice, count: ParameterCount, *, layers: int, width: int, seq_len: int,
                    checkpointing: bool = False) -> float:
    """Training FLOPs per token (see the module docstring), recomputation included when checkpointing."""
    n, trained = count.total_params, count.trainable_params
    # Attention: 2·2·L·s·d forward (scores, weighted sum), x3 with backward (Kaplan et al. 2020, Table 1)
    attention_forward = 4 * layers * seq_len * width
    scope = choice.spec.trains.scope if choice.spec.trains is not None else ""
    if scope == "all":
        base = 6 * n + 3 * attention_forward
    elif scope == "top_blocks":
        base = 2 * n + 4 * trained + 3 * attention_forward
    else:
        base = 4 * n + 2 * trained + 3 * attention_forward
    # Full recomputation adds one forward per step (Korthikanti et al. 2022, "Reducing Activation Recomputation in
    # Large Transformer Models", §4: 8N instead of 6N for full fine-tuning, +1/3)
    return base + (recompute_flops_per_token(choice, count, layers=layers, width=width, seq_len=seq_len)
                   if checkpointing else 0.0)


def recompute_flops_per_token(choice: MethodChoice, count: ParameterCount, *, layers: int, width: int,
                              seq_len: int) -> float:
    """The extra forward gradient checkpointing runs in backward, per token."""
    return _forward_flops(choice, count, 4 * layers * seq_len * width)


def _bandwidth(gpu: Gpu, gpus: int) -> float:
    """Bytes per second a ring collective gets per GPU: the node's link, the network beyond one node."""
    gbs = gpu.link_gbs if gpus <= NODE_GPUS else min(gpu.link_gbs, INTER_NODE_GBS)
    return gbs * 1e9


def _grad_bytes(setup: TrainingSetup) -> int:
    """Bytes per trained gradient: fp32 under mixed precision and fp32, the half type under *-true."""
    return 2 if setup.precision.endswith("-true") else 4


def communication_bytes(count: ParameterCount, setup: TrainingSetup, quantization: str) -> float:
    """Bytes each GPU sends per optimizer step for its sharding mode (ring collectives move (n-1)/n of the buffer
    per pass). Rajbhandari et al. 2019 (ZeRO), §7: DDP's all-reduce is 2 passes over the gradients, ZeRO-1/2's
    reduce-scatter plus the parameters' all-gather the same volume, ZeRO-3/FSDP gathers every weight in forward
    and again in backward (for every accumulated micro-batch), then reduce-scatters the gradients (3 passes,
    1.5x DDP for full fine-tuning); gradients are reduced once per step (DDP's no_sync while accumulating)."""
    n = setup.gpus
    if n == 1:
        return 0.0
    ring = (n - 1) / n
    grads = count.trainable_params * _grad_bytes(setup)
    if SHARDINGS[setup.sharding].shards_weights:  # weights gathered in forward and again in backward
        weight = QUANT_BYTES.get(quantization, 4 if setup.compute_dtype == "fp32" else 2)
        return ring * (2 * setup.accumulation * count.total_params * weight + grads)
    return ring * 2 * grads


def step_time(per_token: float, recompute_per_token: float, count: ParameterCount, setup: TrainingSetup,
              gpu: Gpu, *, quantization: str, extra_tokens: int = 0) -> StepTime:
    """One optimizer step's parts on one GPU of `gpu` under `setup` (see the module docstring); `per_token`
    includes the recomputation `recompute_per_token` when the setup checkpoints."""
    tokens = setup.accumulation * setup.batch_size * (setup.seq_len + extra_tokens)
    rate = gpu.bf16_tflops * 1e12 * setup.mfu
    compute = tokens * per_token / rate
    recompute = tokens * recompute_per_token / rate if setup.gradient_checkpointing else 0.0
    shards = setup.gpus if SHARDINGS[setup.sharding].shards else 1
    trained = count.trainable_params / shards
    if setup.offload == "none":
        optimizer = trained * OPTIMIZER_BYTES[setup.optimizer] / (gpu.memory_gbs * 1e9)
    else:  # gradients down, parameters up over PCIe, the step itself on the CPU (ZeRO-Offload, Ren et al. 2021)
        optimizer = (trained * 2 * _grad_bytes(setup) / (HOST_LINK_GBS * 1e9)
                     + trained * OPTIMIZER_BYTES[setup.optimizer] / (HOST_MEMORY_GBS * 1e9))
    communication = communication_bytes(count, setup, quantization) / _bandwidth(gpu, setup.gpus)
    return StepTime(compute, recompute, optimizer, communication)


def training_time(per_token: float, recompute_per_token: float, count: ParameterCount, setup: TrainingSetup,
                  gpu: Gpu | None, *, quantization: str, fits: bool, extra_tokens: int = 0) -> TrainingTime:
    """Steps = sequences x epochs / (micro-batch x accumulation x GPUs), each step's time from `step_time`; no
    hours or dollars without a dataset size or a GPU, or when the step does not fit the GPU."""
    total = per_token + (recompute_per_token if setup.gradient_checkpointing else 0.0)
    if setup.dataset_tokens is None:
        return TrainingTime(total, setup.mfu, note="no dataset size: give the training tokens for time and cost")
    sequences = setup.dataset_tokens * setup.epochs / setup.seq_len
    tokens = sequences * (setup.seq_len + extra_tokens)
    steps = max(1, math.ceil(sequences / (setup.batch_size * setup.accumulation * setup.gpus)))
    if gpu is None:
        return TrainingTime(total, setup.mfu, tokens, steps, note="no GPU chosen: pick one for time and cost")
    if not fits:
        return TrainingTime(total, setup.mfu, tokens, steps,
                            note=f"does not fit {setup.gpus} x {gpu.id}: no time or cost for a run that cannot start")
    step = step_time(total, recompute_per_token, count, setup, gpu, quantization=quantization,
                     extra_tokens=extra_tokens)
    hours = steps * step.seconds / 3600
    return TrainingTime(total, setup.mfu, tokens, steps, step, hours, hours * setup.gpus * gpu.usd_per_hour)
