"""TUNEWISE_READ_ONLY=1: reads work, every write path refuses up front with a clear message."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import pytest

from core.errors import InputError, ReadOnlyError
from core.warehouse import CalibrationRun, MemoryMeasurement, Warehouse, open_warehouse, pairs

from .conftest import count, good_row, write_csv

RUN = CalibrationRun(
    run_id="r1", model="gpt2", method_id="lora", config={"rank": 8}, device="cpu",
    library_versions={"peft": "0.13"}, quantity="trainable_params", measured=1.0, predicted=1.0,
)  # fmt: skip
MEASUREMENT = MemoryMeasurement(
    model="gpt2", method_id="lora", config={}, device="cpu", library_versions={}, measured_bytes=10
)


@pytest.fixture
def read_only(seeded_copy: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Warehouse]:
    monkeypatch.setenv("TUNEWISE_READ_ONLY", "1")
    warehouse = open_warehouse()
    yield warehouse
    warehouse.close()


WRITES: dict[str, Callable[[Warehouse, Path], object]] = {
    "import": lambda wh, tmp: wh.import_file(write_csv(tmp / "good.csv", [good_row()])),
    "add results": lambda wh, tmp: wh.add_results(pd.DataFrame([good_row()])),
    "add a calibration run": lambda wh, tmp: wh.add_calibration_run(RUN),
    "add a memory measurement": lambda wh, tmp: wh.add_memory_measurement(MEASUREMENT),
    "ingest run folder": lambda wh, tmp: wh.ingest_run_folder(tmp),
}


@pytest.mark.parametrize("action", list(WRITES))
def test_every_write_path_refuses_clearly(read_only: Warehouse, tmp_path: Path, action: str) -> None:
    with pytest.raises(ReadOnlyError) as caught:
        WRITES[action](read_only, tmp_path)
    message = str(caught.value)
    assert message.startswith(f"cannot {action}")
    assert "read-only (TUNEWISE_READ_ONLY=1" in message
    assert count(read_only, "results") == 1784


def test_reads_and_exports_still_work(read_only: Warehouse, tmp_path: Path) -> None:
    assert read_only.read_only
    assert read_only.stats()["read_only"] is True
    assert len(pairs(read_only)) == 1119
    assert read_only.export("claims", tmp_path / "claims.csv").read_text().count("\n") == 20


def test_read_only_without_a_warehouse_says_how_to_create_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TUNEWISE_READ_ONLY", "1")
    with pytest.raises(InputError, match="no warehouse at .*python -m core warehouse init"):
        open_warehouse()


def test_read_only_switch_must_be_a_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TUNEWISE_READ_ONLY", "maybe")
    with pytest.raises(InputError, match="TUNEWISE_READ_ONLY='maybe' is not a switch"):
        open_warehouse()


def test_argument_overrides_the_environment(seeded_copy: Path) -> None:
    with open_warehouse(read_only=True) as wh, pytest.raises(ReadOnlyError, match="opened with read_only=True"):
        wh.add_calibration_run(RUN)
