"""Cached estimates and their table rows, shared by the Decide, Memory and Guide pages."""

from __future__ import annotations

from typing import Any

import streamlit as st

from core.estimate import EstimateReport, estimate
from core.memory.setup import TrainingSetup
from core.models import ResolvedModel
from core.registry import MethodChoice
from core.scenario import Scenario
from core.units import GIB


@st.cache_data(show_spinner="Estimating with peft on the meta device...", max_entries=256)
def cached_estimate(
    _model: ResolvedModel, choices: tuple[MethodChoice, ...], setup: TrainingSetup, model_key: str = ""
) -> EstimateReport:
    """One scenario's estimate; methods that cannot apply are reported, not raised. Keyed on the model's config."""
    del model_key
    return estimate(Scenario(_model, choices, training=setup), skip_inapplicable=True)


def estimate_for(model: ResolvedModel, choices: tuple[MethodChoice, ...], setup: TrainingSetup) -> EstimateReport:
    return cached_estimate(model, choices, setup, model_key=model.config_json)


def method_rows(report: EstimateReport) -> list[dict[str, Any]]:
    """One table row per method with units in the column names."""
    rows = []
    for m in report.methods:
        row: dict[str, Any] = {"method": m.label}
        if m.count is None:
            rows.append(row | {"note": m.error})
            continue
        row["trainable share (%)"] = 100 * m.count.trainable_share
        training = m.training
        if training is not None:
            row["peak, device (GiB)"] = training.memory.device / GIB
            row["peak, allocated (GiB)"] = training.memory.allocated / GIB
            row["peak during"] = training.memory.phase
            fit = training.fit
            if fit is not None:
                row["fits"] = "yes" if fit.fits else "no"
                row["headroom (GiB)"] = fit.headroom / GIB
                row["largest micro-batch"] = fit.max_batch_size
                row["fewest GPUs (ZeRO-3)"] = fit.min_gpus.get("zero3")
            row["hours"] = training.time.hours
            row["cost ($)"] = training.time.usd
        row["adapter / checkpoint (MiB)"] = m.count.adapter_bytes / 2**20
        row["note"] = m.memory_error
        rows.append(row)
    return rows
