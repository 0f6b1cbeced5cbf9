"""Fixtures: private warehouse and runs folders, a tiny Llama config on disk, and generated data files.

Every test runs with TUNEWISE_WAREHOUSE and TUNEWISE_RUNS_DIR inside its tmp_path and with no fault injection
inherited, so nothing touches the user's data directory.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from core.calibrate.spec import CalibrationSpec
from core.models import resolve_model
from core.registry import MethodChoice
from tests.support.tiny import tiny_model

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("TUNEWISE_READ_ONLY", "TUNEWISE_PARQUET_ROOT", "FORCED_FAILURE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TUNEWISE_WAREHOUSE", str(tmp_path / "warehouse.duckdb"))
    monkeypatch.setenv("TUNEWISE_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return tmp_path


def write_tiny_config(folder: Path, family: str = "llama") -> Path:
    """The tiny random-init config of `family` (tests.support.tiny) as a config.json file."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"tiny-{family}.json"
    path.write_text(tiny_model(family).config_json, encoding="utf-8")
    return path


@pytest.fixture
def tiny_config(tmp_path: Path) -> Path:
    return write_tiny_config(tmp_path / "models")


def tiny_spec(config: Path, methods: Sequence[str] = ("fft",), **settings: object) -> CalibrationSpec:
    """A CPU probe spec of the tiny config (settings override the spec's defaults, e.g. time_budget_s=600)."""
    return CalibrationSpec(model=resolve_model(str(config)), methods=tuple(MethodChoice(m) for m in methods),
                           device="cpu", **settings)  # type: ignore[arg-type]


def classification_csv(path: Path, per_class: int = 8, labels: Sequence[str] = ("pos", "neg")) -> Path:
    """Separable two-class text: each label has its own words."""
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        for i in range(per_class):
            for label in labels:
                writer.writerow([f"{label} words number {i} " * 2, label])
    return path


def generation_jsonl(path: Path, rows: int = 12) -> Path:
    with path.open("w", encoding="utf-8") as handle:
        for i in range(rows):
            handle.write(json.dumps({"prompt": f"add {i} and 1:", "completion": f" {i + 1}"}) + "\n")
    return path


def run_cli(args: Sequence[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`python -m core calibrate ARGS` as a separate process, as the app starts it."""
    return subprocess.run(
        [sys.executable, "-m", "core", "calibrate", *args], cwd=ROOT, capture_output=True, text=True, check=False,
        env={**os.environ, **(env or {})}, timeout=600,
    )
