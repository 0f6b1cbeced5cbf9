"""Decide: PEFT or full fine-tuning for this task, model and budget, with reasons, intervals, the assumptions
behind every number (editable), what would make a method fit, and the evidence."""

from __future__ import annotations

import streamlit as st

from app.charts import pareto_chart
from app.estimates import option_rows, pareto_points, recommendation_for
from app.models import model_picker
from app.resources import cached_task_types, data_version, warehouse
from app.state import mirror, parse_bool, seed, share_link
from app.widgets import plain_words
from core.errors import InputError
from core.gap.model import gap_model
from core.gap.recommend import DEFAULT_RANK, DEFAULT_TARGETS, PRIORITIES, RecommendRequest
from core.memory.gpus import catalogue as gpu_catalogue
from core.memory.setup import DEFAULT_MFU, PRECISIONS
from core.registry import ALL_LINEAR, PEFT_DEFAULT

# Each assumption: (label, low, high) of its number input; the same bounds check a link's values.
NUMBERS: dict[str, tuple[str, float, float]] = {
    "examples": ("Training examples", 1, 10**10), "tasks": ("Tasks that each need a fine-tune", 1, 10_000),
    "gpus": ("GPUs in the budget", 1, 1024), "batch": ("Micro-batch per GPU", 1, 4096),
    "seq": ("Tokens per example (sequence length)", 1, 1_048_576), "epochs": ("Epochs", 0.1, 1000.0),
    "mfu": ("Model-FLOPs utilisation (MFU, 0-1)", 0.01, 1.0), "rank": ("Adapter rank r (LoRA-style methods)", 1, 4096),
}
START = RecommendRequest(task_type="classification", train_examples=10_000, model="gpt2", gpu="A100-80GB")
# The engine's messages name command-line flags; the page names its own inputs.
LABELS = {"--batch-size": NUMBERS["batch"][0], "--seq-len": NUMBERS["seq"][0], "--epochs": NUMBERS["epochs"][0],
          "--mfu": NUMBERS["mfu"][0], "--rank": NUMBERS["rank"][0], "--targets": "Adapter targets",
          "--gpus": NUMBERS["gpus"][0]}
URL_KEYS = ("task", "examples", "gpu", "gpus", "tasks", "batch", "seq", "epochs", "checkpointing", "precision",
            "mfu", "rank", "targets", "equal", *(f"p_{p}" for p in PRIORITIES))


def number(column: st.delta_generator.DeltaGenerator, key: str, **kwargs: object) -> float:
    label, low, high = NUMBERS[key]
    kind = float if isinstance(low, float) else int
    return column.number_input(label, min_value=kind(low), max_value=kind(high), key=key, **kwargs)


st.title("PEFT or full fine-tuning?")
st.caption("A recommendation from estimates you can check: memory and time from the real model class, the expected "
           "accuracy gap from published FFT-vs-PEFT pairs, each with its source.")
gpus = list(gpu_catalogue())
task_options = cached_task_types(data_version())
seed("task", "classification", str, task_options)
seed("gpu", "A100-80GB", str, gpus)
for key, default in (("examples", START.train_examples), ("tasks", START.tasks), ("gpus", START.gpus),
                     ("batch", START.micro_batch), ("seq", START.tokens_per_example), ("epochs", START.epochs),
                     ("mfu", DEFAULT_MFU), ("rank", DEFAULT_RANK)):
    _, low, high = NUMBERS[key]
    seed(key, default, type(default), low=low, high=high)
seed("checkpointing", START.gradient_checkpointing, parse_bool)
seed("precision", START.precision, str, PRECISIONS)
seed("targets", DEFAULT_TARGETS, str)
seed("equal", START.equal_settings, parse_bool)
for priority in PRIORITIES:
    seed(f"p_{priority}", 1.0, float, low=0.0, high=3.0)

with st.container(border=True):
    c1, c2, c3 = st.columns(3)
    task = c1.selectbox("Task type", task_options, key="task")
    examples = number(c2, "examples", step=1000)
    n_tasks = number(c3, "tasks")
    c1, c2 = st.columns(2)
    gpu = c1.selectbox("GPU", gpus, key="gpu", format_func=lambda g: gpu_catalogue()[g].name)
    n_gpus = number(c2, "gpus")
    try:
        model = model_picker()
    except InputError as exc:
        st.error(str(exc))
        st.stop()
    st.markdown("**Priorities** (0 = ignore, 3 = most important)")
    columns = st.columns(len(PRIORITIES))
    weights = {p: col.slider(p, 0.0, 3.0, step=0.5, key=f"p_{p}") for p, col in zip(PRIORITIES, columns, strict=True)}

with st.expander("Assumptions behind every number below (edit them here)", expanded=True, icon="⚙️"):
    c1, c2, c3, c4 = st.columns(4)
    batch = number(c1, "batch")
    seq = number(c2, "seq", step=128)
    epochs = number(c3, "epochs", step=1.0)
    mfu = number(c4, "mfu", step=0.05, help="the share of the GPU's peak bf16 FLOPs a run sustains")
    c1, c2, c3, c4 = st.columns(4)
    precision = c1.selectbox("Precision", PRECISIONS, key="precision")
    checkpointing = c2.toggle("Gradient checkpointing", key="checkpointing",
                              help="recompute each block in backward: less memory, about a third more compute")
    rank = number(c3, "rank")
    targets = c4.text_input("Adapter targets (LoRA-style methods)", key="targets",
                            help=f"'{PEFT_DEFAULT}' (peft's default modules for the model), '{ALL_LINEAR}', or module "
                            "names such as q_proj,v_proj")
    equal = st.toggle("Compare LoRA-style methods at the same rank, targets and dropout", key="equal",
                      help="off: each method at its own published defaults (e.g. QLoRA r=64, dropout 0.1)")
mirror(URL_KEYS)

try:
    request = RecommendRequest(
        task_type=task, train_examples=int(examples), model=model.name, gpu=gpu, gpus=int(n_gpus),
        tasks=int(n_tasks), priorities=weights, tokens_per_example=int(seq), epochs=float(epochs),
        micro_batch=int(batch), gradient_checkpointing=bool(checkpointing), precision=precision, mfu=float(mfu),
        rank=int(rank), targets=targets.strip() or DEFAULT_TARGETS, equal_settings=bool(equal),
    )
    result = recommendation_for(request, model, warehouse(), data_version())
except InputError as exc:
    st.error(plain_words(str(exc), LABELS))
    st.stop()

if result.choice is None:
    st.error(f"Nothing fits {request.gpus} x {request.gpu}: not one method's training step fits. See what would make "
             "it fit below.")
else:
    st.success(f"Recommended: **{result.choice.label}**")
if result.best_peft is not None and result.best_peft is not result.choice:
    st.markdown(f"Best PEFT option: **{result.best_peft.label}**")
for line in result.rationale:
    st.markdown(f"- {line}")
for title, advice in ((f"What would make {result.best_peft.label if result.best_peft else 'PEFT'} fit",
                       result.peft_advice),
                      ("What would make full fine-tuning fit", result.fft_advice)):
    if advice is not None:
        with st.expander(title + " (cheapest first, each re-estimated)", expanded=True):
            for line in advice.lines():
                st.markdown(f"- {line}")

st.subheader("Methods, ranked")
st.dataframe(option_rows(result), hide_index=True, key="decide_table", column_config={
    "peak per GPU (GiB)": st.column_config.NumberColumn(format="%.1f"),
    "expected gap (points)": st.column_config.NumberColumn(format="%+.2f"),
})
st.caption(f"Assumptions: {request.settings_text()}.")

st.subheader("Expected gap against memory")
points = pareto_points(result)
if not points.empty:
    capacity = gpu_catalogue()[gpu]
    st.altair_chart(pareto_chart(points, capacity.memory_gib, capacity.name), key="pareto_chart")
    st.caption("Up and to the left is better: the dashed line joins the methods no other method beats on both "
               "memory and expected gap (the Pareto frontier); the red line is one GPU's memory. Gaps are PEFT minus "
               "FFT on a 0-100 metric, predicted for a paper the evidence has never seen; FFT is the reference at 0.")

st.subheader("How well the expected gap has held on papers it had not seen")
held = gap_model(warehouse()).heldout()
st.markdown(gap_model(warehouse()).heldout_summary())
st.dataframe(held.rename(columns={"mae": "MAE (points)", "mae_gap0": "MAE of gap = 0 (points)",
                                  "coverage": "80% coverage"}),
             hide_index=True, key="heldout_table",
             column_config={"80% coverage": st.column_config.NumberColumn(format="percent"),
                            "MAE (points)": st.column_config.NumberColumn(format="%.2f"),
                            "MAE of gap = 0 (points)": st.column_config.NumberColumn(format="%.2f")})
st.caption("Each row predicts one paper from the others; the Evidence page plots each prediction against what the "
           "paper reported.")

shown = result.choice if result.choice is not None and result.choice.gap is not None else result.best_peft
if shown is not None and shown.gap is not None:
    chosen_gap = shown.gap
    st.subheader(f"The evidence behind {shown.label}'s expected gap: {chosen_gap.evidence_basis}")
    evidence = [e.to_dict() for e in chosen_gap.evidence]
    if not evidence:
        st.info("No warehouse pair reports this method or its family on this task type: the estimate is the "
                "evidence's general level, with its wider interval.")
    else:
        columns = ["gap", "method_raw", "model", "task", "metric", "source", "source_table", "distribution",
                   "train_examples", "rank", "similarity", "origin"]
        st.dataframe([{c: row[c] for c in columns} for row in evidence], hide_index=True, key="evidence_table",
                     column_config={"gap": st.column_config.NumberColumn("PEFT minus FFT (points)", format="%+.2f")})
    for note in [*chosen_gap.notes, *chosen_gap.theory_notes]:
        st.caption(note)
with st.expander("The research's selection guide, quantified for this scenario"):
    for line in result.guide:
        st.markdown(f"- {line}")
for note in result.notes:
    st.caption(note)
share_link()
