"""Cached estimates and recommendations, and the Decide and Guide pages' table rows (in words where a figure
does not exist: a run that does not fit has no hours or dollars, it says so)."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from core.advice import dollars, duration
from core.estimate import EstimateReport, estimate
from core.gap.recommend import MethodOption, Recommendation, RecommendRequest, recommend
from core.memory.budget import SHARDING_NAMES
from core.memory.setup import TrainingSetup
from core.models import ResolvedModel
from core.registry import REFERENCE, MethodChoice
from core.scenario import Scenario
from core.units import GIB, human_bytes

DOES_NOT_FIT = "does not fit"


@st.cache_data(show_spinner="Estimating with peft on the meta device...", max_entries=256)
def cached_estimate(
    _model: ResolvedModel, choices: tuple[MethodChoice, ...], setup: TrainingSetup, model_key: str = ""
) -> EstimateReport:
    """One scenario's estimate; methods that cannot apply are reported, not raised. Keyed on the model's config."""
    del model_key
    return estimate(Scenario(_model, choices, training=setup), skip_inapplicable=True)


def estimate_for(model: ResolvedModel, choices: tuple[MethodChoice, ...], setup: TrainingSetup) -> EstimateReport:
    return cached_estimate(model, choices, setup, model_key=model.config_json)


@st.cache_resource(show_spinner="Ranking methods: memory, time, cost and expected gap...", max_entries=64)
def _cached_recommendation(
    _request: RecommendRequest, _model: ResolvedModel, _wh: Any, key: tuple[str, str, tuple[int, ...]]
) -> Recommendation:
    del key
    return recommend(_request, wh=_wh, resolved=_model)


def recommendation_for(request: RecommendRequest, model: ResolvedModel, wh: Any,
                       version: tuple[int, ...]) -> Recommendation:
    """Cached per request (its repr holds every field), model config and warehouse state; only read."""
    return _cached_recommendation(request, model, wh, (repr(request), model.config_json, version))


def _hours_and_cost(option: MethodOption, tasks: int) -> tuple[str, str]:
    plan = option.plan
    if plan is None or plan.hours is None or plan.dollars is None:
        return DOES_NOT_FIT, DOES_NOT_FIT
    return duration(tasks * plan.hours), dollars(tasks * plan.dollars)


def option_rows(result: Recommendation) -> pd.DataFrame:
    """The ranked methods, one row each, every cell a figure with its unit or words (never empty)."""
    tasks = result.request.tasks
    rows = []
    for rank, o in enumerate(result.options, start=1):
        gap, plan, reference = o.gap, o.plan, o.method == REFERENCE
        hours, cost = _hours_and_cost(o, tasks)
        rows.append({
            "rank": rank, "method": o.label, "fits": "yes" if o.fits else "no",
            "peak per GPU (GiB)": plan.per_gpu_bytes / GIB if plan else float("nan"),
            "on": f"{plan.gpus} x {plan.gpu.id}, {SHARDING_NAMES[plan.sharding]}" if plan else o.error,
            "expected gap (points)": 0.0 if reference or gap is None else gap.mean,
            "80% interval": "reference" if reference else (f"{gap.low:+.1f} to {gap.high:+.1f}" if gap else o.error),
            "P(FFT ahead by > 1 point)": "reference" if reference or gap is None else f"{gap.p_fft_better:.0%}",
            "own pairs": "reference" if reference else str(o.reported),
            "verdict": "reference" if reference or gap is None else gap.verdict,
            "robustness (ood gap)": "reference" if reference else (
                o.robust.summary() if o.robust is not None else "no out-of-distribution evidence"),
            "hours (all tasks)": hours, "cost (all tasks)": cost,
            "storage (all tasks)": human_bytes(o.storage_bytes) if o.storage_bytes is not None else o.error,
            "reason": o.reason,
        })  # fmt: skip
    return pd.DataFrame(rows)


def pareto_points(result: Recommendation) -> pd.DataFrame:
    """What `app.charts.pareto_chart` plots: one point per planned method (FFT at gap 0, the reference)."""
    return pd.DataFrame([
        {"method_id": o.method, "label": o.label, "peak_gib": o.plan.per_gpu_bytes / GIB,
         "gap": 0.0 if o.gap is None else o.gap.mean, "fits": o.fits}
        for o in result.options if o.plan is not None
    ], columns=["method_id", "label", "peak_gib", "gap", "fits"])  # fmt: skip


def comparison_table(result: Recommendation) -> pd.DataFrame:
    """The seed paper's comparison (resources, accuracy, time, memory, multi-task storage, cost), one column per
    method, every cell from the recommender's plan and gap for this request."""
    tasks, task_type = result.request.tasks, result.request.task_type
    table: dict[str, dict[str, str]] = {}
    for o in result.options:
        c = o.candidate
        if c is None:
            table[o.label] = {"Note": o.error}
            continue
        gap = c.gap
        accuracy = "the reference" if gap is None else (
            f"{gap.mean:+.1f} points [{gap.low:+.1f}, {gap.high:+.1f}] ({gap.verdict}; P(FFT ahead by > 1) "
            f"{gap.p_fft_better:.0%}; {gap.n_evidence} {gap.evidence_basis})")
        hours, cost = _hours_and_cost(o, 1)
        on = f"{c.plan.gpus} x {c.plan.gpu.id}"
        table[o.label] = {
            "Resources: trainable parameters": f"{c.count.trainable_params:,} ({100 * c.count.trainable_share:.3f}%)",
            f"Accuracy on {task_type} (gap to FFT, 80% interval)": accuracy,
            f"Training time per task ({on})": hours,
            "Memory per GPU (device peak)": f"{c.plan.per_gpu_bytes / GIB:.1f} GiB"
                                            + ("" if c.plan.fits else f" ({DOES_NOT_FIT} {on})"),
            f"Multi-task: storage for {tasks} tasks": human_bytes(c.storage_bytes),
            f"Cost per task ({on}, on-demand)": cost,
        }  # fmt: skip
    return pd.DataFrame(table)
