"""AppTest fixtures: every page test gets its own seeded warehouse and fresh Streamlit caches."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import streamlit as st

from app.resources import warehouse
from core.warehouse import open_warehouse

SETTINGS = ("TUNEWISE_READ_ONLY", "TUNEWISE_PARQUET_ROOT", "TUNEWISE_MAX_IMPORT_MB")


@pytest.fixture(scope="session")
def seeded_warehouse_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("seeded") / "seeded.duckdb"
    open_warehouse(path, read_only=False).close()
    return path


@pytest.fixture
def app_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seeded_warehouse_file: Path) -> Iterator[Path]:
    """A private copy of the seeded warehouse at TUNEWISE_WAREHOUSE; caches cleared before and after."""
    for name in SETTINGS:
        monkeypatch.delenv(name, raising=False)
    location = tmp_path / "warehouse.duckdb"
    shutil.copy(seeded_warehouse_file, location)
    monkeypatch.setenv("TUNEWISE_WAREHOUSE", str(location))
    monkeypatch.setenv("TUNEWISE_RUNS_DIR", str(tmp_path / "runs"))
    warehouse.clear()
    st.cache_data.clear()
    yield location
    warehouse().close()
    warehouse.clear()
    st.cache_data.clear()
