"""Forgetting: how much of the base model's ability each method keeps, where the evidence measures it.

The warehouse's forgetting metrics (Biderman et al. 2024, "LoRA Learns Less and Forgets Less": the average
of HellaSwag, ARC-Challenge and WinoGrande after code or math training; higher = less forgetting) are paired
like target metrics. Per method and rank this reports:
- points kept relative to FFT: PEFT minus FFT on the retention metric, over every matched checkpoint;
- the drop over training: the retention score at the largest training budget minus the smallest, within
  each table (more tokens or epochs), for the method and for FFT;
- the share of the base model's score kept, only where the warehouse holds a `base` result for the same
  source, model, task and metric (none is shipped; users can import one).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from core.registry import REFERENCE


@dataclass(frozen=True)
class Retention:
    """One method (and rank) on the forgetting metrics."""

    method: str
    label: str
    checkpoints: int
    sources: tuple[str, ...]
    vs_fft_median: float | None
    vs_fft_min: float | None
    vs_fft_max: float | None
    drop_over_training: float | None
    kept_of_base_pct: float | None = None

    def __post_init__(self) -> None:
        if self.checkpoints < 1:
            raise ValueError("a retention row needs at least one checkpoint")

    def summary(self) -> str:
        parts = [f"{self.label}: {self.checkpoints} checkpoints"]
        if self.vs_fft_median is not None:
            parts.append(
                f"keeps {self.vs_fft_median:+.1f} points vs FFT "
                f"(range {self.vs_fft_min:+.1f} to {self.vs_fft_max:+.1f})"
            )
        if self.drop_over_training is not None:
            parts.append(f"{self.drop_over_training:+.1f} points from the smallest to the largest training budget")
        if self.kept_of_base_pct is not None:
            parts.append(f"keeps {self.kept_of_base_pct:.1f}% of the base model's score")
        return "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ForgettingReport:
    """Retention per method, FFT first; `notes` say what the evidence covers and what it lacks."""

    rows: list[Retention] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        return [r.summary() for r in self.rows] + self.notes

    def to_dict(self) -> dict[str, Any]:
        return {"rows": [r.to_dict() for r in self.rows], "notes": list(self.notes)}


def _budget(frame: pd.DataFrame) -> pd.Series:
    """Training budget for ordering checkpoints: tokens, else examples x epochs, else examples."""
    tokens = pd.to_numeric(frame["train_tokens"], errors="coerce").astype(float)
    examples = pd.to_numeric(frame["train_examples"], errors="coerce").astype(float)
    epochs = pd.to_numeric(frame["epochs"], errors="coerce").astype(float).fillna(1.0)
    return tokens.fillna(examples * epochs)


def _drop(frame: pd.DataFrame, value: str, keys: list[str]) -> float | None:
    """Mean over tables of (score at the largest budget - score at the smallest), for settings with 2+ budgets."""
    drops = []
    for _, group in frame.assign(budget=_budget(frame)).dropna(subset=["budget"]).groupby(keys, dropna=False):
        ordered = group.drop_duplicates("budget").sort_values("budget")
        if len(ordered) >= 2:
            drops.append(float(ordered[value].iloc[-1] - ordered[value].iloc[0]))
    return float(np.mean(drops)) if drops else None


def _label(method: str, rank: Any) -> str:
    return method if rank is None or pd.isna(rank) else f"{method} r={int(rank)}"


def forgetting(
    pairs: pd.DataFrame, base: pd.DataFrame | None = None, *, task_type: str | None = None
) -> ForgettingReport:
    """Retention per method from raw pairs (forgetting metrics are picked here) and optional `base` results
    (the `results` view's rows with method `base`)."""
    rows = pairs.loc[(pairs["metric_kind"] == "forgetting") & pairs["gap"].notna()]
    notes: list[str] = []
    if task_type is not None:
        same = rows.loc[rows["task_type"] == task_type]
        if same.empty and not rows.empty:
            notes.append(f"no forgetting evidence for {task_type} tasks: showing every task type")
        else:
            rows = same
    if rows.empty:
        return ForgettingReport([], [*notes, "the warehouse holds no forgetting metrics"])
    base_values = _base_values(rows, base)
    setting = ["source", "source_table", "model", "task"]
    fft = rows.drop_duplicates("fft_result_id")
    out = [
        Retention(
            method=REFERENCE,
            label=REFERENCE,
            checkpoints=len(fft),
            sources=tuple(sorted(fft["source"].unique())),
            vs_fft_median=None,
            vs_fft_min=None,
            vs_fft_max=None,
            drop_over_training=_drop(fft, "fft_value_100", setting),
            kept_of_base_pct=_kept(fft, "fft_value_100", base_values),
        )
    ]
    ranks = pd.to_numeric(rows["rank"], errors="coerce").astype(float).fillna(-1.0)
    for (method, rank), g in rows.assign(rank_key=ranks).groupby(["method_id", "rank_key"], sort=True):
        gap = g["peft_advantage"].astype(float)
        out.append(
            Retention(
                method=str(method),
                label=_label(method, None if rank < 0 else rank),
                checkpoints=len(g),
                sources=tuple(sorted(g["source"].unique())),
                vs_fft_median=float(gap.median()),
                vs_fft_min=float(gap.min()),
                vs_fft_max=float(gap.max()),
                drop_over_training=_drop(g, "peft_value_100", [*setting, "method_raw"]),
                kept_of_base_pct=_kept(g, "peft_value_100", base_values),
            )
        )
    if not base_values:
        notes.append(
            "no base-model score for these metrics in the warehouse: retention is shown against FFT and as the "
            "change over training; import the base model's score (method 'base') to see the share kept"
        )
    return ForgettingReport(out, notes)


def _base_values(rows: pd.DataFrame, base: pd.DataFrame | None) -> dict[tuple[str, str, str, str], float]:
    if base is None or base.empty:
        return {}
    keep = base.loc[base["method_id"] == "base"].dropna(subset=["value_100"])
    return {
        (str(r["source"]), str(r["model"]), str(r["task"]), str(r["metric"])): float(r["value_100"])
        for _, r in keep.iterrows()
    }


def _kept(frame: pd.DataFrame, value: str, base: dict[tuple[str, str, str, str], float]) -> float | None:
    """Mean of value / base x 100 over rows with a base score."""
    shares = [
        100 * float(r[value]) / base[key]
        for _, r in frame.iterrows()
        if (key := (str(r["source"]), str(r["model"]), str(r["task"]), str(r["metric"]))) in base and base[key] > 0
    ]
    return float(np.mean(shares)) if shares else None
