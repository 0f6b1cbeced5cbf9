"""What the Calibrate page shows, computed here so the page only renders: progress from the run folder's events,
the measured-vs-predicted tables, the scope of each correction, and messages in the page's own words (widget
names instead of CLI flags, file names instead of server paths).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from core.calibrate.recalibrate import CPU_PROBE_NOTE, Calibration, calibrate
from core.calibrate.runfolder import RunFolder
from core.registry import KNOBS, METHODS
from core.units import GIB, MIB

RUN_ID = re.compile(r"^\d{8}-\d{6}-[0-9a-f]{6}$")
# The page's widget names for the CLI's flags, so a shared validation message reads as the page's own words.
FLAG_WORDS: Mapping[str, str] = {
    "--steps": "Steps per method", "--time-budget": "Time budget", "--batch-size": "Batch size",
    "--seq-len": "Sequence length", "--precision": "Precision", "--device": "Device", "--methods": "Methods",
    "--data-sizes": "Data sizes", "--data": "Data", "--learn": "Learn mode", "--probe": "Probe mode",
    "--init": "Weights", "--gradient-checkpointing": "gradient checkpointing", "--attention": "attention",
    "--model": "Model", "--gpus": "GPUs", "--optimizer": "optimizer", "--lr": "learning rate",
    "--eval-fraction": "held-out share", "--task": "task", "--sharding": "sharding",
    "--trust-remote-code": "trusting the model's own code",
    **{knob.cli_flag: name.replace("_", " ") for name, knob in KNOBS.items()},
}  # fmt: skip
_FLAG = re.compile(r"--[a-z][a-z0-9-]*( FILE)?")
_PATH = re.compile(r"(?<![\w.])(?:/[\w.+-]+)+/([\w.+-]+)")


def plain(message: str) -> str:
    """A validation or failure message in the page's words: flags become widget names, server paths file names."""
    words = _FLAG.sub(lambda m: "a data file" if m.group(1) else FLAG_WORDS.get(m.group(0), m.group(0)[2:]
                                                                                 .replace("-", " ")), message)
    return _PATH.sub(r"\1", words)


@dataclass(frozen=True)
class Progress:
    """Share of the work done (0..1) and one line saying where the run is."""

    share: float
    text: str

    def __post_init__(self) -> None:
        if not 0 <= self.share <= 1:
            raise ValueError(f"progress share {self.share} is outside 0..1")


def progress(events: Sequence[Mapping[str, Any]]) -> Progress:
    """Where a run is, from its progress events (one run: its methods, or its (method, data size) trainings)."""
    start = next((e for e in events if e["event"] == "start"), None)
    if start is None:
        return Progress(0.0, "starting (loading torch and transformers)...")
    sizes = len(start.get("data_sizes") or [])
    units = len(start["methods"]) * max(1, sizes)
    finished = [i for i, e in enumerate(events) if e["event"] == "method_done"]
    current = events[finished[-1] + 1 :] if finished else events  # the steps of the training in progress
    last = next((e for e in reversed(current) if e["event"] in ("step", "loss")), None)
    within = min(1.0, last["step"] / last["total_steps"]) if last is not None and last.get("total_steps") else 0.0
    what = "trainings (method x data size)" if sizes else "methods"
    text = f"{len(finished)} of {units} {what} done"
    if last is not None:
        text += f"; {METHODS[last['method']].name} step {last['step']}, training loss {last['loss']:.3f}"
    return Progress(min(1.0, (len(finished) + within) / units), text)


def loss_frame(events: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """The training-loss points of the progress events (method, data size, step, loss)."""
    points = [e for e in events if e["event"] in ("loss", "step")]
    frame = pd.DataFrame(points).reindex(columns=["method", "data_size", "step", "loss"])
    return frame.assign(method=frame["method"].map(lambda m: METHODS[m].name if m in METHODS else m))


@dataclass(frozen=True)
class RunFacts:
    """What the page needs of a run folder's spec file, read without re-validating it."""

    mode: str
    model_family: str
    methods: int

    @classmethod
    def of(cls, folder: RunFolder) -> RunFacts:
        data = folder.read_spec()
        model = data.get("model") or {}
        family = str(json.loads(model.get("config_json") or "{}").get("model_type", "")) if model else ""
        return cls(str(data.get("mode", "probe")), family, len(data.get("methods") or []))


def _unit(values: pd.Series) -> tuple[int, str]:
    return (GIB, "GiB") if values.max(skipna=True) >= GIB else (MIB, "MiB")


@dataclass(frozen=True)
class Table:
    """A table to show, its caption and the number formats of its columns ('%.2f', '%+.1f', ...)."""

    frame: pd.DataFrame
    caption: str
    formats: Mapping[str, str]


def is_cuda_probe(runs: pd.DataFrame) -> bool:
    return "measured_peak_allocated" in runs


def probe_table(runs: pd.DataFrame) -> Table:
    """Measured against predicted per method: allocator peaks on CUDA, activations and states on the CPU."""
    cuda = is_cuda_probe(runs)
    pairs = ({"peak allocated": "peak_allocated", "peak reserved": "peak_reserved"} if cuda
             else {"activations": "activations", "states": "states"})
    columns = [f"{kind}_{name}" for name in pairs.values() for kind in ("measured", "predicted")]
    runs = runs.reindex(columns=list(dict.fromkeys([*runs.columns, *columns, "tokens_per_s", "reason"])))
    scale, unit = _unit(runs[columns].stack())
    table = pd.DataFrame({"method": runs["label"], "status": runs["status"]})
    formats: dict[str, str] = {}
    for title, name in pairs.items():
        measured, predicted = runs[f"measured_{name}"], runs[f"predicted_{name}"]
        table[f"measured {title} ({unit})"] = measured / scale
        table[f"predicted {title} ({unit})"] = predicted / scale
        table[f"{title} error (%)"] = 100 * (predicted / measured - 1)
        formats |= {f"measured {title} ({unit})": "%.2f", f"predicted {title} ({unit})": "%.2f",
                    f"{title} error (%)": "%+.1f"}
    table["speed (tokens/s)"] = runs["tokens_per_s"]
    formats["speed (tokens/s)"] = "%.0f"
    table["note"] = runs["reason"].fillna("")
    caption = ("CUDA: the caching allocator's peaks over the whole step; error = predicted / measured - 1."
               if cuda else f"{CPU_PROBE_NOTE}. Activations = bytes autograd saved in one forward; states = weights "
               "+ gradients + optimizer states after a real optimizer step; error = predicted / measured - 1.")
    return Table(table, caption, formats)


def learn_table(runs: pd.DataFrame) -> Table:
    runs = runs.reindex(columns=list(dict.fromkeys([*runs.columns, "data_size", "eval_value", "metric",
                                                    "final_loss", "tokens_per_s", "reason"])))
    table = pd.DataFrame({
        "method": runs["label"], "data size (examples per class)": runs["data_size"], "status": runs["status"],
        "held-out metric": runs["metric"], "value": runs["eval_value"],
        "final training loss (nats/token)": runs["final_loss"], "speed (tokens/s)": runs["tokens_per_s"],
        "note": runs["reason"].fillna(""),
    })  # fmt: skip
    formats = {"value": "%.4f", "final training loss (nats/token)": "%.4f", "speed (tokens/s)": "%.0f"}
    return Table(table, "Each method trained from the same weights and seed for the same budget.", formats)


def metric_by_size(table: Table) -> pd.DataFrame | None:
    """The learn table's held-out metric per (method, data size), when there are several sizes to compare."""
    sized = table.frame.dropna(subset=["data size (examples per class)", "value"])
    return sized if sized["data size (examples per class)"].nunique() > 1 else None


def scope_table(runs: pd.DataFrame, calibration: Calibration, model_family: str) -> Table:
    """What this run's measurements do to estimates.

    CUDA: each method's estimate beside its calibrated value (or why none applies); CPU: the activation check,
    which corrects nothing."""
    ok = runs[runs["status"] == "ok"] if "status" in runs else runs
    if not is_cuda_probe(runs):
        rows = [{"method": r.label, "measured / predicted activations": r.measured_activations /
                 r.predicted_activations} for r in ok.itertuples() if getattr(r, "predicted_activations", 0)]
        return Table(pd.DataFrame(rows, columns=["method", "measured / predicted activations"]),
                     f"{CPU_PROBE_NOTE}: estimates for GPUs stay as they are.",
                     {"measured / predicted activations": "%.4f"})
    rows = []
    for r in runs.dropna(subset=["predicted_total"]).itertuples():
        corrected = calibrate({"total": r.predicted_total}, calibration, device=r.device_name,
                              model_family=model_family, method_id=r.method)
        rows.append({
            "method": r.label, "estimate (GiB)": r.predicted_total / GIB,
            "calibrated (GiB)": corrected.calibrated_total / GIB if corrected else r.predicted_total / GIB,
            "calibration": corrected.label if corrected else calibration.uncalibrated_reason(
                r.device_name, model_family, METHODS[r.method].family),
        })  # fmt: skip
    return Table(pd.DataFrame(rows), "The estimator's per-GPU device peak for this setup, corrected by the GPU peaks "
                 "measured on the same device class, model family and method family (uncorrected where none).",
                 {"estimate (GiB)": "%.3f", "calibrated (GiB)": "%.3f"})


def stored_text(folder: RunFolder) -> str | None:
    """'Stored in the warehouse: 1 run, 4 methods, ...' once the runner stored the run; None when it did not."""
    stored = folder.stored()
    if not stored.get("stored"):
        return None
    return f"Stored in the warehouse: {stored['counts']}"
