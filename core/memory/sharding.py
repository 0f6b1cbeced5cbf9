"""Per-GPU model states under data parallelism, ZeRO and FSDP (Rajbhandari et al. 2019, "ZeRO", §5).

Stage 1 partitions optimizer states, stage 2 also gradients, stage 3 (and FSDP full sharding) also the
parameters, across the N data-parallel GPUs. Only trained parameters have gradients and optimizer states, so
a frozen base costs its weights alone. DeepSpeed's own estimator (`estimate_zero3_model_states_mem_needs`)
charges every parameter 16-18 bytes as if all were trained, which overstates PEFT by an order of magnitude.
Offloading moves the optimizer states (and with them the fp32 master copy of mixed precision), or with
`params` also the partitioned parameters, to CPU memory (ZeRO-Offload / ZeRO-Infinity, FSDP CPU offload).
"""

from __future__ import annotations

from core.memory.setup import TrainingSetup
from core.memory.states import ModelStates


def shard(states: ModelStates, setup: TrainingSetup, *, master_bytes: int = 0, gpus: int | None = None) -> ModelStates:
    """The states one GPU holds; `master_bytes` is the part of `weights` that is a mixed-precision fp32 master
    copy (it moves with the optimizer when that is offloaded); `gpus` overrides the setup's GPU count."""
    n = gpus or setup.gpus
    weights, gradients, optimizer = states.weights, states.gradients, states.optimizer
    if setup.sharding == "none":
        return states
    optimizer = optimizer / n
    if setup.sharding in ("zero2", "zero3", "fsdp"):
        gradients = gradients / n
    if setup.sharding in ("zero3", "fsdp"):
        weights = weights / n
        master_bytes = int(master_bytes / n)
    if setup.offload in ("optimizer", "params"):
        optimizer = 0
        weights -= master_bytes
    if setup.offload == "params":
        weights = 0
    return ModelStates(int(weights), int(gradients), int(optimizer))


def gather_bytes(block_params: int, elem: int, setup: TrainingSetup) -> int:
    """ZeRO-3/FSDP gather one block's full parameters to compute it, and prefetch the next: two blocks."""
    return 2 * block_params * elem if setup.sharding in ("zero3", "fsdp") else 0
