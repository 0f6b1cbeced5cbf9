"""Recalibration scoped to where it was measured: GPU peaks correct only the same device class, model family and
method family, with n and spread shown; CPU probes check the activation model and correct nothing."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from core.calibrate.recalibrate import Calibration, calibrate, device_class
from core.memory.overhead import OVERHEAD

H100 = "NVIDIA H100 80GB HBM3"  # what torch.cuda.get_device_name says
CPU = "cpu (x86_64, 2 cores)"


def row(method: str, measured: int | None, predicted: int | None, component: str = "peak_allocated", *,
        device: str = H100, family: str = "llama", status: str = "ok") -> dict:
    return {"method_id": method, "measured_bytes": measured, "predicted_bytes": predicted, "device": device,
            "status": status, "config": json.dumps({"component": component, "model_family": family})}


def test_device_classes() -> None:
    assert device_class(H100) == device_class("NVIDIA H100 80GB SXM") == "H100-80GB"  # torch's and the catalogue's
    assert device_class("NVIDIA A100-SXM4-40GB") == "A100-40GB"
    assert device_class("NVIDIA A100-SXM4-80GB") == "A100-80GB"
    assert device_class("NVIDIA H100 PCIe") == "H100-PCIe"
    assert device_class(CPU) == device_class("cpu (arm64, 8 cores)") == "cpu"
    assert device_class("Some  Future GPU") == "some future gpu"


def test_a_gpu_peak_ratio_corrects_its_own_scope_with_n_and_spread() -> None:
    frame = pd.DataFrame([row("lora", 110, 100), row("dora", 130, 100), row("lora", 120, 100)])
    calibration = Calibration.from_measurements(frame)
    total = OVERHEAD.cuda_context + 1000
    result = calibrate({"total": total}, calibration, device="NVIDIA H100 80GB SXM", model_family="llama",
                       method_id="lora")
    assert result is not None
    assert result.group.n == 3 and result.group.ratio == pytest.approx(1.2)  # lora and dora: both low-rank
    assert (result.group.low, result.group.high) == (pytest.approx(1.1), pytest.approx(1.3))
    assert result.calibrated_total == OVERHEAD.cuda_context + 1200  # the CUDA context is not scaled
    assert result.label == ("calibrated x1.200 (median) from 3 measurements, measured/predicted 1.100-1.300 on "
                            "H100-80GB, llama models, low-rank methods")
    for device, family, method in (("NVIDIA A100-SXM4-80GB", "llama", "lora"), (H100, "qwen2", "lora"),
                                   (H100, "llama", "fft"), (H100, "llama", "ia3")):
        assert calibrate({"total": total}, calibration, device=device, model_family=family, method_id=method) is None
    assert calibration.uncalibrated_reason("NVIDIA A100-SXM4-80GB", "llama", "low-rank") == (
        "not calibrated: no measured GPU peak of llama models with low-rank methods on A100-80GB yet")


def test_cpu_probes_never_correct_gpu_estimates() -> None:
    frame = pd.DataFrame([row("fft", 90, 100, "activations", device=CPU), row("fft", 95, 100, "activations",
                                                                               device=CPU)])
    calibration = Calibration.from_measurements(frame)
    for device in (H100, CPU):
        assert calibrate({"total": 1000}, calibration, device=device, model_family="llama", method_id="fft") is None
    assert calibration.uncalibrated_reason(H100, "llama", "full").endswith(
        "on H100-80GB yet (the 2 CPU probe measurements check activations only)")
    table = calibration.table()
    assert table.to_dict("records") == [{
        "device": "cpu", "model family": "llama", "method family": "full", "used for":
        "checks the activation model only", "measurements": 2, "median measured/predicted": pytest.approx(0.925),
        "lowest": pytest.approx(0.9), "highest": pytest.approx(0.95)}]  # fmt: skip


def test_failed_and_unpredicted_rows_are_no_evidence() -> None:
    frame = pd.DataFrame([row("lora", 110, 100), row("fft", None, 100, status="failed"), row("ia3", 100, None)])
    calibration = Calibration.from_measurements(frame)
    assert [(g.method_family, g.n) for g in calibration.groups.values()] == [("low-rank", 1)]
    assert calibration.groups[("H100-80GB", "llama", "low-rank", "peak_allocated")].spread == (
        "1 measurement, measured/predicted 1.100")
