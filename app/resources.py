"""Cached resources shared by the pages: the warehouse handle and cached queries.

The handle holds no write access: every query reads the newest published snapshot and every write takes a
short turn (core.warehouse.store), so any number of app processes and CLI commands share one warehouse.
Queries are cached with `st.cache_data`, keyed on a data version that changes whenever rows are added (here
or by another process), so an import or a calibration run shows up on the next rerun and nothing else is
recomputed. Finished calibration run folders that nobody ingested yet are picked up on the way.
"""

from __future__ import annotations

import logging
import threading
import time

import pandas as pd
import streamlit as st

from core.calibrate.recalibrate import Calibration
from core.calibrate.runfolder import runs_dir
from core.errors import InputError
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
    task_types,
)

PICK_UP_EVERY_S = 15.0  # how often this process looks for run folders nobody ingested
LOG = logging.getLogger("tunewise.app")
_picked_up = {"at": float("-inf")}
_pick_up_guard = threading.Lock()


@st.cache_resource(show_spinner="Opening the results warehouse...")
def warehouse() -> Warehouse:
    return open_warehouse()


def pick_up_runs(wh: Warehouse) -> None:
    """Ingest finished run folders not yet in the warehouse (a CLI run whose own ingest failed, say); idempotent."""
    if wh.read_only:
        return
    with _pick_up_guard:
        if time.monotonic() - _picked_up["at"] < PICK_UP_EVERY_S:
            return
        _picked_up["at"] = time.monotonic()
    try:
        for report in wh.ingest_pending(runs_dir()):
            LOG.warning("ingested a run folder nobody had: %s", report)
    except InputError as exc:  # a busy warehouse or a bad folder: the page still renders; retried later
        LOG.warning("run folders not ingested this time: %s", exc)


def data_version() -> tuple[int, ...]:
    """Row counts that change on every write: the cache key for queries."""
    wh = warehouse()
    pick_up_runs(wh)
    counts = stats(wh)
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
    return task_types(warehouse())
