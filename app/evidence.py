"""The Evidence page's gap charts and tables for one set of filters, built once per data version.

Building an Altair chart and validating its Vega-Lite spec costs more than the page's queries; a rerun with the
same filters (a page switch, a widget elsewhere) reuses the finished specs and tables from `st.cache_data`,
keyed like the queries on the filters and the warehouse's data version, so new data still shows at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import altair as alt
import pandas as pd
import streamlit as st

from app.charts import (
    RANK,
    TRAIN_EXAMPLES,
    TRAINABLE_SHARE,
    GapAxis,
    gap_against,
    gap_by_task_and_method,
    gap_points_table,
)
from app.resources import cached_claims, cached_pairs, warehouse
from core.claims import compare_claims
from core.gap.evidence import charted, gap_summary
from core.gap.model import gap_model
from core.registry import METHODS
from core.warehouse import Filters

# Each gap-against chart: its axis, its name in headings, its widget key and the seed paper's claim it checks.
GAP_AGAINST: tuple[tuple[GapAxis, str, str, str], ...] = (
    (TRAINABLE_SHARE, "trainable share", "share", ""),
    (TRAIN_EXAMPLES, "training-set size", "data", "The seed paper (S16) claims LoRA leads below about 20 examples "
     "per class and FFT above; the dots are the published pairs that state their training-set size."),
    (RANK, "rank", "rank", "The seed paper (S19) claims raising LoRA's rank barely moves performance: diminishing "
     "returns."),
)


@dataclass(frozen=True)
class GapView:
    """What the gap charts tab shows: the charted pairs' count, the by-task chart's Vega-Lite spec and its summary
    table, and per gap-against axis its points table and chart spec (empty dict when no pair states the field)."""

    charted: int
    by_task: dict[str, Any]
    summary: pd.DataFrame
    against: tuple[tuple[pd.DataFrame, dict[str, Any]], ...]


@st.cache_data(show_spinner=False, max_entries=64)
def gap_view(filters: Filters, version: tuple[int, ...]) -> GapView:
    """The gap charts and tables for `filters` (specs as dicts: validated once, sent as they are)."""
    target = charted(cached_pairs(filters, version))
    if target.empty:
        return GapView(0, {}, pd.DataFrame(), tuple((pd.DataFrame(), {}) for _ in GAP_AGAINST))
    summary = gap_summary(target).assign(method_id=lambda f: f["method_id"].map(lambda m: METHODS[m].name))
    against = []
    for axis, _, _, _ in GAP_AGAINST:
        points = gap_points_table(target, axis)
        against.append((points, {} if points.empty else gap_against(target, axis.field, axis.title).to_dict()))
    return GapView(len(target), gap_by_task_and_method(target).to_dict(), summary, tuple(against))


@st.cache_data(show_spinner=False, max_entries=4)
def compared_claims(version: tuple[int, ...]) -> pd.DataFrame:
    """The seed paper's claims beside all stored pairs (`core.claims.compare_claims`), once per data version."""
    return compare_claims(cached_claims(version), cached_pairs(Filters(), version))


def calibration_chart(held: pd.DataFrame) -> alt.LayerChart:
    """Predicted interval against what happened, per held-out paper."""
    base = alt.Chart(held.assign(paper=held["source"].str.slice(0, 40))).encode(y=alt.Y("paper:N", title=None))
    intervals = base.mark_rule(color="#9ca3af", opacity=0.3, strokeWidth=6).encode(
        x=alt.X("low:Q", title="PEFT minus FFT (points): predicted 80% interval and the reported gap"), x2="high:Q")
    dots = base.mark_tick(thickness=2).encode(
        x="y:Q", color=alt.Color("covered:N", title="reported gap", scale=alt.Scale(range=["#2563eb", "#dc2626"])),
        tooltip=["source:N", alt.Tooltip("y:Q", format="+.2f"), alt.Tooltip("low:Q", format="+.2f"),
                 alt.Tooltip("high:Q", format="+.2f")])
    return (intervals + dots).properties(height=28 * held["source"].nunique() + 40)


@st.cache_data(show_spinner=False, max_entries=4)
def calibration_spec(version: tuple[int, ...]) -> dict[str, Any]:
    """The predictor's held-out calibration plot (each paper predicted from the others), once per data version."""
    del version  # part of the cache key only: the model is fitted on the warehouse's content
    held = gap_model(warehouse()).calibration.heldout.assign(
        covered=lambda f: ((f["low"] <= f["y"]) & (f["y"] <= f["high"])).map({True: "inside", False: "outside"})
    )
    return calibration_chart(held).to_dict()
