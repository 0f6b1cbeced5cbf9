"""The overhead term: memory a training step needs beyond weights, gradients, optimizer states and activations.

These constants are priors from published and typical values, not fits: the CUDA context with cuBLAS/cuDNN
workspaces takes about 0.3-0.5 GiB per process on A100/H100 with torch 2.x; PyTorch's caching allocator
reserves 5-10% above the allocated peak through block rounding and fragmentation. Refit them from the
measurements `benchmarks/gpu_memory_probe.py` writes to `data/gpu_measurements/` (reserved minus predicted
allocated peak, regressed on the allocated peak) and change only this block.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.units import GIB


@dataclass(frozen=True)
class OverheadPriors:
    """All overhead constants in one place (see the module docstring for where they come from)."""

    cuda_context: int = int(0.45 * GIB)  # CUDA context + cuBLAS/cuDNN workspaces, per process
    fragmentation: float = 0.06  # allocator reserve/fragmentation, as a share of the allocated peak


PRIORS = OverheadPriors()


def overhead_bytes(allocated: int, transient: int, priors: OverheadPriors = PRIORS) -> int:
    """Context + the largest transient of backward + fragmentation on everything allocated at the peak."""
    return int(priors.cuda_context + transient + priors.fragmentation * (allocated + transient))
