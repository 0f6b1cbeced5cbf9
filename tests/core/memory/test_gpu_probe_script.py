"""The GPU measurement script refuses clearly where there is no CUDA (this suite runs on CPU machines)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[3] / "benchmarks" / "gpu_memory_probe.py"


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA machine runs the real measurement")
def test_without_cuda_it_exits_with_a_message() -> None:
    done = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 1
    assert "CUDA is not available" in done.stderr
