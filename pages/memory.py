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
from app.memory_rows import gpu_row, method_rows
from app.models import model_picker
from app.resources import cached_calibration, data_version
from app.state import mirror, parse_bool, seed, seed_list, share_link
from app.widgets import plain_words
from core.errors import InputError
from core.memory.gpus import catalogue as gpu_catalogue
from core.memory.setup import ATTENTIONS, OFFLOADS, OPTIMIZERS, PRECISIONS, QUANTIZATIONS, SHARDINGS, TrainingSetup
from core.registry import ADAPTER_DTYPES, ALL_LINEAR, KNOBS, METHODS, MethodChoice, choices_for, method_ids
from core.scenario import Scenario

DEFAULT_METHODS = ("fft", "lora", "qlora", "dora", "ia3", "prefix_tuning")
# The page's starting scenario; every other setting is TrainingSetup's own default.
START = TrainingSetup(batch_size=4, seq_len=1024, gpu="A100-80GB", dataset_tokens=50_000_000, epochs=3.0)
EQUAL, OWN = "equal", "own"
KNOB_MODES = {EQUAL: "Same settings for every method", OWN: "Each method's own defaults (as published)"}
KNOB_CHOICES: dict[str, tuple[str, ...]] = {"adapter_dtype": ADAPTER_DTYPES}
MAX_KNOB = 1_000_000
# (label, low, high) of the setup's number inputs; the same bounds check a link's values.
NUMBERS: dict[str, tuple[str, float, float]] = {
    "batch": ("Micro-batch per GPU", 1, 4096),
    "seq": ("Sequence length (tokens)", 1, 1_048_576),
    "gpus": ("GPUs", 1, 4096),
    "train_tokens": ("Training tokens (for time and cost)", 1, 10**13),
    "epochs": ("Epochs", 0.1, 1000.0),
    "mfu": ("Model-FLOPs utilisation (MFU, 0-1)", 0.01, 1.0),
}
# The setup fields behind the page's inputs, so engine messages name the page's labels, not CLI flags.
FIELD_LABELS = {
    "batch_size": NUMBERS["batch"][0], "seq_len": NUMBERS["seq"][0], "gpus": NUMBERS["gpus"][0],
    "dataset_tokens": NUMBERS["train_tokens"][0], "epochs": NUMBERS["epochs"][0], "mfu": NUMBERS["mfu"][0],
    "precision": "Precision", "optimizer": "Optimizer", "attention": "Attention", "sharding": "Sharding",
    "offload": "Offload", "gpu": "GPU", "gpu_price": "Price ($ per GPU-hour)", "quantization": "Base quantization",
    "gradient_checkpointing": "Gradient checkpointing",
}


def knob_label(name: str) -> str:
    return name.replace("_", " ").capitalize()


LABELS = {"--" + f.replace("_", "-"): label for f, label in FIELD_LABELS.items()}
LABELS |= {knob.cli_flag: knob_label(name) for name, knob in KNOBS.items()}


def shared_default(name: str) -> Any:
    """The value a knob starts at when every method shares it: the registry default of the first method (in
    registry order) that takes it; None (each method derives it) where a method scales it from another knob."""
    if any(name in METHODS[m].scaled_defaults for m in method_ids()):
        return None
    return next(METHODS[m].defaults[name] for m in method_ids() if name in METHODS[m].defaults)


def shown(value: Any) -> str:
    if value is None:
        return "peft's default for the model"
    return ",".join(value) if isinstance(value, tuple) else f"{value:g}" if isinstance(value, float) else str(value)


def differences(ours: tuple[MethodChoice, ...], own: tuple[MethodChoice, ...]) -> list[str]:
    """Per method, the knobs where the compared settings differ from the method's registry defaults."""
    lines = []
    for mine, theirs in zip(ours, own, strict=True):
        changed = [f"{knob_label(k)} {shown(v)}" for k, v in theirs.knob_values().items()
                   if mine.knob_values()[k] != v]
        if changed:
            lines.append(f"{theirs.spec.name}: {', '.join(changed)}")
    return lines


def spread(own: tuple[MethodChoice, ...]) -> list[str]:
    """The knobs whose value differs between the compared methods, with each method's value."""
    lines = []
    for name in KNOBS:
        values = {c.spec.name: c.knob_values()[name] for c in own if name in c.spec.defaults}
        if len(set(map(shown, values.values()))) > 1:
            lines.append(f"{knob_label(name)}: " + ", ".join(f"{m} {shown(v)}" for m, v in values.items()))
    return lines


def assumptions(setup: TrainingSetup, choices: tuple[MethodChoice, ...]) -> str:
    """The settings every figure below depends on, in one line."""
    peft = [c for c in choices if c.spec.is_peft]
    full = [c for c in choices if not c.spec.is_peft]
    parts = []
    if peft:
        dtypes = sorted({c.adapter_dtype for c in peft if c.adapter_dtype})
        parts.append(f"PEFT methods on {setup.compute_dtype} base weights with {'/'.join(dtypes) or 'fp32'} "
                     f"adapters (base quantization: {setup.quantization}; auto = 4-bit NF4 for QLoRA)")
    if full:
        master = " with fp32 master weights" if setup.mixed else ""
        parts.append(f"{', '.join(c.spec.name for c in full)} in {setup.precision}{master}")
    ckpt = "on (about a third more compute)" if setup.gradient_checkpointing else "off"
    parts.append(f"micro-batch {setup.batch_size} x {setup.seq_len:,} tokens per GPU, gradient checkpointing {ckpt}, "
                 f"{setup.optimizer}, {setup.attention} attention, {setup.gpus} GPU(s), sharding {setup.sharding}, "
                 f"offload {setup.offload}")
    parts.append(f"time and cost: {setup.epochs:g} epoch(s) over {setup.dataset_tokens:,} tokens at "
                 f"{setup.mfu:.0%} MFU")
    return "Assumptions: " + "; ".join(parts) + "."


st.title("Memory fit")
st.caption("Peak memory per GPU over one traced training step (forward, backward, clipping, optimizer step), split "
           "into weights, gradients, optimizer states, activations, temporaries and device overhead, at the instant "
           "of the peak. The real model class and peft wrapping run on fake tensors: no weights, no GPU.")
try:
    model = model_picker()
except InputError as exc:
    st.error(plain_words(str(exc), LABELS))
    st.stop()

gpus = list(gpu_catalogue())
seed_list("method", DEFAULT_METHODS, method_ids())
seed("gpu", START.gpu, str, gpus)
seed("batch", START.batch_size, int, low=NUMBERS["batch"][1], high=NUMBERS["batch"][2])
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
    c1, c2, c3, c4 = st.columns(4)
    dataset_tokens = number(c1, "train_tokens", step=1_000_000)
    epochs = number(c2, "epochs", step=0.5)
    mfu = number(c3, "mfu", step=0.05, help="the share of the GPU's peak bf16 FLOPs a run sustains")
    price = c4.number_input(FIELD_LABELS["gpu_price"], min_value=0.0, value=None, key="gpu_price",
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
            values[name] = column.text_input(label, key=name, help=help_text + f"; empty = peft's default for the "
                                             f"model, or {ALL_LINEAR}", disabled=disabled).strip() or None
        else:
            values[name] = column.number_input(
                label, min_value=0.0 if knob.kind is float else 1, max_value=float(MAX_KNOB) if knob.kind is float
                else MAX_KNOB, value=None, key=name, help=help_text, disabled=disabled,
                placeholder="each method's default", step=0.05 if knob.kind is float else 1,
            )
seed("compare_method", DEFAULT_METHODS[0], str, method_ids())
mirror(("method", "gpu", *NUMBERS, "gpu_price", "precision", "optimizer", "sharding", "offload", "attention",
        "quantization", "checkpointing", "knob_mode", *KNOBS))

if not methods:
    st.info("Choose at least one method above to see its memory.")
    st.stop()
try:
    setup = TrainingSetup(
        batch_size=int(batch), seq_len=int(seq), precision=precision, optimizer=optimizer,
        gradient_checkpointing=checkpointing, attention=attention, gpus=int(n_gpus), sharding=sharding,
        offload=offload, gpu=gpu, gpu_price=price, dataset_tokens=int(dataset_tokens), epochs=float(epochs),
        mfu=float(mfu), quantization=quantization,
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

st.subheader("Compare GPUs")
compare = st.selectbox("Method to compare across GPUs", [m.method for m in estimated] or methods,
                       key="compare_method", format_func=lambda m: METHODS[m].name)
mirror(("compare_method",))
chosen = next(c for c in choices if c.method == compare)
comparison = []
for gpu_id, spec in gpu_catalogue().items():
    try:
        other = estimate_for(model, (chosen,), replace(setup, gpu=gpu_id))
    except InputError as exc:
        st.error(plain_words(str(exc), LABELS))
        break
    if (row := gpu_row(spec, other.methods[0])) is not None:
        comparison.append(row)
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
           "Accuracy of the activation model: see the README's Accuracy section (CPU probe comparison).")
share_link()
