"""Evidence: browse published and user results, the matched FFT-vs-PEFT pairs, and the seed paper's claims."""

from __future__ import annotations

import streamlit as st

from app.charts import LABEL_LIMIT
from app.evidence import GAP_AGAINST, calibration_spec, compared_claims, gap_view
from app.resources import (
    cached_calibration_tables,
    cached_pairs,
    cached_results,
    cached_task_types,
    data_version,
    warehouse,
)
from app.state import link_range, mirror, seed_list, share_link
from app.widgets import download_buttons, gap_points, import_upload
from core.claims import claims_display, verdict_summary
from core.gap.evidence import charted, pairs_explained, without_server_paths
from core.gap.model import gap_model
from core.registry import METHODS, REFERENCE
from core.warehouse import Filters
from core.warehouse.conventions import DISTRIBUTION_NAMES

SIZE_STEPS = (0.05, 0.1, 0.3, 1.0, 3.0, 7.0, 13.0, 35.0, 70.0, 200.0)


st.title("Evidence")
version = data_version()
task_options = cached_task_types(version)
all_pairs = cached_pairs(Filters(), version)
model = gap_model(warehouse())
all_results = cached_results(Filters(), version)
st.caption(
    f"All stored evidence, from {all_results['source'].nunique()} papers: "
    + pairs_explained(len(all_results), all_pairs, len(model.pairs))
    + " Gap = PEFT minus FFT: the PEFT metric minus the FFT metric, in points of a 0-100 metric (positive: PEFT "
    "did better)."
)

method_options = sorted(set(all_pairs["method_id"]) - {REFERENCE}, key=list(METHODS).index)
seed_list("task", task_options, task_options)
seed_list("method", [], method_options)
seed_list("dist", ("in-domain", "ood"), DISTRIBUTION_NAMES)
source_options = sorted(all_pairs["source"].unique())
seed_list("source", [], source_options)
with st.container(border=True):
    left, middle, right = st.columns(3)
    task_types = left.multiselect("Task types", task_options, key="task")
    methods = middle.multiselect("Methods", method_options, key="method", format_func=lambda m: METHODS[m].name,
                                 placeholder="all methods", help="Exactly the methods chosen: LoRA is not QLoRA.")
    distributions = right.multiselect("Test distribution", DISTRIBUTION_NAMES, key="dist")
    left, right = st.columns([2, 1])
    size_range = left.select_slider(
        "Base model size (billions of parameters)", SIZE_STEPS, key="size",
        value=link_range("size", (SIZE_STEPS[0], SIZE_STEPS[-1]), SIZE_STEPS, float),
    )
    sources = right.multiselect("Sources", source_options, key="source",
                                placeholder="all sources")
mirror(("task", "method", "dist", "size", "source"))

filters = Filters(
    task_types=task_types, methods=methods or None, distributions=distributions, sources=sources or None,
    min_params_b=size_range[0], max_params_b=size_range[1],
)
pairs = cached_pairs(filters, version)
shown_results = cached_results(filters, version)
target = charted(pairs)
st.caption("These filters: " + pairs_explained(len(shown_results), pairs))

charts, accuracy_tab, claims_tab, pairs_tab, results_tab, calibration_tab, upload_tab = st.tabs(
    ["Gap charts", "Predictor accuracy", "Claims vs evidence", "Pairs", "Results", "Calibration runs",
     "Upload results"]
)
with charts:
    view = gap_view(filters, version)
    if not view.charted:
        st.info("No matched pairs for these filters: widen the task types, methods or model sizes.")
    else:
        st.subheader(f"Gap by task type and method ({view.charted} pairs)")
        chart, table = st.columns([3, 2])
        chart.vega_lite_chart(view.by_task, key="chart_task_method")
        table.dataframe(
            view.summary, hide_index=True, key="summary_task_method", height=360, column_config={
                "task_type": "task type", "method_id": "method",
                "median": st.column_config.NumberColumn("median gap (points)", format="%+.2f"),
                "q25": st.column_config.NumberColumn("25% (points)", format="%+.2f"),
                "q75": st.column_config.NumberColumn("75% (points)", format="%+.2f"),
            })
        st.caption("Dots: one pair each, in the method's colour (the same on every page). Tick: the median, with "
                   "its number of pairs above; the table beside gives the same figures.")
        st.caption(f"Below, one dot per pair in the method's colour, shaped by task type (up to {LABEL_LIMIT} dots "
                   "are named on the chart); the table beside each chart lists its pairs in the axis' order.")
        for (axis, name, key, claim), (points, spec) in zip(GAP_AGAINST, view.against, strict=True):
            st.subheader(f"Gap against {name} ({len(points)} pairs)")
            if claim:
                st.caption(claim)
            if points.empty:
                st.info(f"No pairs for these filters state their {name}.")
                continue
            chart, table = st.columns([3, 2])
            chart.vega_lite_chart(spec, key=f"chart_{key}")
            gap_points(table, points, axis, f"points_{key}")
with accuracy_tab:
    st.markdown(model.heldout_summary())
    st.vega_lite_chart(calibration_spec(version), key="chart_calibration")
    st.caption("Each paper predicted from the others: the predicted 80% interval (grey bar) and what the paper "
               "reported (tick: blue inside the interval, red outside), one row per paper.")
    st.dataframe(model.heldout(), hide_index=True, key="heldout_table",
                 column_config={"coverage": st.column_config.NumberColumn("80% coverage", format="percent")})
with claims_tab:
    st.caption("The seed paper's claims beside the published pairs about the same method, task type, test "
               "distribution and model (or models of its family and size). Every gap is PEFT minus FFT in points: "
               "positive means PEFT did better. ⚑ marks a claim the evidence does not support or cannot check.")
    compared = compared_claims(version)
    st.markdown(f"**Verdicts:** {verdict_summary(compared)}")
    st.dataframe(claims_display(compared), hide_index=True, key="claims_table", column_config={
        "⚑": st.column_config.TextColumn("⚑", width=30),
        "verdict": st.column_config.TextColumn("verdict", width="medium"),
        "claim": st.column_config.TextColumn("claim", width=340),
        "claimed gap (points)": st.column_config.TextColumn("claimed gap (points)", width=140),
        "evidence median gap (points)": st.column_config.TextColumn("evidence median gap (points)", width=250),
        "pairs": st.column_config.NumberColumn("pairs", width=60),
    })
with pairs_tab:
    st.caption(f"{len(pairs):,} pairs for these filters, {len(target):,} of them in the charts; gap = PEFT minus "
               "FFT (points, positive: PEFT better).")
    st.dataframe(pairs, hide_index=True, key="pairs_table",
                 column_config={"gap": st.column_config.NumberColumn("gap: PEFT minus FFT (points)", format="%+.2f")})
    download_buttons(pairs, "tunewise-pairs", "pairs")
with results_tab:
    st.caption(f"{len(shown_results):,} results for these filters, one reported score each.")
    st.dataframe(shown_results, hide_index=True, key="results_table")
    download_buttons(shown_results, "tunewise-results", "results")
with calibration_tab:
    runs, measurements = cached_calibration_tables(version)
    if runs.empty:
        st.info("No calibration runs yet." + ("" if warehouse().read_only else
                " Start one on the Calibrate page (a CPU probe takes about a minute)."))
    else:
        runs, measurements = without_server_paths(runs), without_server_paths(measurements)
        st.caption(f"{len(runs)} calibration measurements (one per method and measured quantity) and "
                   f"{len(measurements)} memory measurements, newest first.")
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
