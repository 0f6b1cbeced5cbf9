"""Memory fit: per-GPU memory breakdown per method, the largest batch that fits, GPUs compared, the CLI line.

Every input is a widget mirrored to the URL (app/state.py); method settings default to the registry's, and the
methods are compared at equal settings unless the user asks for each method's own defaults.
"""

from __future__ import annotations

import shlex
from dataclasses import replace
from typing import Any

import pandas as pd
import streamlit as st

from app.charts_memory import breakdown_frame, memory_bars
from app.estimates import estimate_for
from app.memory_inputs import (
    DEFAULT_METHODS,
    EQUAL,
    FIELD_LABELS,
    KNOB_CHOICES,
    KNOB_MODES,
    LABELS,
    MAX_KNOB,
    NUMBERS,
    OWN,
    START,
    assumptions,
    differences,
    knob_label,
    shared_default,
    spread,
)
from app.memory_rows import advice_rows, cached_advice, gpu_row, method_rows
from app.models import model_picker
from app.resources import cached_calibration, data_version
from app.state import mirror, parse_bool, seed, seed_list, share_link
from app.widgets import plain_words
from core.errors import InputError
from core.memory.gpus import catalogue as gpu_catalogue
from core.memory.setup import ATTENTIONS, OFFLOADS, OPTIMIZERS, PRECISIONS, QUANTIZATIONS, SHARDINGS, TrainingSetup
from core.registry import ALL_LINEAR, KNOBS, METHODS, PEFT_DEFAULT, choices_for, method_ids
from core.scenario import Scenario
from core.units import GIB

st.title("Memory fit")
st.caption("Peak memory per GPU over one traced training step (forward, backward, clipping, optimizer step), split "
           "into weights, gradients, optimizer states, activations, temporaries, what PyTorch's caching allocator "
           "holds beyond them (the step's allocations replayed through a model of it) and the CUDA context, at the "
           "instant of the peak. The real model class and peft wrapping run on fake tensors: no weights, no GPU.")
try:
    model = model_picker()
except InputError as exc:
    st.error(plain_words(str(exc), LABELS))
    st.stop()

gpus = list(gpu_catalogue())
seed_list("method", DEFAULT_METHODS, method_ids())
seed("gpu", START.gpu, str, gpus)
seed("batch", START.batch_size, int, low=NUMBERS["batch"][1], high=NUMBERS["batch"][2])
seed("accumulation", START.accumulation, int, low=NUMBERS["accumulation"][1], high=NUMBERS["accumulation"][2])
seed("seq", START.seq_len, int, low=NUMBERS["seq"][1], high=NUMBERS["seq"][2])
seed("gpus", START.gpus, int, low=NUMBERS["gpus"][1], high=NUMBERS["gpus"][2])
seed("train_tokens", START.dataset_tokens, int, low=NUMBERS["train_tokens"][1], high=NUMBERS["train_tokens"][2])
seed("epochs", START.epochs, float, low=NUMBERS["epochs"][1], high=NUMBERS["epochs"][2])
seed("mfu", START.mfu, float, low=NUMBERS["mfu"][1], high=NUMBERS["mfu"][2])
seed("gpu_price", START.gpu_price, float, low=0.0)
for key, default, allowed in (
    ("precision", START.precision, PRECISIONS), ("optimizer", START.optimizer, OPTIMIZERS),
    ("sharding", START.sharding, SHARDINGS), ("offload", START.offload, OFFLOADS),
    ("attention", START.attention, ATTENTIONS), ("quantization", START.quantization, QUANTIZATIONS),
    ("knob_mode", EQUAL, tuple(KNOB_MODES)),
):
    seed(key, default, str, allowed)
seed("checkpointing", START.gradient_checkpointing, parse_bool)
seed("reentrant", START.reentrant_checkpointing, parse_bool)
for name, knob in KNOBS.items():
    start = shared_default(name)
    if name in KNOB_CHOICES:
        seed(name, start, str, KNOB_CHOICES[name])
    elif knob.kind is str:
        seed(name, start or "", str)
    else:
        seed(name, start, knob.kind, low=0 if knob.kind is float else 1, high=MAX_KNOB)


def number(column: Any, key: str, **kwargs: Any) -> Any:
    label, low, high = NUMBERS[key]
    return column.number_input(label, min_value=low, max_value=high, key=key, **kwargs)


methods = st.multiselect("Methods", method_ids(), key="method", format_func=lambda m: METHODS[m].name)
with st.container(border=True):
    c1, c2, c3, c4 = st.columns(4)
    batch = number(c1, "batch")
    seq = number(c2, "seq", step=256)
    precision = c3.selectbox(FIELD_LABELS["precision"], PRECISIONS, key="precision")
    optimizer = c4.selectbox(FIELD_LABELS["optimizer"], OPTIMIZERS, key="optimizer")
    c1, c2, c3, c4 = st.columns(4)
    gpu = c1.selectbox(FIELD_LABELS["gpu"], gpus, key="gpu", format_func=lambda g: gpu_catalogue()[g].name)
    n_gpus = number(c2, "gpus")
    sharding = c3.selectbox(FIELD_LABELS["sharding"], SHARDINGS, key="sharding")
    offload = c4.selectbox(FIELD_LABELS["offload"], OFFLOADS, key="offload")
    c1, c2, c3, c4 = st.columns(4)
    attention = c1.selectbox(FIELD_LABELS["attention"], ATTENTIONS, key="attention")
    quantization = c2.selectbox(FIELD_LABELS["quantization"], QUANTIZATIONS, key="quantization",
                                help="auto: 4-bit NF4 for QLoRA, unquantized for every other method")
    checkpointing = c3.toggle(FIELD_LABELS["gradient_checkpointing"], key="checkpointing",
                              help="recompute each block in backward: less activation memory, about a third more "
                                   "compute")
    reentrant = c4.toggle(FIELD_LABELS["reentrant_checkpointing"], key="reentrant", disabled=not checkpointing,
                          help="checkpoint with use_reentrant=True, the older HF Trainer default (off: "
                               "use_reentrant=False, today's default); needs gradient checkpointing on")
    c1, c2, c3, c4, c5 = st.columns(5)
    accumulation = number(c1, "accumulation", help="micro-batches per optimizer step: memory holds one micro-batch, "
                                                   "the optimizer and its communication run once per step")
    dataset_tokens = number(c2, "train_tokens", step=1_000_000)
    epochs = number(c3, "epochs", step=0.5)
    mfu = number(c4, "mfu", step=0.05, help="the share of the GPU's peak bf16 FLOPs a run sustains")
    price = c5.number_input(FIELD_LABELS["gpu_price"], min_value=0.0, value=None, key="gpu_price",
                            placeholder="catalogue price", help="leave empty for the GPU catalogue's price")
with st.expander("Method settings", expanded=True):
    mode = st.radio("Compare the methods at", tuple(KNOB_MODES), key="knob_mode", horizontal=True,
                    format_func=KNOB_MODES.get)
    columns = st.columns(4)
    values: dict[str, Any] = {}
    for i, (name, knob) in enumerate(KNOBS.items()):
        takers = [METHODS[m].name for m in methods if name in METHODS[m].defaults]
        column = columns[i % 4]
        label = knob_label(name)
        help_text = plain_words(knob.help, LABELS) + (f". Used by {', '.join(takers)}" if takers
                                                      else ". None of the chosen methods uses it")
        disabled = mode == OWN or not takers
        if name in KNOB_CHOICES:
            values[name] = column.selectbox(label, KNOB_CHOICES[name], key=name, help=help_text, disabled=disabled)
        elif knob.kind is str:
            words = f"; {PEFT_DEFAULT} = peft's default modules for the model, {ALL_LINEAR} = every linear layer"
            values[name] = column.text_input(label, key=name, help=help_text + words + ", empty = each method's own "
                                             "default", disabled=disabled).strip() or None
        else:
            values[name] = column.number_input(
                label, min_value=0.0 if knob.kind is float else 1, max_value=float(MAX_KNOB) if knob.kind is float
                else MAX_KNOB, value=None, key=name, help=help_text, disabled=disabled,
                placeholder="each method's default", step=0.05 if knob.kind is float else 1,
            )
mirror(("method", "gpu", *NUMBERS, "gpu_price", "precision", "optimizer", "sharding", "offload", "attention",
        "quantization", "checkpointing", "reentrant", "knob_mode", *KNOBS))

if not methods:
    st.info("Choose at least one method above to see its memory.")
    st.stop()
try:
    setup = TrainingSetup(
        batch_size=int(batch), accumulation=int(accumulation), seq_len=int(seq), precision=precision,
        optimizer=optimizer,
        gradient_checkpointing=checkpointing, reentrant_checkpointing=checkpointing and reentrant,
        attention=attention, gpus=int(n_gpus), sharding=sharding, offload=offload, gpu=gpu, gpu_price=price,
        dataset_tokens=int(dataset_tokens), epochs=float(epochs), mfu=float(mfu), quantization=quantization,
    )
    own = choices_for(methods)
    choices = own if mode == OWN else choices_for(methods, **values)
    report = estimate_for(model, choices, setup)
except InputError as exc:
    st.error(plain_words(str(exc), LABELS))
    st.stop()

if mode == EQUAL and (changed := differences(choices, own)):
    st.caption("Every method is compared at the same settings above. Their own published defaults differ: "
               + "; ".join(changed) + f'. Choose "{KNOB_MODES[OWN]}" to compare those instead.')
if unequal := spread(choices):
    fix = (f'Choose "{KNOB_MODES[EQUAL]}" for a like-for-like comparison.' if mode == OWN else
           f"An empty setting takes each method's own default: give a value (e.g. {ALL_LINEAR} or module names "
           "for Targets) to make it equal.")
    st.warning("The methods are compared at different settings: " + "; ".join(unequal) + ". " + fix)
for warning in report.warnings:
    st.warning(plain_words(warning, LABELS))
gpu_spec = gpu_catalogue()[gpu]
rows = method_rows(report, cached_calibration(data_version()), gpu_spec, model)
estimated = [m for m in report.methods if m.training is not None]
capacity = gpu_spec.memory_gib
fitting = [m for m in estimated if m.training.fit and m.training.fit.fits]
st.subheader(f"{len(fitting)} of {len(report.methods)} methods fit on {n_gpus} x {gpu} ({capacity:.1f} GiB each)")
st.caption(assumptions(setup, choices))
if estimated:
    frame = breakdown_frame([(m.method, m.label, m.training.memory.to_dict()) for m in estimated])
    st.altair_chart(memory_bars(frame, capacity, gpu_spec.name), key="memory_chart")
st.dataframe(pd.DataFrame(rows), hide_index=True, key="memory_table", column_config={
    "trainable share (%)": st.column_config.NumberColumn(format="%.4f"),
    "adapter / checkpoint (MiB)": st.column_config.NumberColumn(format="%.1f"),
    "peak, device (GiB)": st.column_config.NumberColumn(format="%.2f"),
    "peak, allocated (GiB)": st.column_config.NumberColumn(format="%.2f"),
    "headroom (GiB)": st.column_config.NumberColumn(format="%+.2f"),
})

not_fitting = [(c, m) for c, m in zip(choices, report.methods, strict=True)
               if m.training is not None and m.training.fit is not None and not m.training.fit.fits]
if not_fitting:
    st.subheader("What would make it fit")
    st.caption(f"For each method that does not fit {n_gpus} x {gpu}: the cheapest changes that do, each re-estimated "
               "(changes that keep the method first, then by cost, time and peak).")
for choice, m in not_fitting:
    try:
        advice = cached_advice(model, choice, setup, model.config_json)
    except InputError as exc:
        st.error(plain_words(str(exc), LABELS))
        continue
    st.markdown(f"**{m.label}** needs {m.training.memory.device / GIB:.1f} GiB per GPU of {capacity:.1f} GiB")
    if advice.changes:
        st.dataframe(pd.DataFrame(advice_rows(advice)), hide_index=True, key=f"advice_{choice.method}",
                     column_config={"peak, device (GiB)": st.column_config.NumberColumn(format="%.1f"),
                                    "GPU memory (GiB)": st.column_config.NumberColumn(format="%.1f")})
    else:
        st.info(plain_words(advice.note, LABELS))

st.subheader("Compare GPUs")
seed("compare_gpus", False, parse_bool)
seed("compare_method", DEFAULT_METHODS[0], str, method_ids())
left, right = st.columns([1, 3], vertical_alignment="bottom")
compare_all = left.toggle("Compare every catalogue GPU", key="compare_gpus",
                          help=f"one estimate per GPU ({len(gpus)} GPUs): off keeps each rerun fast")
compare = right.selectbox("Method to compare across GPUs", [m.method for m in estimated] or methods,
                          key="compare_method", format_func=lambda m: METHODS[m].name, disabled=not compare_all)
mirror(("compare_gpus", "compare_method"))
comparison = []
for gpu_id, spec in gpu_catalogue().items() if compare_all else ():
    chosen = next(c for c in choices if c.method == compare)
    try:
        other = estimate_for(model, (chosen,), replace(setup, gpu=gpu_id))
    except InputError as exc:
        st.error(plain_words(str(exc), LABELS))
        break
    if (row := gpu_row(spec, other.methods[0])) is not None:
        comparison.append(row)
if compare_all:
    st.dataframe(pd.DataFrame(comparison), hide_index=True, key="gpu_table", column_config={
        "peak, device (GiB)": st.column_config.NumberColumn(format="%.2f"),
        "$ per GPU-hour": st.column_config.NumberColumn(format="$%.2f"),
    })

st.subheader("The same estimate from the command line")
try:
    flags = ["python", "-m", "core", "estimate", *Scenario(model, choices, training=setup).to_argv()]
except InputError as exc:
    st.info(plain_words(str(exc), LABELS))
else:
    st.code(shlex.join(flags), language="bash")
st.caption(f"Memory in GiB (2^30 bytes); time in hours, cost in US dollars. {report.model} counted with peft. "
           "Accuracy of the activation model: see docs/accuracy.md (memory against the CPU probe).")
share_link()
