"""A finished run's measurements as the warehouse's records (core.warehouse.runs), built and validated here so
that a bad record fails the run, not the app's later ingest.

Per probed method, calibration_runs rows (run_id `<run>:<method>:<quantity>`):
  CUDA  peak_allocated_bytes, peak_reserved_bytes (against the estimate's allocator peaks, core.calibrate.predict),
        tokens_per_s
  CPU   activation_bytes (against the estimate's activations), state_bytes (weights + gradients + optimizer),
        tokens_per_s
and one memory_measurements row, whose config names the `component` recalibration reads: `peak_allocated`
(CUDA) or `activations` (CPU probe). A failed or out-of-memory
method gives one failed row of each (the warehouse knows ok / failed / skipped: oom is a failure whose reason
starts with "out of memory"). The learn mode records each (method, data size)'s held-out metric, and, when
the weights were pretrained, published-results rows (origin 'calibration') that the evidence explorer shows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from core.calibrate.spec import CalibrationSpec
from core.registry import REFERENCE
from core.warehouse.runs import CalibrationRun, MemoryMeasurement


@dataclass(frozen=True)
class RunFacts:
    """What every record of one run shares."""

    run_id: str
    device: str
    device_name: str
    library_versions: Mapping[str, str]


def _config(spec: CalibrationSpec, record: Mapping[str, Any], **extra: Any) -> dict[str, Any]:
    config = {k: v for k, v in spec.to_dict().items() if k != "methods"}
    config.update(method_label=record["label"], runtime_device=record.get("device"), **extra)
    return config


def _status(record: Mapping[str, Any]) -> tuple[str, str | None]:
    if record["status"] == "ok":
        return "ok", None
    return "failed", str(record.get("reason") or record["status"])


def probe_records(
    spec: CalibrationSpec, facts: RunFacts, records: Sequence[Mapping[str, Any]]
) -> tuple[list[CalibrationRun], list[MemoryMeasurement]]:
    """calibration_runs and memory_measurements rows of a probe (see the module docstring)."""
    runs: list[CalibrationRun] = []
    measurements: list[MemoryMeasurement] = []
    cuda = facts.device == "cuda"
    for record in records:
        status, reason = _status(record)
        main_quantity, component = (("peak_allocated_bytes", "peak_allocated") if cuda
                                    else ("activation_bytes", "activations"))
        quantities: list[tuple[str, Any, Any]] = [(main_quantity, None, None)]
        if status == "ok":
            quantities = (
                [("peak_allocated_bytes", record["measured_peak_allocated"], record.get("predicted_peak_allocated")),
                 ("peak_reserved_bytes", record["measured_peak_reserved"], record.get("predicted_peak_reserved"))]
                if cuda else
                [("activation_bytes", record["measured_activations"], record.get("predicted_activations")),
                 ("state_bytes", record["measured_states"], record.get("predicted_states"))]
            ) + [("tokens_per_s", record.get("tokens_per_s"), None)]  # fmt: skip
        for quantity, measured, predicted in quantities:
            runs.append(CalibrationRun(
                run_id=f"{facts.run_id}:{record['method']}:{quantity}", model=spec.model.name,
                method_id=record["method"], config=_config(spec, record, quantity=quantity), device=facts.device_name,
                library_versions=facts.library_versions, quantity=quantity, measured=_float(measured),
                predicted=_float(predicted), status=status, failure_reason=reason, task=spec.task,
            ))  # fmt: skip
        measured_bytes = record.get("measured_peak_allocated" if cuda else "measured_activations")
        predicted_bytes = record.get("predicted_peak_allocated" if cuda else "predicted_activations")
        measurements.append(MemoryMeasurement(
            model=spec.model.name, method_id=record["method"],
            config=_config(spec, record, component=component, quantity=main_quantity), device=facts.device_name,
            library_versions=facts.library_versions, measured_bytes=_int(measured_bytes) if status == "ok" else None,
            predicted_bytes=_int(predicted_bytes), status=status, failure_reason=reason,
            run_id=f"{facts.run_id}:{record['method']}:{main_quantity}",
        ))  # fmt: skip
    return runs, measurements


def learn_records(spec: CalibrationSpec, facts: RunFacts, records: Sequence[Mapping[str, Any]]) -> list[CalibrationRun]:
    """One calibration_runs row per (method, data size): its held-out metric, or why it failed."""
    runs = []
    quantity = "eval_accuracy" if spec.dataset is not None and spec.dataset.kind == "classification" else "eval_loss"
    for record in records:
        status, reason = _status(record)
        size = record.get("data_size")
        runs.append(CalibrationRun(
            run_id=f"{facts.run_id}:{record['method']}:n{size if size is not None else 'all'}:{quantity}",
            model=spec.model.name, method_id=record["method"],
            config=_config(spec, record, quantity=quantity, data_size=size, train_examples=record["train_examples"],
                           steps_done=record.get("steps"), final_loss=record.get("final_loss")),
            device=facts.device_name, library_versions=facts.library_versions, quantity=quantity,
            measured=_float(record.get("eval_value")) if status == "ok" else None, status=status,
            failure_reason=reason, task=spec.task,
        ))  # fmt: skip
    return runs


def result_rows(spec: CalibrationSpec, facts: RunFacts, records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Published-results rows for ok learn runs on pretrained weights (random init is no evidence of a task)."""
    data = spec.dataset
    if spec.init != "pretrained" or data is None:
        return []
    rows = []
    for record in records:
        if record["status"] != "ok":
            continue
        rows.append({
            "source": f"TuneWise calibration run {facts.run_id}", "table": f"learn mode on {data.name}",
            "base_model": spec.model.name, "base_params_b": _base_params(records) / 1e9, "task": data.name,
            "task_type": data.kind, "train_examples": str(record["train_examples"]), "method": record["label"],
            "trainable_pct": 100 * record["trainable_share"], "metric": record["metric"],
            "value": record["eval_value"], "adversarial": "no",
            "notes": (f"{record['steps']} steps, batch {spec.batch_size}, seq {spec.seq_len}, lr "
                      f"{record['lr']:g}, {spec.precision}, {facts.device_name}; "
                      f"{record['eval_examples']} held-out examples"),
            "seed": spec.seed,
        })  # fmt: skip
    return rows


def _base_params(records: Sequence[Mapping[str, Any]]) -> int:
    """The base model's size: the FFT count when present, else the largest total seen."""
    totals = [r["total_params"] for r in records if r.get("total_params")]
    fft = [r["total_params"] for r in records if r["method"] == REFERENCE and r.get("total_params")]
    return int(fft[0] if fft else max(totals))


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _int(value: Any) -> int | None:
    return None if value is None else int(value)
