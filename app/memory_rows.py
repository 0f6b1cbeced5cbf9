"""The Memory page's tables: one row per method and one per GPU, in words where a figure does not exist.

No cell is empty or a placeholder: a batch that does not fit says what would, a run that cannot start has no
hours or dollars but says why, and an uncalibrated peak says what a calibration would need.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from core.advice import Advice, dollars, duration, make_it_fit
from core.calibrate.recalibrate import Calibration, calibrate
from core.estimate import EstimateReport, MethodEstimate
from core.memory.gpus import Gpu
from core.memory.setup import TrainingSetup
from core.models import ResolvedModel
from core.registry import METHODS, MethodChoice
from core.scenario import Scenario
from core.units import GIB

NOT_ESTIMATED = "no memory figure"


def _hours(m: MethodEstimate) -> tuple[str, str]:
    """(hours, dollars) as text: figures when the run can start, otherwise the reason it has none."""
    time = m.training.time if m.training is not None else None
    if time is None or time.hours is None or time.usd is None:
        reason = time.note if time is not None else NOT_ESTIMATED
        return reason, reason
    return f"{time.hours:,.1f}", f"{time.usd:,.2f}" if time.usd < 100 else f"{time.usd:,.0f}"


def method_rows(
    report: EstimateReport, calibration: Calibration, gpu: Gpu, model: ResolvedModel
) -> list[dict[str, Any]]:
    """One row per method: counts, both peaks, the fit in words, time and cost only where the run fits."""
    rows = []
    for m in report.methods:
        row: dict[str, Any] = {"method": m.label}
        if m.count is None:
            rows.append(row | {"note": m.error})
            continue
        row["trainable share (%)"] = 100 * m.count.trainable_share
        row["adapter / checkpoint (MiB)"] = m.count.adapter_bytes / 2**20
        training = m.training
        if training is None:
            rows.append(row | {"note": m.memory_error or NOT_ESTIMATED})
            continue
        memory, fit = training.memory, training.fit
        row["peak, device (GiB)"] = memory.device / GIB
        row["peak, reserved (GiB)"] = memory.reserved / GIB
        row["reserved from"] = memory.reserved_from  # replay, scaled or prior: core.memory.budget.RESERVED_SOURCES
        row["peak, allocated (GiB)"] = memory.allocated / GIB
        row["peak during"] = memory.phase
        if fit is not None:
            row["fits"] = "yes" if fit.fits else "no"
            row["headroom (GiB)"] = fit.headroom / GIB
            row["largest micro-batch"] = fit.batch_text
            row["fewest GPUs"] = fit.fewest_text + (f" ({fit.unsuited_text})" if fit.unsuited else "")
        row["hours"], row["cost ($)"] = _hours(m)
        family = METHODS[m.method].family
        calibrated = calibrate(memory.to_dict(), calibration, device=gpu.name, model_family=model.model_type,
                               method_id=m.method)
        row["calibrated peak"] = (f"{calibrated.calibrated_total / GIB:.2f} GiB: {calibrated.label}" if calibrated
                                  else calibration.uncalibrated_reason(gpu.name, model.model_type, family))
        paged = (f"the paged optimizer's {memory.paged / GIB:.2f} GiB of states sit in unified memory, outside the "
                 "peak: paged to CPU memory when the GPU is full" if memory.paged else "")
        row["note"] = "; ".join(n for n in (m.memory_error, paged) if n)
        rows.append(row)
    return rows


def gpu_row(gpu: Gpu, m: MethodEstimate) -> dict[str, Any] | None:
    """One method on one GPU: fits, largest batch and fewest GPUs in words, hours and cost where it fits."""
    training = m.training
    if training is None or training.fit is None:
        return None
    fit = training.fit
    hours, usd = _hours(m)
    return {
        "GPU": gpu.name, "memory (GiB)": gpu.memory_gib, "peak, device (GiB)": training.memory.device / GIB,
        "fits": "yes" if fit.fits else "no", "largest micro-batch": fit.batch_text, "fewest GPUs": fit.fewest_text,
        "hours": hours, "cost ($)": usd, "$ per GPU-hour": gpu.usd_per_hour,
    }


@st.cache_data(show_spinner="Looking for the cheapest changes that make it fit...", max_entries=128)
def cached_advice(_model: ResolvedModel, choice: MethodChoice, setup: TrainingSetup, model_key: str) -> Advice:
    """make_it_fit for one method that does not fit (each change re-estimated by the engine); keyed on the config."""
    del model_key
    return make_it_fit(Scenario(_model, (choice,), training=setup).skeleton_key, choice, setup)


def advice_rows(advice: Advice) -> list[dict[str, Any]]:
    """One row per change, cheapest first: what to change, the method it gives, its device peak, time and cost."""
    rows = []
    for change in advice.changes:
        if change.hours is None or change.usd is None:
            time = cost = "no time without a dataset size"
        else:
            ratio = "" if change.time_ratio is None else f" ({100 * (change.time_ratio - 1):+.0f}% time)"
            time, cost = duration(change.hours) + ratio, dollars(change.usd)
        rows.append({"change": change.what, "method": change.label, "GPUs": f"{change.gpus} x {change.setup.gpu}",
                     "peak, device (GiB)": change.peak_bytes / GIB, "GPU memory (GiB)": change.gpu_memory / GIB,
                     "time": time, "cost": cost})
    return rows
