"""Cached resources shared by the pages: the warehouse connection and cached queries.

The app process is the warehouse's single writer (`st.cache_resource` keeps one connection); queries are
cached with `st.cache_data`, keyed on a data version that changes whenever rows are added, so an import or
an ingested calibration run shows up at once and nothing else is recomputed.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core.calibrate.recalibrate import Calibration
from core.warehouse import (
    Filters,
    Warehouse,
    calibration_runs,
    claims,
    memory_measurements,
    open_warehouse,
    pairs,
    results,
    stats,
)


@st.cache_resource(show_spinner="Opening the results warehouse...")
def warehouse() -> Warehouse:
    return open_warehouse()


def data_version() -> tuple[int, ...]:
    """Row counts that change on every write: the cache key for queries."""
    counts = stats(warehouse())
    return tuple(counts[k] for k in ("results", "imports", "calibration_runs", "memory_measurements"))


@st.cache_data(show_spinner=False, max_entries=64)
def cached_results(filters: Filters, version: tuple[int, ...]) -> pd.DataFrame:
    del version  # part of the cache key only
    return results(warehouse(), filters)


@st.cache_data(show_spinner=False, max_entries=64)
def cached_pairs(filters: Filters, version: tuple[int, ...]) -> pd.DataFrame:
    del version
    return pairs(warehouse(), filters)


@st.cache_data(show_spinner=False, max_entries=4)
def cached_claims(version: tuple[int, ...]) -> pd.DataFrame:
    del version
    return claims(warehouse())


@st.cache_data(show_spinner=False, max_entries=4)
def cached_calibration_tables(version: tuple[int, ...]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(calibration runs, memory measurements), newest first."""
    del version
    return calibration_runs(warehouse()), memory_measurements(warehouse())


@st.cache_resource(show_spinner=False, max_entries=4)
def cached_calibration(version: tuple[int, ...]) -> Calibration:
    """Measured/predicted ratios from every ok memory measurement (recalibrates later estimates)."""
    return Calibration.from_measurements(cached_calibration_tables(version)[1])


@st.cache_data(show_spinner=False, max_entries=4)
def cached_task_types(version: tuple[int, ...]) -> tuple[str, ...]:
    """The warehouse's task types (the one list import validation also uses)."""
    del version
    rows = warehouse().cursor().execute("SELECT task_type FROM task_types ORDER BY task_type").fetchall()
    return tuple(r[0] for r in rows)
