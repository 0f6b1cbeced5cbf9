"""Charts of the memory estimate: the per-method breakdown against the GPU's capacity.

Each bar is labelled with its device peak in GiB (in the method's colour from app/charts.py, the same on every
page); the GPU's capacity is a labelled red rule. Components keep fixed colours that avoid that red.
"""

from __future__ import annotations

import altair as alt
import pandas as pd

from app.charts import CAPACITY_COLOR, method_color_scale
from core.units import GIB

# The traced categories at the step's peak, then what the caching allocator holds beyond them (cached) and what
# the device holds outside the allocator (CUDA context, NCCL buffers).
COMPONENTS = ("weights", "gradients", "optimizer", "activations", "temporaries", "cached", "context")
# Tableau 10's blue, orange, green, purple, olive, brown and grey (Tableau Software): no red, kept for the
# capacity rule.
COMPONENT_COLORS = ("#4e79a7", "#f28e2b", "#59a14f", "#b07aa1", "#edc948", "#9c755f", "#bab0ac")


def breakdown_frame(rows: list[tuple[str, str, dict[str, int]]]) -> pd.DataFrame:
    """Long format for a stacked bar: one row per (method, component) in GiB; rows are (method id, label, memory)."""
    return pd.DataFrame(
        [{"method_id": method_id, "method": label, "component": c, "GiB": memory[c] / GIB, "order": i}
         for method_id, label, memory in rows for i, c in enumerate(COMPONENTS)]
    )


def memory_bars(frame: pd.DataFrame, capacity_gib: float, gpu_label: str) -> alt.LayerChart:
    """Stacked bars per method with each bar's total at its end, and a labelled red rule at the GPU's memory."""
    order = list(dict.fromkeys(frame["method"]))
    y = alt.Y("method:N", title=None, sort=order)
    bars = alt.Chart(frame).mark_bar().encode(
        y=y,
        x=alt.X("sum(GiB):Q", title="memory per GPU at the step's peak (GiB)"),
        color=alt.Color("component:N", sort=list(COMPONENTS), title="component",
                        scale=alt.Scale(domain=list(COMPONENTS), range=list(COMPONENT_COLORS))),
        order=alt.Order("order:Q"),
        tooltip=[alt.Tooltip("method:N"), alt.Tooltip("component:N"), alt.Tooltip("GiB:Q", format=".2f")],
    )
    totals = frame.groupby(["method_id", "method"], sort=False, as_index=False)["GiB"].sum()
    totals["text"] = totals["GiB"].map(lambda g: f"{g:.1f} GiB")
    labels = alt.Chart(totals).mark_text(align="left", dx=4, fontWeight="bold").encode(
        y=y, x="GiB:Q", text="text:N",
        color=alt.Color("method_id:N", scale=method_color_scale(totals["method_id"]), legend=None),
    )
    line = pd.DataFrame({"GiB": [capacity_gib], "label": [f"{gpu_label}: {capacity_gib:.1f} GiB"]})
    rule = alt.Chart(line).mark_rule(color=CAPACITY_COLOR, strokeWidth=2, strokeDash=[6, 3]).encode(
        x="GiB:Q", tooltip=[alt.Tooltip("label:N", title="GPU capacity")]
    )
    text = alt.Chart(line).mark_text(align="left", dx=4, dy=-6, color=CAPACITY_COLOR, fontWeight="bold").encode(
        x="GiB:Q", y=alt.value(0), text="label:N"
    )
    chart = alt.layer(bars, labels, rule, text).resolve_scale(color="independent")
    return chart.properties(height=max(160, 34 * len(order)))
