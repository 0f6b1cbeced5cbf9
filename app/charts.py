"""Altair charts shared by the pages. Every chart has tooltips and says its unit on the axis."""

from __future__ import annotations

import altair as alt
import pandas as pd

GAP_AXIS = alt.Y("gap:Q", title="PEFT minus FFT (points, 0-100 scale)")
GAP_TOOLTIP = [
    alt.Tooltip("source:N"), alt.Tooltip("model:N"), alt.Tooltip("task:N"), alt.Tooltip("method_raw:N", title="method"),
    alt.Tooltip("gap:Q", format="+.2f", title="gap (points)"),
]


def _zero_rule() -> alt.Chart:
    return alt.Chart(pd.DataFrame({"gap": [0.0]})).mark_rule(strokeDash=[4, 4], color="gray").encode(y="gap:Q")


def gap_by_task_and_method(pairs: pd.DataFrame) -> alt.LayerChart:
    """Each pair as a dot, grouped by task type and offset by method; the tick is the group median."""
    points = alt.Chart(pairs).mark_circle(size=45, opacity=0.6).encode(
        x=alt.X("task_type:N", title="task type", axis=alt.Axis(labelAngle=0)), xOffset="method_id:N", y=GAP_AXIS,
        color=alt.Color("method_id:N", title="method"), tooltip=GAP_TOOLTIP,
    )
    medians = alt.Chart(pairs).mark_tick(thickness=3, size=18, color="black").encode(
        x="task_type:N", xOffset="method_id:N", y="median(gap):Q",
        tooltip=[alt.Tooltip("task_type:N"), alt.Tooltip("method_id:N"),
                 alt.Tooltip("median(gap):Q", format="+.2f", title="median gap (points)"),
                 alt.Tooltip("count():Q", title="pairs")],
    )
    return (points + medians + _zero_rule()).properties(height=360)


def gap_against(pairs: pd.DataFrame, field: str, title: str, *, log_base: int = 10) -> alt.LayerChart:
    """Gap against a numeric setup field (trainable share, data size, rank) on a log axis."""
    data = pairs.dropna(subset=[field])
    data = data[data[field] > 0]
    points = alt.Chart(data).mark_circle(size=50, opacity=0.65).encode(
        x=alt.X(f"{field}:Q", title=title, scale=alt.Scale(type="log", base=log_base)),
        y=GAP_AXIS, color=alt.Color("task_type:N", title="task type"),
        tooltip=[*GAP_TOOLTIP, alt.Tooltip(f"{field}:Q", title=title)],
    )
    return (points + _zero_rule()).properties(height=320)
