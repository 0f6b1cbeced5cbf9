"""Calibrate: a short real fine-tune on this machine, measured against the estimate and stored in the warehouse.

The run is a separate process (`python -m core calibrate`) writing a run folder; this page launches it, polls
the folder once a second in a fragment (progress, live loss curve), can cancel it, and when it is done
ingests the folder into the warehouse (the app is its single writer) and shows measured against predicted.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import altair as alt
import pandas as pd
import streamlit as st

from app.resources import warehouse
from app.state import mirror, seed, seed_list
from core import catalogue
from core.calibrate import launcher
from core.calibrate.recalibrate import Calibration, calibrate
from core.calibrate.runfolder import CURVES, RunFolder, Status, new_run_id, runs_dir
from core.calibrate.spec import DEFAULT_METHODS, DEVICES, MODES, PRECISIONS
from core.calibrate.train import cuda_available
from core.cli.calibrate import validate
from core.errors import InputError
from core.registry import METHODS, method_ids
from core.units import GIB, MIB
from core.warehouse import memory_measurements

SMALL_MODEL = str(Path(__file__).resolve().parents[1] / "data" / "calibrate" / "smollm2-mini")
SMALL_LABEL = "smollm2-mini (bundled: SmolLM2-135M scaled to 4 blocks, 11M parameters)"
MODE_LABELS = {"probe": "Probe: memory and speed (no data)", "learn": "Learn: loss curves on your data"}
RUN_KEY = "calibrate_run"

st.title("Calibrate")
st.caption(
    "A short real fine-tune on this machine: what the estimate predicts, measured. Results go to the warehouse "
    "and correct later estimates for this GPU, model family and method family."
)
gpu = cuda_available()
if not gpu:
    st.info(
        "No CUDA GPU on this machine. The CPU probe measures what autograd saves (activations) and the bytes of "
        "weights, gradients and optimizer states; the bundled small model takes about a minute on 2 cores."
    )

seed("mode", "probe", allowed=MODES)
seed("model", SMALL_MODEL if not gpu else "HuggingFaceTB/SmolLM2-135M")
models = [SMALL_MODEL, *sorted(catalogue.entries())]
if st.session_state["model"] not in models:  # a path or Hub id from the link or typed earlier
    models.insert(1, st.session_state["model"])
seed_list("methods", DEFAULT_METHODS.split(","), allowed=method_ids())
seed("device", "auto", allowed=DEVICES)
seed("precision", "bf16-mixed" if gpu else "fp32", allowed=PRECISIONS)

mode = st.radio("Mode", MODES, format_func=MODE_LABELS.get, key="mode", horizontal=True)
left, right = st.columns(2)
model = left.selectbox("Model (catalogue, a config.json / model folder path, or any Hub id)", models, key="model",
                       format_func=lambda m: SMALL_LABEL if m == SMALL_MODEL else m, accept_new_options=True)
methods = right.multiselect("Methods", method_ids(), key="methods", format_func=lambda m: METHODS[m].name)
cols = st.columns(5)
device = cols[0].selectbox("Device", DEVICES, key="device")
probe_steps = 3 if gpu else 2  # after one warm-up step; two keep the CPU probe of the small model near a minute
steps = cols[1].number_input("Steps per method", min_value=0, value=probe_steps if mode == "probe" else 30,
                             key="steps")
batch = cols[2].number_input("Batch size", min_value=1, value=1, key="batch")
seq = cols[3].number_input("Sequence length", min_value=2, value=128, key="seq")
precision = cols[4].selectbox("Precision", PRECISIONS, key="precision")
upload = None
if mode == "learn":
    data_cols = st.columns(3)
    upload = data_cols[0].file_uploader("Data: CSV or JSONL (text+label, or prompt+completion)", type=["csv", "jsonl"],
                                        key="data")
    sizes = data_cols[1].text_input("Data sizes (examples per class), e.g. 5,20,100", key="sizes")
    init = data_cols[2].radio("Weights", ["pretrained", "random"], key="init", horizontal=True)
mirror(["mode", "model", "methods", "device"])


def arguments(run_id: str) -> list[str]:
    """The CLI flags of the widgets; an uploaded data file is saved into the run's folder first."""
    args = [f"--{mode}", "--model", str(model), "--methods", ",".join(methods), "--device", device, "--steps",
            str(steps), "--batch-size", str(batch), "--seq-len", str(seq), "--precision", precision]
    if mode == "learn":
        if upload is not None:
            path = runs_dir() / run_id / Path(upload.name).name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(upload.getvalue())
            args += ["--data", str(path)]
        args += ["--init", init] + (["--data-sizes", sizes] if sizes.strip() else [])
    return args


read_only = warehouse().read_only
if read_only:
    st.info("This is a read-only deployment: its warehouse cannot store new runs, so calibration is off here. "
            "Run `python -m core calibrate` on your own machine, or start the app without TUNEWISE_READ_ONLY=1.")
if st.button("Start calibration", key="start", type="primary", disabled=not methods or read_only):
    run_id = new_run_id()
    try:
        argv = arguments(run_id)
        validate(argv)  # the runner's own checks, so the page shows the CLI's exact message
        launcher.launch(argv, run_id=run_id)
        st.session_state[RUN_KEY] = run_id
    except InputError as exc:
        shutil.rmtree(runs_dir() / run_id, ignore_errors=True)  # an uploaded file of a run that never started
        st.error(str(exc))


def progress(events: list[dict]) -> tuple[float, str]:
    """Share of the work done and a one-line description, from the progress events."""
    start = next((e for e in events if e["event"] == "start"), None)
    if start is None:
        return 0.0, "starting (loading torch and transformers)..."
    units = len(start["methods"]) * max(1, len(start.get("data_sizes") or []))
    finished = [i for i, e in enumerate(events) if e["event"] == "method_done"]
    done = len(finished)
    current = events[finished[-1] + 1 :] if finished else events  # the steps of the run in progress
    last = next((e for e in reversed(current) if e["event"] in ("step", "loss")), None)
    within = 0.0
    if last is not None and last.get("total_steps"):
        within = min(1.0, last["step"] / last["total_steps"])
    text = f"{done} of {units} runs done"
    if last is not None:
        text += f"; {last['method']} step {last['step']}, loss {last['loss']:.3f}"
    return min(1.0, (done + within) / units), text


def loss_chart(frame: pd.DataFrame) -> alt.Chart:
    frame = frame.assign(data_size=frame["data_size"].fillna(0).astype(int).astype(str))
    return alt.Chart(frame).mark_line(point=True).encode(
        x=alt.X("step:Q", title="step"), y=alt.Y("loss:Q", title="training loss (nats/token)"),
        color=alt.Color("method:N", title="method"), strokeDash=alt.StrokeDash("data_size:N", title="data size"),
        tooltip=["method:N", "data_size:N", "step:Q", alt.Tooltip("loss:Q", format=".4f")],
    ).properties(height=280)


@st.fragment(run_every=1)
def live(run_id: str) -> None:
    """Polls the run folder every second; a full rerun shows the results once the run is final."""
    folder = RunFolder(runs_dir() / run_id)
    status = launcher.state(folder)
    if status.final:
        st.rerun()
    events = list(folder.events())
    share, text = progress(events)
    st.progress(share, text=f"Run {run_id}: {text}")
    losses = [e for e in events if e["event"] in ("loss", "step")]
    if losses:
        st.altair_chart(loss_chart(pd.DataFrame(losses).reindex(columns=["method", "data_size", "step", "loss"])),
                        key="live_loss")
    if st.button("Cancel run", key="cancel"):
        launcher.cancel(folder)
        st.rerun()


def ingest(folder: RunFolder) -> None:
    """Land the run in the warehouse once (ingesting again is a no-op there too)."""
    marker = f"ingested_{folder.run_id}"
    if st.session_state.get(marker):
        return
    try:
        report = warehouse().ingest_run_folder(folder.path)
        st.session_state[marker] = True
        st.success(f"Stored in the warehouse: {report}")
    except InputError as exc:
        st.warning(f"Not stored in the warehouse: {exc}")


def unit(values: pd.Series) -> tuple[int, str]:
    return (GIB, "GiB") if values.max(skipna=True) >= GIB else (MIB, "MiB")


def probe_results(runs: pd.DataFrame) -> None:
    cuda = "measured_peak_allocated" in runs
    pairs = ({"peak allocated": "peak_allocated", "peak reserved": "peak_reserved"} if cuda
             else {"activations": "activations", "states": "states"})
    columns = [f"{kind}_{name}" for name in pairs.values() for kind in ("measured", "predicted")]
    runs = runs.reindex(columns=list(dict.fromkeys([*runs.columns, *columns, "tokens_per_s", "reason"])))
    scale, name = unit(runs[columns].stack())
    table = pd.DataFrame({"method": runs["label"], "status": runs["status"]})
    for title, field in pairs.items():
        measured, predicted = runs[f"measured_{field}"], runs[f"predicted_{field}"]
        table[f"measured {title} ({name})"] = measured / scale
        table[f"predicted {title} ({name})"] = predicted / scale
        table[f"{title} error (%)"] = 100 * (predicted / measured - 1)
    table["tokens/s"] = runs["tokens_per_s"]
    table["note"] = runs["reason"].fillna("")
    st.subheader("Measured vs predicted")
    st.caption("CUDA: the caching allocator's peaks over the whole step." if cuda else
               "CPU: activations = bytes autograd saved in one forward (the estimator's CPU probe); "
               "states = weights + gradients + optimizer states after a real optimizer step.")
    formats = {c: st.column_config.NumberColumn(format="%.2f") for c in table.columns if "iB)" in c}
    formats.update({c: st.column_config.NumberColumn(format="%+.3f", help="predicted / measured - 1")
                    for c in table.columns if "error" in c})
    formats["tokens/s"] = st.column_config.NumberColumn(format="%.0f", help="after one warm-up step")
    st.dataframe(table, hide_index=True, key="results_table", column_config=formats)
    first = next(iter(pairs))
    long = table.melt(id_vars=["method"], value_vars=[f"measured {first} ({name})", f"predicted {first} ({name})"],
                      var_name="kind", value_name="value").dropna()
    long["kind"] = long["kind"].str.split().str[0]
    chart = alt.Chart(long).mark_bar().encode(
        x=alt.X("method:N", title=None, axis=alt.Axis(labelAngle=0)), xOffset="kind:N",
        y=alt.Y("value:Q", title=f"{first} ({name})"), color=alt.Color("kind:N", title=None),
        tooltip=["method:N", "kind:N", alt.Tooltip("value:Q", format=".2f", title=name)],
    ).properties(height=300)
    st.altair_chart(chart, key="results_chart")


def calibrated_estimates(runs: pd.DataFrame, model_family: str) -> None:
    """The estimator's total for each method, corrected by every measurement in the warehouse so far."""
    calibration = Calibration.from_measurements(memory_measurements(warehouse()))
    rows = []
    for run in runs.dropna(subset=["predicted_total", "predicted_activations"]).itertuples():
        corrected = calibrate({"total": run.predicted_total, "activations": run.predicted_activations}, calibration,
                              device=run.device_name, model_family=model_family, method_id=run.method)
        rows.append({"method": run.label, "estimate (GiB)": run.predicted_total / GIB,
                     "calibrated (GiB)": corrected.calibrated_total / GIB if corrected else None,
                     "calibration": corrected.label if corrected else "no measurements for this method family yet"})
    if rows:
        st.subheader("Calibrated estimates")
        st.caption("The estimator's per-GPU total (with CUDA context and allocator overhead) for this setup, "
                   "corrected by the measured/predicted ratios stored so far.")
        st.dataframe(pd.DataFrame(rows), hide_index=True, key="calibrated_table", column_config={
            c: st.column_config.NumberColumn(format="%.3f") for c in ("estimate (GiB)", "calibrated (GiB)")})


def learn_results(runs: pd.DataFrame, folder: RunFolder) -> None:
    runs = runs.reindex(columns=[*runs.columns, "eval_value", "metric", "final_loss", "tokens_per_s", "reason"])
    runs = runs.loc[:, ~runs.columns.duplicated()]
    table = pd.DataFrame({
        "method": runs["label"], "data size": runs["data_size"], "status": runs["status"],
        "held-out metric": runs["metric"], "value": runs["eval_value"], "final training loss": runs["final_loss"],
        "tokens/s": runs["tokens_per_s"], "note": runs["reason"].fillna(""),
    })  # fmt: skip
    st.subheader("Learning results")
    st.dataframe(table, hide_index=True, key="results_table", column_config={
        "value": st.column_config.NumberColumn(format="%.4f"), "final training loss": st.column_config.NumberColumn(
            format="%.4f"), "tokens/s": st.column_config.NumberColumn(format="%.0f")})  # fmt: skip
    if folder.file(CURVES).is_file():
        st.altair_chart(loss_chart(pd.read_parquet(folder.file(CURVES))), key="results_chart")
    sized = table.dropna(subset=["data size", "value"])
    if sized["data size"].nunique() > 1:
        st.altair_chart(alt.Chart(sized).mark_line(point=True).encode(
            x=alt.X("data size:Q", title="training examples (per class)", scale=alt.Scale(type="log")),
            y=alt.Y("value:Q", title=str(sized["held-out metric"].iloc[0])), color="method:N",
            tooltip=["method:N", "data size:Q", alt.Tooltip("value:Q", format=".4f")],
        ).properties(height=280), key="size_chart")  # fmt: skip


def finished(folder: RunFolder, status: Status) -> None:
    if status.state == "failed":
        st.error(f"Run {folder.run_id} failed: {status.message}")
        return
    if status.state == "cancelled":
        st.warning(f"Run {folder.run_id}: {status.message}")
        return
    st.success(f"Run {folder.run_id}: {status.message}")
    runs = pd.DataFrame(folder.summary())
    for row in runs[runs["status"] != "ok"].itertuples():
        st.warning(f"{row.label}: {row.status} — {row.reason}")
    ingest(folder)
    if folder.read_spec().get("mode") == "learn":
        learn_results(runs, folder)
    else:
        probe_results(runs)
        calibrated_estimates(runs, str(folder.read_spec().get("model_family", "")))


current = st.session_state.get(RUN_KEY)
if current:
    run_folder = RunFolder(runs_dir() / current)
    run_status = launcher.state(run_folder)
    if run_status.final:
        finished(run_folder, run_status)
    else:
        live(current)

with st.expander("Recalibration: measured / predicted on this machine's past runs"):
    groups = Calibration.from_measurements(memory_measurements(warehouse())).table()
    if groups.empty:
        st.caption("No calibration measurements yet.")
    else:
        st.dataframe(groups, hide_index=True, key="calibration_table")
