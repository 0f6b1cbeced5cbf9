"""The choices a calibration run offers, in a module without torch, so `python -m core calibrate --help` and the
page's widgets list them without loading the training stack (`core.calibrate.spec` validates against them)."""

from __future__ import annotations

DEVICES: tuple[str, ...] = ("auto", "cpu", "cuda")
INITS: tuple[str, ...] = ("random", "pretrained")
DEFAULT_METHODS = "fft,lora,ia3,prompt_tuning"
