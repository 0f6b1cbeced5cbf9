"""Memory fit: per-GPU memory breakdown per method, the largest batch that fits, GPUs compared, the CLI line."""

from __future__ import annotations

import shlex
from dataclasses import replace

import pandas as pd
import streamlit as st

from app.charts_memory import breakdown_frame, memory_bars
from app.estimates import estimate_for, method_rows
from app.models import model_picker
from app.resources import cached_calibration, data_version
from app.state import mirror, seed, seed_list, share_link
from core.calibrate.recalibrate import calibrate
from core.errors import InputError
from core.memory.gpus import catalogue as gpu_catalogue
from core.memory.setup import ATTENTIONS, OPTIMIZERS, PRECISIONS, SHARDINGS, TrainingSetup
from core.registry import METHODS, choices_for, method_ids
from core.scenario import Scenario
from core.units import GIB

DEFAULT_METHODS = ("fft", "lora", "qlora", "dora", "ia3", "prefix_tuning")
URL_KEYS = ("model", "method", "gpu", "batch", "seq", "gpus", "sharding", "precision", "rank")

st.title("Memory fit")
st.caption("Peak memory per GPU over one traced training step (forward, backward, clipping, optimizer step), split "
           "into weights, gradients, optimizer states, activations, temporaries and device overhead, at the instant "
           "of the peak. The real model class and peft wrapping run on fake tensors: no weights, no GPU. PEFT "
           "methods keep bf16 base weights with fp32 adapters; full fine-tuning in bf16-mixed keeps fp32 weights.")
try:
    model = model_picker()
except InputError as exc:
    st.error(str(exc))
    st.stop()

gpus = list(gpu_catalogue())
seed_list("method", DEFAULT_METHODS, method_ids())
seed("gpu", "A100-80GB", str, gpus)
seed("batch", 4, int)
seed("seq", 1024, int)
seed("gpus", 1, int)
seed("sharding", "none", str, SHARDINGS)
seed("precision", "bf16-mixed", str, PRECISIONS)
seed("rank", 16, int)

methods = st.multiselect("Methods", method_ids(), key="method", format_func=lambda m: METHODS[m].name)
with st.container(border=True):
    c1, c2, c3, c4 = st.columns(4)
    batch = c1.number_input("Micro-batch per GPU", min_value=1, max_value=4096, key="batch")
    seq = c2.number_input("Sequence length (tokens)", min_value=1, max_value=1_048_576, step=256, key="seq")
    precision = c3.selectbox("Precision", PRECISIONS, key="precision")
    optimizer = c4.selectbox("Optimizer", OPTIMIZERS, key="optimizer")
    c1, c2, c3, c4 = st.columns(4)
    gpu = c1.selectbox("GPU", gpus, key="gpu", format_func=lambda g: gpu_catalogue()[g].name)
    n_gpus = c2.number_input("GPUs", min_value=1, max_value=4096, key="gpus")
    sharding = c3.selectbox("Sharding", SHARDINGS, key="sharding")
    offload = c4.selectbox("Offload", ("none", "optimizer", "params"), key="offload")
    c1, c2, c3, c4 = st.columns(4)
    attention = c1.selectbox("Attention", ATTENTIONS, key="attention")
    checkpointing = c2.toggle("Gradient checkpointing", key="checkpointing")
    dataset_tokens = c3.number_input("Training tokens (for time and cost)", min_value=1, value=50_000_000,
                                     step=1_000_000, key="tokens")
    epochs = c4.number_input("Epochs", min_value=0.1, value=3.0, step=0.5, key="epochs")
with st.expander("Method knobs (each method takes the ones it accepts)"):
    c1, c2, c3, c4 = st.columns(4)
    rank = c1.number_input("Rank r", min_value=1, max_value=4096, key="rank")
    alpha = c2.number_input("Alpha (0 = method default)", min_value=0.0, value=0.0, key="alpha")
    dropout = c3.number_input("Adapter dropout", min_value=0.0, max_value=0.99, value=0.0, step=0.05, key="dropout")
    targets = c4.text_input("Targets (comma list or all-linear; blank = peft default)", key="targets")
    c1, c2, c3 = st.columns(3)
    virtual_tokens = c1.number_input("Virtual tokens", min_value=1, max_value=4096, value=20, key="virtual_tokens")
    top_layers = c2.number_input("Top layers (partial FT)", min_value=1, max_value=512, value=2, key="top_layers")
    adapter_dtype = c3.selectbox("Adapter dtype", ("fp32", "bf16", "fp16"), key="adapter_dtype")
mirror(URL_KEYS)

if not methods:
    st.info("Choose at least one method above to see its memory.")
    st.stop()
try:
    setup = TrainingSetup(
        batch_size=int(batch), seq_len=int(seq), precision=precision, optimizer=optimizer,
        gradient_checkpointing=checkpointing, attention=attention, gpus=int(n_gpus), sharding=sharding,
        offload=offload, gpu=gpu, dataset_tokens=int(dataset_tokens), epochs=float(epochs),
    )
    choices = choices_for(
        methods, rank=int(rank), alpha=alpha or None, dropout=dropout, targets=targets.strip() or None,
        virtual_tokens=int(virtual_tokens), top_layers=int(top_layers), adapter_dtype=adapter_dtype,
    )
    report = estimate_for(model, choices, setup)
except InputError as exc:
    st.error(str(exc))
    st.stop()

for warning in report.warnings:
    st.warning(warning)
calibration = cached_calibration(data_version())
rows = method_rows(report)
for row, m in zip(rows, report.methods, strict=True):
    if m.training is None:
        continue
    calibrated = calibrate(m.training.memory.to_dict(), calibration, device=gpu_catalogue()[gpu].name,
                           model_family=model.model_type, method_id=m.method)
    row["calibrated peak (GiB)"] = calibrated.calibrated_total / GIB if calibrated else None
    row["calibration"] = calibrated.label if calibrated else "not calibrated: no measurement for this family yet"
estimated = [m for m in report.methods if m.training is not None]
capacity = gpu_catalogue()[gpu].memory_gib
fitting = [m for m in estimated if m.training.fit and m.training.fit.fits]
st.subheader(f"{len(fitting)} of {len(report.methods)} methods fit on {n_gpus} x {gpu} ({capacity:.1f} GiB each)")
if estimated:
    frame = breakdown_frame([(m.label, m.training.memory.to_dict()) for m in estimated])
    st.altair_chart(memory_bars(frame, capacity, gpu), key="memory_chart")
st.dataframe(pd.DataFrame(rows), hide_index=True, key="memory_table", column_config={
    "trainable share (%)": st.column_config.NumberColumn(format="%.4f"),
    "peak, device (GiB)": st.column_config.NumberColumn(format="%.2f"),
    "peak, allocated (GiB)": st.column_config.NumberColumn(format="%.2f"),
    "calibrated peak (GiB)": st.column_config.NumberColumn(format="%.2f"),
    "headroom (GiB)": st.column_config.NumberColumn(format="%+.2f"),
    "hours": st.column_config.NumberColumn(format="%.1f"),
    "cost ($)": st.column_config.NumberColumn(format="$%.0f"),
})

st.subheader("Compare GPUs")
compare = st.selectbox("Method to compare across GPUs", [m.method for m in estimated] or methods,
                       key="compare_method", format_func=lambda m: METHODS[m].name)
chosen = next(c for c in choices if c.method == compare)
comparison = []
for gpu_id, spec in gpu_catalogue().items():
    try:
        other = estimate_for(model, (chosen,), replace(setup, gpu=gpu_id))
    except InputError as exc:
        st.error(str(exc))
        break
    training = other.methods[0].training
    if training is None or training.fit is None:
        continue
    comparison.append({
        "GPU": spec.name, "memory (GiB)": spec.memory_gib, "fits": "yes" if training.fit.fits else "no",
        "largest micro-batch": training.fit.max_batch_size, "fewest GPUs (ZeRO-3)": training.fit.min_gpus.get("zero3"),
        "hours": training.time.hours, "cost ($)": training.time.usd, "$ per GPU-hour": spec.usd_per_hour,
    })
st.dataframe(pd.DataFrame(comparison), hide_index=True, key="gpu_table", column_config={
    "hours": st.column_config.NumberColumn(format="%.1f"), "cost ($)": st.column_config.NumberColumn(format="$%.0f"),
})

st.subheader("The same estimate from the command line")
try:
    flags = ["python", "-m", "core", "estimate", *Scenario(model, choices, training=setup).to_argv()]
except InputError as exc:
    st.error(str(exc))
    st.stop()
st.code(shlex.join(flags), language="bash")
st.caption(f"Memory in GiB (2^30 bytes). {report.model} counted with peft; 1 GiB = {GIB:,} bytes. "
           "Accuracy of the activation model: see the README's Accuracy section (CPU probe comparison).")
share_link()
