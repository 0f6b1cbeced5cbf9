"""Charts of the memory estimate: the per-method breakdown against the GPU's capacity."""

from __future__ import annotations

import altair as alt
import pandas as pd

from core.units import GIB

# The traced categories at the step's peak, then the device-level overhead (allocator, CUDA context, NCCL).
COMPONENTS = ("weights", "gradients", "optimizer", "activations", "temporaries", "overhead")


def breakdown_frame(rows: list[tuple[str, dict[str, int]]]) -> pd.DataFrame:
    """Long format for a stacked bar: one row per (method, component) in GiB."""
    return pd.DataFrame(
        [{"method": label, "component": c, "GiB": memory[c] / GIB, "order": i}
         for label, memory in rows for i, c in enumerate(COMPONENTS)]
    )


def memory_bars(frame: pd.DataFrame, capacity_gib: float | None, gpu_label: str) -> alt.LayerChart | alt.Chart:
    """Stacked bars per method; a dashed black rule marks the GPU's memory."""
    bars = alt.Chart(frame).mark_bar().encode(
        y=alt.Y("method:N", title=None, sort=None),
        x=alt.X("sum(GiB):Q", title="memory per GPU (GiB)"),
        color=alt.Color("component:N", sort=list(COMPONENTS), title="component"),
        order=alt.Order("order:Q"),
        tooltip=[alt.Tooltip("method:N"), alt.Tooltip("component:N"), alt.Tooltip("GiB:Q", format=".2f")],
    )
    chart: alt.LayerChart | alt.Chart = bars
    if capacity_gib is not None:
        line = pd.DataFrame({"GiB": [capacity_gib], "label": [f"{gpu_label}: {capacity_gib:.1f} GiB"]})
        rule = alt.Chart(line).mark_rule(color="black", strokeWidth=2, strokeDash=[6, 3]).encode(
            x="GiB:Q", tooltip=[alt.Tooltip("label:N", title="GPU capacity")]
        )
        text = alt.Chart(line).mark_text(align="left", dx=4, dy=-6, color="black").encode(
            x="GiB:Q", y=alt.value(0), text="label:N"
        )
        chart = bars + rule + text
    return chart.properties(height=max(160, 34 * frame["method"].nunique()))
