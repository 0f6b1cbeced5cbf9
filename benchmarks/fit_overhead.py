"""Fit the allocator constants of core/memory/overhead.py to the published reserved peaks and print them.

    python benchmarks/fit_overhead.py

Copy the printed `fragmentation` and `reserve` into `DeviceOverhead`; `bench_published_gpu.py --loo` scores the
fit without each row, so the error shown in docs/accuracy.md is not scored on its own fit.
"""

from __future__ import annotations

import sys
from pathlib import Path

from bench_published_gpu import estimate_rows, fit_allocator

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the project's `core`, run from anywhere

from core.units import GIB

if __name__ == "__main__":
    rows = estimate_rows()
    fragmentation, reserve = fit_allocator(rows)
    print(f"fitted on {len(rows)} runs: fragmentation = {fragmentation:.4f}, reserve = {reserve / GIB:.3f} GiB")
