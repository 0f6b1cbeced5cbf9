"""Fixtures for the whole suite: no test touches the user's real warehouse; one seeded warehouse per session,
copied into a test's own folder where the test writes (`seeded_copy`, `wh`)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.warehouse import Warehouse, open_warehouse

SETTINGS = ("TUNEWISE_WAREHOUSE", "TUNEWISE_READ_ONLY", "TUNEWISE_MAX_IMPORT_MB", "TUNEWISE_PARQUET_ROOT")


@pytest.fixture(autouse=True)
def isolated_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private warehouse location for every test; no inherited TUNEWISE_* settings."""
    for name in SETTINGS:
        monkeypatch.delenv(name, raising=False)
    location = tmp_path / "warehouse.duckdb"
    monkeypatch.setenv("TUNEWISE_WAREHOUSE", str(location))
    # traced memory profiles: one folder per test run, shared by the xdist workers, never the user's cache
    monkeypatch.setenv("TUNEWISE_CACHE_DIR", str(tmp_path.parent.parent / "trace-cache"))
    # the suite already runs one test process per core: estimates trace in their own process (the parallel trace
    # workers are tested on their own, tests/core/memory/test_ahead.py); the e2e servers inherit this
    monkeypatch.setenv("TUNEWISE_TRACE_WORKERS", "1")
    return location


@pytest.fixture(scope="session")
def seeded_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A warehouse created and seeded once per session (read it only through copies or read-only)."""
    path = tmp_path_factory.mktemp("seeded") / "seeded.duckdb"
    open_warehouse(path, read_only=False).close()
    return path


@pytest.fixture
def seeded_copy(seeded_file: Path, isolated_settings: Path) -> Path:
    """This test's own copy of the seeded warehouse, at TUNEWISE_WAREHOUSE."""
    shutil.copyfile(seeded_file, isolated_settings)
    return isolated_settings


@pytest.fixture
def wh(seeded_copy: Path) -> Iterator[Warehouse]:
    """This test's own copy of the seeded warehouse, open for writing."""
    warehouse = open_warehouse()
    yield warehouse
    warehouse.close()
