"""AppTest fixtures: every page test gets its own seeded warehouse and fresh Streamlit caches."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import streamlit as st

from app.resources import warehouse


@pytest.fixture
def app_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seeded_copy: Path) -> Iterator[Path]:
    """A private copy of the seeded warehouse at TUNEWISE_WAREHOUSE, a private upload folder; caches cleared before
    and after."""
    location = seeded_copy
    monkeypatch.setenv("TUNEWISE_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("TUNEWISE_UPLOADS_DIR", str(tmp_path / "uploads"))
    st.cache_resource.clear()
    st.cache_data.clear()
    yield location
    warehouse().close()
    st.cache_resource.clear()
    st.cache_data.clear()
