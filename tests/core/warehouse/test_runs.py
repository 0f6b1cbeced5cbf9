"""Calibration runs and memory measurements: validated records, and run folders the app ingests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from core.calibrate.runfolder import RunFolder
from core.calibrate.runner import store
from core.errors import InputError
from core.warehouse import CalibrationRun, MemoryMeasurement, Warehouse, calibration_runs, memory_measurements

from .conftest import count, good_row, table_counts, write_csv

VERSIONS = {"torch": "2.5.1", "peft": "0.13.2"}


def _run(**changes: Any) -> CalibrationRun:
    fields: dict[str, Any] = {
        "run_id": "run-1", "model": "openai-community/gpt2", "method_id": "lora", "config": {"rank": 8},
        "device": "NVIDIA H100", "library_versions": VERSIONS, "quantity": "trainable_params",
        "measured": 811008.0, "predicted": 811008.0,
    }  # fmt: skip
    fields.update(changes)
    return CalibrationRun(**fields)


def test_calibration_runs_and_measurements_are_stored(wh: Warehouse) -> None:
    wh.add_calibration_run(_run())
    wh.add_calibration_run(_run(run_id="run-2", status="failed", measured=None, failure_reason="CUDA out of memory"))
    measurement_id = wh.add_memory_measurement(MemoryMeasurement(
        model="openai-community/gpt2", method_id="lora", config={"rank": 8, "batch": 4}, device="NVIDIA H100",
        library_versions=VERSIONS, measured_bytes=2_000_000_000, predicted_bytes=1_900_000_000, run_id="run-1",
    ))  # fmt: skip
    assert measurement_id == 1
    runs = calibration_runs(wh).set_index("run_id")
    assert runs.loc["run-2", "status"] == "failed" and runs.loc["run-2", "failure_reason"] == "CUDA out of memory"
    assert json.loads(runs.loc["run-1", "config"]) == {"rank": 8}
    assert json.loads(runs.loc["run-1", "library_versions"]) == VERSIONS
    memory = memory_measurements(wh)
    assert memory.loc[0, "measured_bytes"] == 2_000_000_000 and memory.loc[0, "run_id"] == "run-1"
    stats = wh.stats()
    assert (stats["calibration_runs"], stats["memory_measurements"]) == (2, 1)
    with pytest.raises(InputError, match="'run-1' is already recorded"):
        wh.add_calibration_run(_run())


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"method_id": "turbo"}, "unknown method 'turbo'"),
        ({"status": "failed"}, "status 'failed' needs a failure_reason"),
        ({"failure_reason": "oops"}, "status 'ok' has no failure_reason"),
        ({"status": "done"}, "status 'done' is not one of ok, failed, skipped"),
        ({"measured": None}, "status 'ok' needs a measured value"),
        ({"config": {"dtype": object()}}, "config must be JSON-serialisable"),
        ({"device": " "}, "device is empty"),
        ({"run_id": ""}, "needs a run_id"),
    ],
)
def test_calibration_runs_are_validated(changes: dict[str, object], message: str) -> None:
    with pytest.raises(InputError, match=message):
        _run(**changes)


def test_memory_measurements_are_validated() -> None:
    with pytest.raises(InputError, match="measured_bytes must be a whole, non-negative number"):
        MemoryMeasurement(model="m", method_id="lora", config={}, device="cpu", library_versions={},
                          measured_bytes=-1)  # fmt: skip
    with pytest.raises(InputError, match="status 'ok' needs measured_bytes"):
        MemoryMeasurement(model="m", method_id="lora", config={}, device="cpu", library_versions={})


def _run_folder(folder: Path, *, complete: bool = True) -> Path:
    folder.mkdir()
    runs = [{"run_id": "ext-1", "model": "gpt2", "method_id": "lora", "config": {"rank": 8}, "device": "cpu",
             "library_versions": VERSIONS, "quantity": "gap_points", "measured": -0.4, "predicted": -0.6}]  # fmt: skip
    (folder / "calibration_runs.json").write_text(json.dumps(runs))
    memory = [{"run_id": "ext-1", "model": "gpt2", "method_id": "lora", "config": json.dumps({"rank": 8}),
               "device": "cpu", "library_versions": json.dumps(VERSIONS), "measured_bytes": 123456,
               "predicted_bytes": 120000, "status": "ok", "failure_reason": None}]  # fmt: skip
    pq.write_table(pa.Table.from_pylist(memory), folder / "memory_measurements.parquet")
    results = [{**good_row(source="Calibration", method=m, value=v), "seed": "7"}
               for m, v in (("Full fine-tuning", "90.0"), ("LoRA r=8", "89.6"))]  # fmt: skip
    write_csv(folder / "results.csv", results, [*good_row(), "seed"])
    if complete:
        (folder / "COMPLETE").write_text("")
    return folder


def test_a_run_folder_is_ingested_once(wh: Warehouse, tmp_path: Path) -> None:
    folder = _run_folder(tmp_path / "run-ext-1")
    report = wh.ingest_run_folder(folder)
    assert (report.calibration_runs, report.memory_measurements, report.results) == (1, 1, 2)
    stored = (
        wh.cursor()
        .execute("SELECT method_id, seed, origin FROM results WHERE origin = 'calibration' ORDER BY method_id")
        .fetchall()
    )
    assert stored == [("fft", 7, "calibration"), ("lora", 7, "calibration")]
    gap = wh.cursor().execute("SELECT gap FROM pairs WHERE source = 'Calibration'").fetchall()
    assert gap == [(pytest.approx(-0.4),)]
    before = table_counts(wh)
    again = wh.ingest_run_folder(folder)
    assert again.skipped and "already ingested" in str(again)
    assert table_counts(wh) == before


def test_an_unfinished_run_folder_waits(wh: Warehouse, tmp_path: Path) -> None:
    folder = _run_folder(tmp_path / "run", complete=False)
    with pytest.raises(InputError, match="no COMPLETE marker: the run is unfinished"):
        wh.ingest_run_folder(folder)
    assert count(wh, "calibration_runs") == 0


def test_a_bad_record_in_a_run_folder_writes_nothing(wh: Warehouse, tmp_path: Path) -> None:
    folder = _run_folder(tmp_path / "run")
    runs = json.loads((folder / "calibration_runs.json").read_text())
    runs.append({**runs[0], "run_id": "ext-2", "status": "failed"})
    (folder / "calibration_runs.json").write_text(json.dumps(runs))
    before = table_counts(wh)
    with pytest.raises(InputError, match="calibration_runs.json record 2: .*needs a failure_reason"):
        wh.ingest_run_folder(folder)
    assert table_counts(wh) == before and count(wh, "calibration_runs") == 0


def test_pending_run_folders_are_picked_up_once(wh: Warehouse, tmp_path: Path) -> None:
    runs_root = tmp_path / "runs"
    runs_root.mkdir()
    _run_folder(runs_root / "20260101-000000-aaaaaa")
    _run_folder(runs_root / "20260101-000001-bbbbbb", complete=False)  # still running: left alone
    reports = wh.ingest_pending(runs_root)
    assert [(r.calibration_runs, r.memory_measurements, r.results) for r in reports] == [(1, 1, 2)]
    assert wh.ingest_pending(runs_root) == []  # idempotent: its content hash is recorded
    assert wh.ingest_pending(tmp_path / "no-runs-yet") == []


def test_the_calibrate_cli_stores_a_finished_folder_or_says_why_not(
    wh: Warehouse, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = RunFolder(_run_folder(tmp_path / "run"))
    monkeypatch.setenv("TUNEWISE_READ_ONLY", "1")
    refused = store(folder)
    assert refused.startswith("not stored in the warehouse (cannot ingest run folder")
    assert refused.endswith(f"`python -m core warehouse ingest {folder.path}` stores it later")
    assert count(wh, "calibration_runs") == 0
    monkeypatch.setenv("TUNEWISE_READ_ONLY", "0")
    stored = store(folder)
    assert stored == f"stored in the warehouse {wh.location}: {folder.path}: 1 run, 1 method, 1 measurement, 2 results"
    assert count(wh, "calibration_runs") == 1
