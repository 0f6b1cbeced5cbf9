"""Decide: PEFT or full fine-tuning for this task, model and budget, with reasons, intervals and evidence."""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from app.models import model_picker
from app.resources import cached_task_types, data_version, warehouse
from app.state import mirror, seed, share_link
from core.errors import InputError
from core.gap.model import gap_model
from core.gap.recommend import PRIORITIES, Recommendation, RecommendRequest, recommend
from core.memory.gpus import catalogue as gpu_catalogue
from core.models import ResolvedModel
from core.units import GIB, human_bytes

URL_KEYS = ("task", "examples", "model", "gpu", "gpus", "tasks", *(f"p_{p}" for p in PRIORITIES))


@st.cache_resource(show_spinner="Ranking methods: memory, time, cost and expected gap...", max_entries=64)
def cached_recommendation(
    inputs: tuple[str, int, str, int, int, tuple[tuple[str, float], ...]],
    _model: ResolvedModel,
    model_key: str,
    version: tuple[int, ...],
) -> Recommendation:
    """Cached per inputs, model config and warehouse state; the result is only read."""
    del model_key, version
    task, examples, gpu, n_gpus, n_tasks, weights = inputs
    request = RecommendRequest(task_type=task, train_examples=examples, model=_model.name, gpu=gpu, gpus=n_gpus,
                               tasks=n_tasks, priorities=dict(weights))
    return recommend(request, wh=warehouse(), resolved=_model)


st.title("PEFT or full fine-tuning?")
st.caption("A recommendation from estimates you can check: memory and time from the real model class, the expected "
           "accuracy gap from published FFT-vs-PEFT pairs, each with its source.")
gpus = list(gpu_catalogue())
task_options = cached_task_types(data_version())
seed("task", "classification", str, task_options)
seed("examples", 10_000, int)
seed("gpu", "A100-80GB", str, gpus)
seed("gpus", 1, int)
seed("tasks", 1, int)
for priority in PRIORITIES:
    seed(f"p_{priority}", 1.0, float)

with st.container(border=True):
    c1, c2, c3 = st.columns(3)
    task = c1.selectbox("Task type", task_options, key="task")
    examples = c2.number_input("Training examples", min_value=1, max_value=10**10, step=1000, key="examples")
    n_tasks = c3.number_input("Tasks that each need a fine-tune", min_value=1, max_value=10_000, key="tasks")
    c1, c2 = st.columns(2)
    gpu = c1.selectbox("GPU", gpus, key="gpu", format_func=lambda g: gpu_catalogue()[g].name)
    n_gpus = c2.number_input("GPUs in the budget", min_value=1, max_value=1024, key="gpus")
    try:
        model = model_picker()
    except InputError as exc:
        st.error(str(exc))
        st.stop()
    st.markdown("**Priorities** (0 = ignore, 3 = most important)")
    columns = st.columns(len(PRIORITIES))
    weights = {p: col.slider(p, 0.0, 3.0, step=0.5, key=f"p_{p}") for p, col in zip(PRIORITIES, columns, strict=True)}
mirror(URL_KEYS)

try:
    inputs = (task, int(examples), gpu, int(n_gpus), int(n_tasks), tuple(sorted(weights.items())))
    result = cached_recommendation(inputs, model, model.config_json, data_version())
except InputError as exc:
    st.error(str(exc))
    st.stop()

if result.choice is None:
    st.error("No method fits this GPU budget. " + " ".join(result.make_fft_fit[:1]))
else:
    st.success(f"Recommended: **{result.choice.label}**")
if result.best_peft is not None and result.best_peft is not result.choice:
    st.markdown(f"Best PEFT option: **{result.best_peft.label}**")
for line in result.rationale:
    st.markdown(f"- {line}")
if result.make_fft_fit:
    with st.expander("What it would take to make full fine-tuning fit", expanded=result.choice is None):
        for line in result.make_fft_fit:
            st.markdown(f"- {line}")

rows = []
for rank, o in enumerate(result.options, start=1):
    gap, robust = o.gap, o.robust
    rows.append({
        "rank": rank, "method": o.label, "fits": "yes" if o.fits else "no",
        "peak per GPU (GiB)": o.plan.per_gpu_bytes / GIB if o.plan else None,
        "expected gap (points)": 0.0 if o.method == "fft" else (gap.mean if gap else None),
        "80% interval": "reference" if o.method == "fft" else (f"{gap.low:+.1f} to {gap.high:+.1f}" if gap else ""),
        "P(FFT ahead by > 1 point)": None if gap is None else gap.p_fft_better,
        "own pairs": "reference" if o.method == "fft" else str(o.reported),
        "verdict": "" if gap is None else gap.verdict,
        "robustness (ood gap)": "reference" if o.method == "fft" else (
            robust.summary() if robust is not None else ""),
        "hours (all tasks)": o.plan.hours * int(n_tasks) if o.plan else None,
        "cost (all tasks, $)": o.plan.dollars * int(n_tasks) if o.plan else None,
        "storage (all tasks)": "" if o.storage_bytes is None else human_bytes(o.storage_bytes),
        "reason": o.reason,
    })
table = pd.DataFrame(rows)
st.subheader("Methods, ranked")
st.dataframe(table, hide_index=True, key="decide_table", column_config={
    "peak per GPU (GiB)": st.column_config.NumberColumn(format="%.1f"),
    "expected gap (points)": st.column_config.NumberColumn(format="%+.2f"),
    "P(FFT ahead by > 1 point)": st.column_config.NumberColumn(format="percent"),
    "hours (all tasks)": st.column_config.NumberColumn(format="%.1f"),
    "cost (all tasks, $)": st.column_config.NumberColumn(format="$%.0f"),
})

st.subheader("Memory against expected gap")
chart_rows = [
    {"method": o.label, "peak (GiB)": o.plan.per_gpu_bytes / GIB, "gap": 0.0 if o.gap is None else o.gap.mean,
     "low": 0.0 if o.gap is None else o.gap.low, "high": 0.0 if o.gap is None else o.gap.high,
     "fits": "fits" if o.fits else "does not fit"}
    for o in result.options if o.plan is not None
]
points = pd.DataFrame(chart_rows)
if not points.empty:
    base = alt.Chart(points).encode(x=alt.X("peak (GiB):Q", title="peak memory per GPU (GiB)",
                                            scale=alt.Scale(type="log")))
    bars = base.mark_rule().encode(y=alt.Y("low:Q", title="expected gap to FFT (points, 80% interval)"), y2="high:Q",
                                   color=alt.Color("fits:N", title=None))
    dots = base.mark_circle(size=90).encode(
        y="gap:Q", color="fits:N",
        tooltip=["method:N", alt.Tooltip("peak (GiB):Q", format=".1f"), alt.Tooltip("gap:Q", format="+.2f"),
                 alt.Tooltip("low:Q", format="+.2f"), alt.Tooltip("high:Q", format="+.2f"), "fits:N"],
    )
    capacity = pd.DataFrame({"GiB": [gpu_catalogue()[gpu].memory_gib]})
    rule = alt.Chart(capacity).mark_rule(color="#dc2626", strokeDash=[6, 3]).encode(x="GiB:Q")
    st.altair_chart((bars + dots + rule).properties(height=360), key="pareto_chart")
    st.caption("Up and to the left is better. The dashed red line is one GPU's memory. Gaps are PEFT minus FFT on a "
               "0-100 metric, predicted for a paper the evidence has never seen; intervals are calibrated by "
               "leave-one-source-out, each paper weighted the same.")

st.subheader("How well the expected gap has held on papers it had not seen")
held = gap_model(warehouse()).heldout()
st.markdown(gap_model(warehouse()).heldout_summary())
st.dataframe(held.rename(columns={"mae": "MAE", "mae_gap0": "MAE of gap = 0", "coverage": "80% coverage"}),
             hide_index=True, key="heldout_table",
             column_config={"80% coverage": st.column_config.NumberColumn(format="percent"),
                            "MAE": st.column_config.NumberColumn(format="%.2f"),
                            "MAE of gap = 0": st.column_config.NumberColumn(format="%.2f")})
st.caption("Each row predicts one paper from the others; the Evidence page plots each prediction against what the "
           "paper reported. `python benchmarks/bench_gap.py` repeats this with the settings chosen inside each fold.")

shown = result.choice if result.choice is not None and result.choice.gap is not None else result.best_peft
if shown is not None and shown.gap is not None:
    chosen_gap = shown.gap
    st.subheader(f"The evidence behind {shown.label}'s expected gap: {chosen_gap.evidence_basis}")
    evidence = pd.DataFrame([e.to_dict() for e in chosen_gap.evidence])
    if evidence.empty:
        st.info("No warehouse pair reports this method or its family on this task type: the estimate is the "
                "evidence's general level, with its wider interval.")
    else:
        columns = ["gap", "method_raw", "model", "task", "metric", "source", "source_table", "distribution",
                   "train_examples", "rank", "similarity", "origin"]
        st.dataframe(evidence[columns], hide_index=True, key="evidence_table")
    for note in [*chosen_gap.notes, *chosen_gap.theory_notes]:
        st.caption(note)
with st.expander("The research's selection guide, quantified for this scenario"):
    for line in result.guide:
        st.markdown(f"- {line}")
for note in result.notes:
    st.caption(note)
share_link()
