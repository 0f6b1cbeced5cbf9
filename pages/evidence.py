"""Evidence: browse published and user results, the matched FFT-vs-PEFT pairs, and the seed paper's claims."""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from app.charts import gap_against, gap_by_task_and_method
from app.resources import (
    cached_calibration_tables,
    cached_claims,
    cached_pairs,
    cached_results,
    cached_task_types,
    data_version,
    warehouse,
)
from app.state import mirror, seed_list, share_link
from app.widgets import download_buttons, import_upload
from core.claims import compare_claims
from core.gap.model import gap_model
from core.registry import METHODS
from core.warehouse import Filters
from core.warehouse.conventions import DISTRIBUTION_NAMES

SIZE_STEPS = (0.05, 0.1, 0.3, 1.0, 3.0, 7.0, 13.0, 35.0, 70.0, 200.0)


def calibration_chart(held: pd.DataFrame) -> alt.Chart:
    """Predicted interval against what happened, per held-out paper."""
    base = alt.Chart(held.assign(paper=held["source"].str.slice(0, 40))).encode(y=alt.Y("paper:N", title=None))
    intervals = base.mark_rule(color="#9ca3af", opacity=0.3, strokeWidth=6).encode(
        x=alt.X("low:Q", title="gap to FFT (points): predicted 80% interval and the reported gap"), x2="high:Q")
    dots = base.mark_tick(thickness=2).encode(
        x="y:Q", color=alt.Color("covered:N", title="reported gap", scale=alt.Scale(range=["#2563eb", "#dc2626"])),
        tooltip=["source:N", alt.Tooltip("y:Q", format="+.2f"), alt.Tooltip("low:Q", format="+.2f"),
                 alt.Tooltip("high:Q", format="+.2f")])
    return (intervals + dots).properties(height=28 * held["source"].nunique() + 40)

st.title("Evidence")
version = data_version()
task_options = cached_task_types(version)
all_pairs = cached_pairs(Filters(), version)
model = gap_model(warehouse())
st.caption(
    f"{len(cached_results(Filters(), version))} results and {len(all_pairs)} matched FFT-vs-PEFT pairs from "
    f"{all_pairs['source'].nunique()} sources. Gap = PEFT metric minus FFT metric on the same source, model, task "
    "and data size, in points of a 0-100 metric (positive: PEFT did better). The expected gap learns from "
    f"{len(model.pairs)} target-task pairs, each counted once: a paper's average next to its parts and repeated "
    "rows are left out, and methods outside the registry (SVFT, ...) count for their family."
)

method_options = sorted(set(all_pairs["method_id"]) | {"fft"}, key=list(METHODS).index)
seed_list("task", task_options, task_options)
seed_list("method", [m for m in method_options if m != "fft"], method_options)
seed_list("dist", ("in-domain", "ood"), DISTRIBUTION_NAMES)
with st.container(border=True):
    left, middle, right = st.columns(3)
    task_types = left.multiselect("Task types", task_options, key="task")
    methods = middle.multiselect("Methods", method_options, key="method", format_func=lambda m: METHODS[m].name)
    distributions = right.multiselect("Test distribution", DISTRIBUTION_NAMES, key="dist")
    left, right = st.columns([2, 1])
    size_range = left.select_slider(
        "Base model size (billions of parameters)", SIZE_STEPS, value=(SIZE_STEPS[0], SIZE_STEPS[-1]), key="size"
    )
    sources = right.multiselect("Sources", sorted(all_pairs["source"].unique()), key="source",
                                placeholder="all sources")
mirror(("task", "method", "dist"))

filters = Filters(
    task_types=task_types, methods=methods, distributions=distributions, sources=sources or None,
    min_params_b=size_range[0], max_params_b=size_range[1],
)
pairs = cached_pairs(filters, version)
target = pairs[pairs["metric_kind"] == "target"]

charts, accuracy_tab, claims_tab, pairs_tab, results_tab, calibration_tab, upload_tab = st.tabs(
    ["Gap charts", "Predictor accuracy", "Claims vs evidence", "Pairs", "Results", "Calibration runs",
     "Upload results"]
)
with charts:
    if target.empty:
        st.info("No matched pairs for these filters: widen the task types, methods or model sizes.")
    else:
        st.subheader(f"Gap by task type and method ({len(target)} pairs)")
        st.altair_chart(gap_by_task_and_method(target), key="chart_task_method")
        left, right = st.columns(2)
        with left:
            st.subheader("Gap against trainable share")
            st.altair_chart(gap_against(target, "trainable_pct", "trainable share (%)"), key="chart_share")
            st.subheader("Gap against rank")
            st.caption("The seed paper (S19) claims raising LoRA's rank barely moves performance: diminishing returns.")
            st.altair_chart(gap_against(target, "rank", "LoRA/DoRA rank r", log_base=2), key="chart_rank")
        with right:
            st.subheader("Gap against training-set size")
            st.caption(
                "The seed paper (S16) claims LoRA leads below about 20 examples per class and FFT above; "
                "the dots are the published pairs that state their training-set size."
            )
            st.altair_chart(gap_against(target, "train_examples", "training examples"), key="chart_data")
with accuracy_tab:
    st.markdown(model.heldout_summary())
    held = model.calibration.heldout.assign(
        covered=lambda f: ((f["low"] <= f["y"]) & (f["y"] <= f["high"])).map({True: "inside", False: "outside"})
    )
    st.altair_chart(calibration_chart(held), key="chart_calibration")
    st.caption("Each paper predicted from the others: the predicted 80% interval (grey) and what the paper "
               "reported (dot), one row of dots per paper. `python benchmarks/bench_gap.py` repeats this with the "
               "settings chosen inside each fold.")
    st.dataframe(model.heldout(), hide_index=True, key="heldout_table",
                 column_config={"coverage": st.column_config.NumberColumn("80% coverage", format="percent")})
with claims_tab:
    st.caption("The seed paper's headline claims as claims, next to the matched evidence. ⚑ marks a claim the "
               "evidence does not support or cannot check.")
    compared = compare_claims(cached_claims(version), all_pairs)
    compared.insert(0, "⚑", compared.pop("flagged").map({True: "⚑", False: ""}))
    st.dataframe(compared, hide_index=True, key="claims_table", column_config={
        "claimed_gap": st.column_config.NumberColumn("claimed gap (points)", format="%+.2f"),
        "evidence_median_gap": st.column_config.NumberColumn("evidence median (points)", format="%+.2f"),
    })
with pairs_tab:
    st.dataframe(pairs, hide_index=True, key="pairs_table")
    download_buttons(pairs, "tunewise-pairs", "pairs")
with results_tab:
    shown = cached_results(filters, version)
    st.dataframe(shown, hide_index=True, key="results_table")
    download_buttons(shown, "tunewise-results", "results")
with calibration_tab:
    runs, measurements = cached_calibration_tables(version)
    if runs.empty:
        st.info("No calibration runs yet." + ("" if warehouse().read_only else
                " Start one on the Calibrate page (a CPU probe takes about a minute)."))
    else:
        st.caption(f"{len(runs)} calibration runs and {len(measurements)} memory measurements, newest first.")
        st.dataframe(measurements, hide_index=True, key="measurements_table")
        download_buttons(measurements, "tunewise-memory-measurements", "measurements")
        st.dataframe(runs, hide_index=True, key="runs_table")
with upload_tab:
    st.markdown("Add your own results: CSV, Parquet or JSON with the columns of the published results "
                "(`source, table, base_model, base_params_b, task, task_type, train_examples, method, trainable_pct, "
                "metric, value, adversarial, notes`). A file with any bad row is rejected whole.")
    if warehouse().read_only:
        st.info("This is a read-only deployment: uploads are off.")
    else:
        upload = st.file_uploader("Results file", type=["csv", "parquet", "json"], key="upload")
        if upload is not None and st.button("Import", key="import", type="primary"):
            report = import_upload(upload)
            if report is not None:
                st.success(f"Imported {report.rows_added} rows from {upload.name}.")
share_link()
