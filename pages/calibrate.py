"""Calibrate: a short real fine-tune on this machine, measured against the estimate and stored in the warehouse.

The page writes the run's spec file and starts a separate process on it (core.calibrate.launcher), polls the
run folder once a second in a fragment (progress, live loss curve), can cancel it, and shows measured against
predicted when it is done. One run at a time per machine; the run shown follows the link (`run`), so a reload
or another browser finds it again. Everything it computes comes from core.calibrate.report.
"""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from app.resources import warehouse
from app.state import mirror, seed, seed_list
from core import catalogue
from core.calibrate import launcher, report
from core.calibrate.recalibrate import CPU_PROBE_NOTE, Calibration
from core.calibrate.runfolder import CURVES, RunFolder, Status, runs_dir, save_upload
from core.calibrate.spec import BUNDLED_MODELS, DEFAULT_METHODS, DEVICES, MODES, PRECISIONS, spec_from_form
from core.calibrate.train import cuda_available
from core.errors import InputError
from core.registry import METHODS, method_ids
from core.warehouse import memory_measurements

SMALL_MODEL = next(iter(BUNDLED_MODELS))
SMALL_LABEL = f"{SMALL_MODEL} (bundled: SmolLM2-135M cut to 4 blocks, 11M parameters)"
MODE_LABELS = {"probe": "Probe: memory and speed (no data)", "learn": "Learn: loss curves on your data"}

st.title("Calibrate")
st.caption(
    "A short real fine-tune on this machine: what the estimate predicts, measured. GPU runs correct later "
    "estimates, but only for the same GPU model, model family and method family, and show how many measurements "
    "stand behind each correction and how far they spread."
)
gpu = cuda_available()
if not gpu:
    st.info(f"No CUDA GPU on this machine. {CPU_PROBE_NOTE}. It also counts the bytes of weights, gradients and "
            "optimizer states; the bundled small model takes about a minute on 2 cores.")
st.caption(
    "One calibration run at a time on this machine: runs share its processors, so a second would distort both "
    "measurements. Everyone using this app sees the run in progress (and who started it) and may cancel it; "
    "every finished or cancelled run is stored in the results warehouse with what it measured."
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
model = left.selectbox("Model (catalogue, a config.json or model folder on this machine, or any Hub id)", models,
                       key="model", format_func=lambda m: SMALL_LABEL if m == SMALL_MODEL else m,
                       accept_new_options=True)
methods = right.multiselect("Methods", method_ids(), key="methods", format_func=lambda m: METHODS[m].name)
cols = st.columns(5)
device = cols[0].selectbox("Device", DEVICES, key="device")
probe_steps = 3 if gpu else 2  # after one warm-up step; two keep the CPU probe of the small model near a minute
steps = cols[1].number_input("Steps per method", min_value=0, value=probe_steps if mode == "probe" else 30,
                             key="steps")
batch = cols[2].number_input("Batch size (sequences)", min_value=1, value=1, key="batch")
seq = cols[3].number_input("Sequence length (tokens)", min_value=2, value=128, key="seq")
precision = cols[4].selectbox("Precision", PRECISIONS, key="precision")
upload = None
sizes = init = ""
if mode == "learn":
    data_cols = st.columns(3)
    upload = data_cols[0].file_uploader("Data: CSV or JSONL (text+label, or prompt+completion)", type=["csv", "jsonl"],
                                        key="data")
    sizes = data_cols[1].text_input("Data sizes (examples per class), e.g. 5,20,100", key="sizes")
    init = data_cols[2].radio("Weights", ["pretrained", "random"], key="init", horizontal=True)
mirror(["mode", "model", "methods", "device"])

live_now = launcher.live_run()
read_only = warehouse().read_only
if read_only:
    st.info("This is a read-only deployment: its warehouse cannot store new runs, so calibration is off here. Run "
            "a calibration on your own machine with TuneWise's command line, or ask whoever runs this app to turn "
            "read-only mode off.")
if live_now is not None:
    st.info(f"{live_now.busy_message[0].upper()}{live_now.busy_message[1:]}; started by {live_now.owner}.")
if st.button("Start calibration", key="start", type="primary",
             disabled=not methods or read_only or live_now is not None):
    try:
        data = save_upload(upload.name, upload.getvalue()) if upload is not None else None
        spec = spec_from_form(model=model, methods=methods, mode=mode, device=device, steps=int(steps),
                              batch_size=int(batch), seq_len=int(seq), precision=precision, data=data,
                              data_sizes=sizes, init=init)
        started = launcher.launch(spec, owner="a user of this app")
    except launcher.RunBusyError as exc:
        st.warning(str(exc))
    except InputError as exc:
        st.error(report.plain(str(exc)))
    else:
        st.query_params["run"] = started.run_id
        st.rerun()


def loss_chart(frame: pd.DataFrame) -> alt.Chart:
    frame = frame.assign(data_size=frame["data_size"].fillna(0).astype(int).astype(str))
    return alt.Chart(frame).mark_line(point=True).encode(
        x=alt.X("step:Q", title="step"), y=alt.Y("loss:Q", title="training loss (nats/token)"),
        color=alt.Color("method:N", title="method"), strokeDash=alt.StrokeDash("data_size:N", title="data size"),
        tooltip=["method:N", "data_size:N", "step:Q", alt.Tooltip("loss:Q", format=".4f")],
    ).properties(height=280)


def show(table: report.Table, key: str) -> None:
    st.caption(table.caption)
    st.dataframe(table.frame, hide_index=True, key=key, column_config={
        c: st.column_config.NumberColumn(format=f) for c, f in table.formats.items()})


@st.fragment(run_every=1)
def live(run_id: str) -> None:
    """Polls the run folder every second; a full rerun shows the results once the run is final."""
    folder = RunFolder(runs_dir() / run_id)
    if launcher.state(folder).final:
        st.rerun()
    events = list(folder.events())
    where = report.progress(events)
    st.progress(where.share, text=f"Run {run_id}: {where.text}")
    losses = report.loss_frame(events)
    if not losses.empty:
        st.altair_chart(loss_chart(losses), key="live_loss")
    if st.button("Cancel run", key="cancel"):
        launcher.cancel(folder)
        st.rerun()


def stored(folder: RunFolder) -> None:
    """Say what the runner stored; store it here when it could not (a busy warehouse at its end, say)."""
    text = report.stored_text(folder)
    if text is None and folder.complete:
        try:
            text = f"Stored in the warehouse: {warehouse().ingest_run_folder(folder.path).counts}"
        except InputError as exc:
            st.warning(f"Not stored in the warehouse yet: {report.plain(str(exc))}")
    if text is not None:
        st.success(text)


def finished(folder: RunFolder, status: Status) -> None:
    message = report.plain(status.message)
    if status.state == "failed":
        st.error(f"Run {folder.run_id} failed: {message}")
        return
    (st.warning if status.state == "cancelled" else st.success)(f"Run {folder.run_id}: {message}")
    runs = pd.DataFrame(folder.summary())
    if runs.empty:
        return
    stored(folder)
    for row in runs[runs["status"] != "ok"].itertuples():
        st.warning(f"{row.label}: {row.status}, {report.plain(str(row.reason))}")
    facts = report.RunFacts.of(folder)
    if facts.mode == "learn":
        st.subheader("Learning results")
        learned = report.learn_table(runs)
        show(learned, "results_table")
        if folder.file(CURVES).is_file():
            st.altair_chart(loss_chart(pd.read_parquet(folder.file(CURVES))), key="results_chart")
        sized = report.metric_by_size(learned)
        if sized is not None:
            st.altair_chart(alt.Chart(sized).mark_line(point=True).encode(
                x=alt.X("data size (examples per class):Q", scale=alt.Scale(type="log")),
                y=alt.Y("value:Q", title=str(sized["held-out metric"].iloc[0])), color="method:N",
                tooltip=["method:N", "data size (examples per class):Q", alt.Tooltip("value:Q", format=".4f")],
            ).properties(height=280), key="size_chart")  # fmt: skip
        return
    st.subheader("Measured vs predicted")
    show(report.probe_table(runs), "results_table")
    calibration = Calibration.from_measurements(memory_measurements(warehouse()))
    st.subheader("What this run corrects" if report.is_cuda_probe(runs) else "Activation model check")
    show(report.scope_table(runs, calibration, facts.model_family), "calibrated_table")


linked = st.query_params.get("run", "")
if linked and not (report.RUN_ID.match(linked) and (runs_dir() / linked).is_dir()):
    st.warning(f"The link's run {linked!r} is not among this machine's calibration runs; showing no run instead.")
    del st.query_params["run"]
    linked = ""
if live_now is not None:
    live(live_now.run_id)
if linked and (live_now is None or linked != live_now.run_id):
    linked_folder = RunFolder(runs_dir() / linked)
    linked_status = launcher.state(linked_folder)
    if linked_status.final:
        finished(linked_folder, linked_status)

with st.expander("Recalibration: every measurement stored so far, by scope"):
    groups = Calibration.from_measurements(memory_measurements(warehouse())).table()
    if groups.empty:
        st.caption("No calibration measurements yet.")
    else:
        st.caption(f"GPU peaks correct estimates of the same device class, model family and method family. "
                   f"{CPU_PROBE_NOTE}.")
        ratios = ("median measured/predicted", "lowest", "highest")
        st.dataframe(groups, hide_index=True, key="calibration_table",
                     column_config={c: st.column_config.NumberColumn(format="%.3f") for c in ratios})
