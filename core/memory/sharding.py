"""Data-parallel sharding modes as option records, as `core.registry.Method` is for methods: what each mode
partitions across the GPUs and how it gathers weights, read by the memory arithmetic, the time model, the advice
and the setup's checks (no module spells a mode's behaviour as a list of mode names).

Sources: ZeRO (Rajbhandari et al. 2019, §5: stage 1 partitions optimizer states, 2 adds gradients, 3 adds
parameters); PyTorch FSDP full sharding partitions all three, gathers one unit (a block, and the root unit of
what no block holds) at a time, and keeps the root unit gathered through forward and backward.
"""

from __future__ import annotations

from dataclasses import dataclass

PARTITIONABLE: tuple[str, ...] = ("optimizer", "gradients", "weights")
GATHERS: tuple[str, ...] = ("none", "per-module", "per-unit")


@dataclass(frozen=True)
class Sharding:
    """One mode: its id and name, the categories it partitions, and how it gathers partitioned weights
    ('per-module': DeepSpeed ZeRO-3 gathers each module on use; 'per-unit': FSDP gathers a wrapped unit)."""

    id: str
    name: str
    partitions: tuple[str, ...] = ()
    gathers: str = "none"

    def __post_init__(self) -> None:
        if any(p not in PARTITIONABLE for p in self.partitions):
            raise ValueError(f"{self.id}: partitions must be among {PARTITIONABLE}, got {self.partitions}")
        if self.gathers not in GATHERS or (self.gathers != "none") != ("weights" in self.partitions):
            raise ValueError(f"{self.id}: a mode gathers weights exactly when it partitions them")

    @property
    def shards(self) -> bool:
        """Whether it partitions anything (plain DDP does not)."""
        return bool(self.partitions)

    @property
    def shards_gradients(self) -> bool:
        return "gradients" in self.partitions

    @property
    def shards_weights(self) -> bool:
        """Whether parameters are partitioned (and so can be offloaded: `--offload params`)."""
        return "weights" in self.partitions

    @property
    def buckets_gradients(self) -> bool:
        """ZeRO-2: gradients are partitioned but reduced through a bucket of the full gradients' dtype."""
        return self.shards_gradients and not self.shards_weights

    @property
    def keeps_root_gathered(self) -> bool:
        """FSDP keeps its root unit (embeddings, final norm, head) gathered from the forward's start to the
        backward's end (reshard_after_forward is off for the root)."""
        return self.gathers == "per-unit"


SHARDINGS: dict[str, Sharding] = {mode.id: mode for mode in (
    Sharding("none", "data parallel (DDP)"),
    Sharding("zero1", "ZeRO-1", ("optimizer",)),
    Sharding("zero2", "ZeRO-2", ("optimizer", "gradients")),
    Sharding("zero3", "ZeRO-3", ("optimizer", "gradients", "weights"), "per-module"),
    Sharding("fsdp", "FSDP", ("optimizer", "gradients", "weights"), "per-unit"),
)}
