"""What a traced step depends on (`StepSpec`) and what its timeline records (categories, phases), without torch.

The warm path of an estimate reads a cached profile by its `StepSpec` and lays its per-phase bytes out by these
categories; importing `core.memory.step` or `core.memory.trace` for them would import torch, which only a
cache miss (a trace) needs; those modules import them from here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

CATEGORIES: tuple[str, ...] = ("weights", "gradients", "optimizer", "activations", "temporaries")
PHASES: tuple[str, ...] = ("forward", "backward", "clip", "optimizer", "zero_grad")
WEIGHTS, GRADIENTS, OPTIMIZER, ACTIVATIONS, TEMPORARIES = range(len(CATEGORIES))


@dataclass(frozen=True)
class StepSpec:
    """What the traced step depends on besides the batch shape (sharding and GPU count enter later)."""

    precision: str
    optimizer: str
    attention: str
    checkpointing: bool
    quantization: str
    kernels: str = "cuda"
    reentrant: bool = False  # checkpointing through torch's reentrant autograd.Function (use_reentrant=True)

    def __post_init__(self) -> None:
        if self.kernels not in ("cuda", "cpu"):
            raise ValueError(f"kernels must be cuda or cpu, not {self.kernels!r}")
        if self.reentrant and not self.checkpointing:
            raise ValueError("reentrant checkpointing needs checkpointing on")

    @property
    def compute_dtype(self) -> torch.dtype:
        """The dtype the base computes in (read by the trace only, so torch is imported here)."""
        import torch

        half = {"bf16": torch.bfloat16, "fp16": torch.float16}
        return torch.float32 if self.precision == "fp32" else half[self.precision[:4]]

    @property
    def mixed(self) -> bool:
        return self.precision.endswith("-mixed")
