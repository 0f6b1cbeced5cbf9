"""Altair charts shared by the pages. Every chart has tooltips and says its unit on the axis; every method keeps
one colour on every page (`METHOD_COLORS`, built from the registry's order)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import altair as alt
import pandas as pd

from core.registry import METHODS, REFERENCE, candidate_ids, method_ids
from core.warehouse.seed import source_key

# Full fine-tuning is the reference every gap is measured against: always the same near-black.
FFT_COLOR = "#111827"
# A red that reads as "limit" on white and on Streamlit's dark theme (Tailwind red-600).
CAPACITY_COLOR = "#dc2626"
# Tableau 20's hues reordered so neighbours differ (Tableau Software, "Tableau 20" palette), without the red
# (kept for capacity lines) and the greys (too close to FFT): 17 distinct colours, more than the 14 PEFT
# candidates, so candidates never share a colour.
_PALETTE = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#bcbd22", "#17becf",
    "#aec7e8", "#ffbb78", "#98df8a", "#c5b0d5", "#c49c94", "#f7b6d2", "#dbdb8d", "#9edae5", "#ff9896",
)


def _method_colors() -> dict[str, str]:
    """FFT dark; the recommendation candidates first (registry order), each its own palette colour; every other
    registry method then takes the palette in turn (only non-candidates may share a colour)."""
    ordered = [m for m in candidate_ids() if m != REFERENCE]
    ordered += [m for m in method_ids(estimable_only=False) if m not in ordered and m != REFERENCE]
    colors = {REFERENCE: FFT_COLOR}
    colors.update({m: _PALETTE[i % len(_PALETTE)] for i, m in enumerate(ordered)})
    return colors


METHOD_COLORS: dict[str, str] = _method_colors()


def method_color(method_id: str) -> str:
    """The colour of a registry method id on every page; ids outside the registry get the 'other' colour."""
    return METHOD_COLORS.get(method_id, METHOD_COLORS["other"])


def method_color_scale(method_ids_shown: Iterable[str]) -> alt.Scale:
    """A colour scale whose domain is the methods shown (in the order given, duplicates dropped) and whose range
    is their fixed colours, so the same method has the same colour in every chart."""
    domain = list(dict.fromkeys(method_ids_shown))
    return alt.Scale(domain=domain, range=[method_color(m) for m in domain])


def pareto_frontier(frame: pd.DataFrame) -> pd.Series:
    """True for the rows no other row dominates: another row dominates one when its `peak_gib` is no higher and
    its `gap` no lower, one of them strictly (lower memory and higher expected gap are both better)."""
    peaks = frame["peak_gib"].to_numpy(dtype=float)
    gaps = frame["gap"].to_numpy(dtype=float)
    on_front = [
        not any(
            (peaks[j] <= peaks[i] and gaps[j] >= gaps[i]) and (peaks[j] < peaks[i] or gaps[j] > gaps[i])
            for j in range(len(frame)) if j != i
        )
        for i in range(len(frame))
    ]
    return pd.Series(on_front, index=frame.index, name="on_frontier")


def pareto_chart(frame: pd.DataFrame, capacity_gib: float, capacity_label: str = "GPU memory") -> alt.LayerChart:
    """Expected gap against device peak per method, each point labelled, the Pareto frontier drawn as a line and
    the GPU's capacity as a red vertical rule with its label.

    `frame` has one row per method: `method_id` (registry id, for the colour), `label` (text beside the point),
    `peak_gib` (device peak per GPU, GiB), `gap` (expected PEFT minus FFT, points; positive = PEFT better) and
    `fits` (bool: the peak fits `capacity_gib`). `capacity_label` names the capacity (e.g. "H100 80GB")."""
    fit_text = frame["fits"].map({True: "fits", False: "does not fit"})
    data = frame.assign(on_frontier=pareto_frontier(frame), fit_text=fit_text)
    x = alt.X("peak_gib:Q", title="device peak per GPU (GiB)", scale=alt.Scale(zero=True))
    y = alt.Y("gap:Q", title="expected PEFT minus FFT (points, 0-100 scale)")
    colour = alt.Color("method_id:N", title="method", scale=method_color_scale(data["method_id"]), legend=None)
    tooltip = [
        alt.Tooltip("label:N", title="method"), alt.Tooltip("peak_gib:Q", format=".1f", title="device peak (GiB)"),
        alt.Tooltip("gap:Q", format="+.2f", title="expected gap (points)"), alt.Tooltip("fit_text:N", title="fit"),
    ]
    base = alt.Chart(data)
    points = base.mark_point(size=90, filled=True).encode(
        x=x, y=y, color=colour, tooltip=tooltip,
        shape=alt.Shape("fit_text:N", title="fit", scale=alt.Scale(domain=["fits", "does not fit"],
                                                                   range=["circle", "cross"])),
    )
    labels = base.mark_text(align="left", dx=7, dy=-7, fontSize=11).encode(x=x, y=y, text="label:N", color=colour)
    front = alt.Chart(data[data["on_frontier"]].sort_values("peak_gib")).mark_line(
        color="#6b7280", strokeDash=[5, 3], point=False,
    ).encode(x=x, y=y, order="peak_gib:Q")
    line = pd.DataFrame({"peak_gib": [capacity_gib], "text": [f"{capacity_label}: {capacity_gib:.1f} GiB"]})
    rule = alt.Chart(line).mark_rule(color=CAPACITY_COLOR, strokeWidth=2).encode(
        x="peak_gib:Q", tooltip=[alt.Tooltip("text:N", title="capacity")],
    )
    rule_text = alt.Chart(line).mark_text(align="left", dx=4, dy=8, color=CAPACITY_COLOR, fontWeight="bold").encode(
        x="peak_gib:Q", y=alt.value(0), text="text:N",
    )
    return (front + points + labels + rule + rule_text).properties(height=380)


GAP_AXIS = alt.Y("gap:Q", title="PEFT minus FFT (points, 0-100 scale)")
GAP_TOOLTIP = [
    alt.Tooltip("source:N"), alt.Tooltip("model:N"), alt.Tooltip("task:N"), alt.Tooltip("method_raw:N", title="method"),
    alt.Tooltip("gap:Q", format="+.2f", title="PEFT minus FFT (points)"),
]


def _zero_rule() -> alt.Chart:
    return alt.Chart(pd.DataFrame({"gap": [0.0]})).mark_rule(strokeDash=[4, 4], color="gray").encode(y="gap:Q")


# The pairs' columns the gap charts encode or show in tooltips: only these travel inline with a chart's spec (a
# pair's 30-odd columns, notes and provenance included, would make every chart several times heavier to send).
CHART_COLUMNS: tuple[str, ...] = ("method_id", "task_type", "gap", "source", "model", "task", "method_raw")


def _named(pairs: pd.DataFrame, *fields: str) -> pd.DataFrame:
    """The chart columns of the pairs (and `fields`) with `method_name`, the registry's name of each `method_id`
    (what legends and labels show)."""
    data = pairs[list(dict.fromkeys((*CHART_COLUMNS, *fields)))]
    return data.assign(method_name=data["method_id"].map(lambda m: METHODS[m].name if m in METHODS else m))


def _method_order(data: pd.DataFrame) -> list[str]:
    """The method names present, in registry order (the legend's and offsets' order)."""
    order = list(METHOD_COLORS)
    ids = sorted(data["method_id"].unique(), key=lambda m: order.index(m) if m in METHOD_COLORS else len(order))
    return [METHODS[m].name if m in METHODS else m for m in ids]


def _method_legend(data: pd.DataFrame) -> alt.Color:
    """Colour by method name, each method in its fixed colour (`METHOD_COLORS`), in registry order."""
    names = _method_order(data)
    by_name = dict(zip(data["method_name"], data["method_id"], strict=True))
    return alt.Color("method_name:N", title="method", sort=names,
                     scale=alt.Scale(domain=names, range=[method_color(by_name[n]) for n in names]))


def gap_by_task_and_method(pairs: pd.DataFrame) -> alt.LayerChart:
    """Each pair as a dot, grouped by task type and offset by method, in the method's fixed colour; the black tick
    is the group median, labelled with its number of pairs (the page puts the same figures in a table beside)."""
    data = _named(pairs)
    colour = _method_legend(data)
    x = alt.X("task_type:N", title="task type", axis=alt.Axis(labelAngle=0))
    offset = alt.XOffset("method_name:N", sort=_method_order(data))
    points = alt.Chart(data).mark_circle(size=30, opacity=0.45).encode(
        x=x, xOffset=offset, y=GAP_AXIS, color=colour, tooltip=GAP_TOOLTIP,
    )
    medians = alt.Chart(data).mark_tick(thickness=3, size=14, color="black").encode(
        x=x, xOffset=offset, y="median(gap):Q",
        tooltip=[alt.Tooltip("task_type:N", title="task type"), alt.Tooltip("method_name:N", title="method"),
                 alt.Tooltip("median(gap):Q", format="+.2f", title="median PEFT minus FFT (points)"),
                 alt.Tooltip("count():Q", title="pairs")],
    )
    counts = alt.Chart(data).mark_text(dy=-10, fontSize=10, color="black").encode(
        x=x, xOffset=offset, y="median(gap):Q", text=alt.Text("count():Q", format="d"),
    )
    return (points + medians + counts + _zero_rule()).properties(height=360)


@dataclass(frozen=True)
class GapAxis:
    """A setup field the gap is charted against: its column in the pairs, the chart's axis title and the table's
    header (each in plain words with its unit), and the Streamlit number format the table prints it with."""

    field: str
    title: str
    column: str
    number_format: str


TRAINABLE_SHARE = GapAxis("trainable_pct", "trainable share (% of parameters)", "trainable share (%)", "%.3g")
TRAIN_EXAMPLES = GapAxis("train_examples", "training examples", "training examples", "localized")
RANK = GapAxis("rank", "adapter rank r", "rank r", "%d")
GAP_COLUMN = "PEFT minus FFT (points)"
# Up to this many points a gap-against chart names each one beside it; more would only pile up unreadable text.
LABEL_LIMIT = 12
_PAPER_CHARS = 28


def paper_name(source: str) -> str:
    """A source's short name ('LoRA (Hu et al. 2021, ...)' -> 'LoRA'), cut to fit beside a dot or in a cell."""
    short = source_key(source)
    return short if len(short) <= _PAPER_CHARS else short[: _PAPER_CHARS - 1].rstrip() + "…"


def _plotted(pairs: pd.DataFrame, field: str) -> pd.DataFrame:
    """The pairs a gap-against chart plots, named, in `field`'s order: those stating a positive `field` (a log
    axis has no zero)."""
    data = _named(pairs.dropna(subset=[field]), field)
    data = data[data[field] > 0]
    return data.sort_values([field, "method_name", "gap"], kind="stable", ignore_index=True)


def gap_points_table(pairs: pd.DataFrame, axis: GapAxis) -> pd.DataFrame:
    """The points `gap_against` plots for `axis`, one row each in the axis' order: method, the field under its
    header with unit, the gap (PEFT minus FFT, points, sign kept), paper and task (the figures first, as a narrow
    table shows them without scrolling); the table beside the chart so no reader has to pick overlapping dots
    apart. Whole-number fields (examples, rank) come as integers."""
    data = _plotted(pairs, axis.field)
    values = data[axis.field]
    if (values % 1 == 0).all():
        values = values.astype("int64")
    return pd.DataFrame({
        "method": data["method_name"], axis.column: values, GAP_COLUMN: data["gap"],
        "paper": data["source"].map(paper_name), "task": data["task"],
    })


# Where a label sits beside its dot: (text alignment, dx, dy) in pixels; the right half of the points reads
# leftwards (no label runs off the chart's edge) and neighbours along the axis alternate above and below.
_LABEL_PLACES = (("left", 6, -9), ("left", 6, 11), ("right", -6, -9), ("right", -6, 11))


def _point_labels(data: pd.DataFrame, x: alt.X) -> list[alt.Chart]:
    """Each point's method (and paper, when the chart shows more than one) beside it, placed by `_LABEL_PLACES`
    so neighbours do not collide; no labels when there are more than `LABEL_LIMIT` points. `data` is in the
    axis' order (`_plotted`)."""
    if len(data) > LABEL_LIMIT:
        return []
    papers = data["source"].map(paper_name)
    label = data["method_name"] + " · " + papers if papers.nunique() > 1 else data["method_name"]
    position = pd.Series(range(len(data)), index=data.index)
    place = 2 * (position >= len(data) / 2) + position % 2
    labelled = data.assign(label=label)
    return [
        alt.Chart(labelled[place == i]).mark_text(align=align, dx=dx, dy=dy, fontSize=11).encode(
            x=x, y=GAP_AXIS, text="label:N", color=_method_legend(data),
        )
        for i, (align, dx, dy) in enumerate(_LABEL_PLACES)
    ]


def gap_against(pairs: pd.DataFrame, field: str, title: str, *, log_base: int = 10) -> alt.LayerChart:
    """Gap against a numeric setup field (trainable share, data size, rank) on a log axis, each pair in its
    method's fixed colour and shaped by task type (`title` names the field and its unit); up to `LABEL_LIMIT`
    points are each labelled with their method (and paper, `_point_labels`)."""
    data = _plotted(pairs, field)
    x = alt.X(f"{field}:Q", title=f"{title} (log scale)", scale=alt.Scale(type="log", base=log_base))
    points = alt.Chart(data).mark_point(size=55, opacity=0.7, filled=True).encode(
        x=x, y=GAP_AXIS, color=_method_legend(data), shape=alt.Shape("task_type:N", title="task type"),
        tooltip=[*GAP_TOOLTIP, alt.Tooltip(f"{field}:Q", title=title)],
    )
    return alt.layer(points, *_point_labels(data, x), _zero_rule()).properties(height=320)
