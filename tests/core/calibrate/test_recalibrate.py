"""Recalibration: measured/predicted ratios per (device, model family, method family) correct later estimates."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from core.calibrate.recalibrate import Calibration, calibrate
from core.memory.overhead import OVERHEAD

H100 = "NVIDIA H100 80GB HBM3"


def row(method: str, measured: int | None, predicted: int | None, component: str = "peak_allocated", *,
        device: str = H100, family: str = "llama", status: str = "ok") -> dict:
    return {"method_id": method, "measured_bytes": measured, "predicted_bytes": predicted, "device": device,
            "status": status, "config": json.dumps({"component": component, "model_family": family})}


def test_peak_ratio_scales_all_but_the_cuda_context() -> None:
    frame = pd.DataFrame([row("lora", 110, 100), row("dora", 130, 100), row("lora", 120, 100)])
    calibration = Calibration.from_measurements(frame)
    total = OVERHEAD.cuda_context + 1000
    result = calibrate({"total": total, "activations": 400}, calibration, device="nvidia h100 80gb  HBM3",
                       model_family="llama", method_id="lora")
    assert result is not None
    assert result.group.n == 3 and result.group.ratio == pytest.approx(1.2)  # lora and dora: both low-rank
    assert result.calibrated_total == OVERHEAD.cuda_context + 1200  # the CUDA context is not scaled
    assert result.group.error == pytest.approx(0.2)
    assert "3 runs" in result.label and "20.0%" in result.label


def test_activation_ratio_from_any_device_scales_only_activations() -> None:
    frame = pd.DataFrame([row("fft", 90, 100, "activations", device="cpu (x86_64, 2 cores)")])
    result = calibrate({"total": 1000, "activations": 400}, Calibration.from_measurements(frame), device=H100,
                       model_family="llama", method_id="fft")
    assert result is not None and result.group.device == "any"
    assert result.calibrated_total == 1000 - 400 + 360


def test_no_evidence_no_calibration() -> None:
    frame = pd.DataFrame([row("lora", 110, 100), row("fft", None, 100, status="failed"),
                          row("ia3", 100, None), row("lora", 100, 100, family="gpt2")])
    calibration = Calibration.from_measurements(frame)
    for method, family in (("fft", "llama"), ("ia3", "llama"), ("prompt_tuning", "llama"), ("lora", "qwen2")):
        assert calibrate({"total": 1, "activations": 1}, calibration, device=H100, model_family=family,
                         method_id=method) is None
    assert len(calibration.table()) == 2
