"""Leave-one-source-out evaluation of the gap predictor against two baselines, on any frame of pairs.

Each source in turn is held out; the predictor is fitted on the rest, including its own interval
calibration (an inner leave-one-source-out on the training sources only), so the held-out coverage is an
honest estimate of how often an 80% interval holds a result from a source the model has never seen.

Baselines, fitted on the same training sources:
- `gap = 0`: PEFT matches FFT; interval +-(80% quantile of the training pairs' |gap|).
- `task-type median`: the median gap of the scenario's task type (all training pairs when the type is
  absent); interval from that type's 10% to 90% training quantiles.

Works on the warehouse pairs or on a synthetic frame with a known truth (the tests use one).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from core.errors import InputError
from core.gap.features import FeatureTable, prepare_pairs
from core.gap.model import COVERAGE, DEFAULT_GROUP, fit_gap_model

PREDICTOR = "TuneWise gap predictor"
ZERO = "baseline: gap = 0"
TASK_MEDIAN = "baseline: task-type median"


@dataclass(frozen=True)
class Score:
    """Held-out accuracy of one method: absolute errors in points, and 80% interval coverage."""

    name: str
    mae: float
    median_error: float
    coverage: float
    mean_width: float
    n: int

    def __post_init__(self) -> None:
        if self.n < 1:
            raise ValueError("a score needs at least one held-out pair")
        if not 0 <= self.coverage <= 1:
            raise ValueError(f"coverage {self.coverage} outside [0, 1]")


@dataclass(frozen=True)
class LosoReport:
    """The leave-one-source-out table, plus every held-out prediction for inspection."""

    group: str
    n_sources: int
    scores: tuple[Score, ...]
    predictions: pd.DataFrame

    def score(self, name: str) -> Score:
        return next(s for s in self.scores if s.name == name)

    def beats_baselines(self) -> bool:
        """True when the predictor's MAE is below both baselines'."""
        ours = self.score(PREDICTOR).mae
        return all(ours < s.mae for s in self.scores if s.name != PREDICTOR)

    def coverage_ok(self, low: float = 0.75, high: float = 0.85) -> bool:
        return low <= self.score(PREDICTOR).coverage <= high

    def by_source(self) -> pd.DataFrame:
        """Per held-out source: pairs, the predictor's MAE and coverage, and the gap = 0 MAE."""
        p = self.predictions
        return (
            p.assign(err=(p["y"] - p["mean"]).abs(), err0=p["y"].abs(), hit=p["covered"])
            .groupby("held_out")
            .agg(pairs=("y", "size"), mae=("err", "mean"), coverage=("hit", "mean"), mae_gap0=("err0", "mean"))
            .reset_index()
        )

    def to_markdown(self) -> str:
        lines = [
            f"Leave-one-source-out by `{self.group}` ({self.n_sources} sources), gap in points of a 0-100 metric",
            "",
            "| predictor | MAE | median abs error | 80% interval coverage | mean interval width | pairs |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        lines += [
            f"| {s.name} | {s.mae:.2f} | {s.median_error:.2f} | {100 * s.coverage:.1f}% | {s.mean_width:.1f} | {s.n} |"
            for s in self.scores
        ]
        return "\n".join(lines)


def _score(name: str, y: np.ndarray, mean: np.ndarray, low: np.ndarray, high: np.ndarray) -> Score:
    err = np.abs(y - mean)
    covered = (low <= y) & (y <= high)
    return Score(
        name, float(err.mean()), float(np.median(err)), float(covered.mean()), float((high - low).mean()), len(y)
    )


def _baselines(train: pd.DataFrame, test: pd.DataFrame) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    y = train["y"].to_numpy(dtype=float)
    half = float(np.quantile(np.abs(y), COVERAGE))
    n = len(test)
    zero = (np.zeros(n), np.full(n, -half), np.full(n, half))
    tail = (1 - COVERAGE) / 2
    stats = train.groupby("task_type")["y"].agg(
        median="median", low=lambda s: s.quantile(tail), high=lambda s: s.quantile(1 - tail)
    )
    fallback = (float(np.median(y)), float(np.quantile(y, tail)), float(np.quantile(y, 1 - tail)))
    cols = []
    for i, name in enumerate(("median", "low", "high")):
        cols.append(test["task_type"].map(stats[name]).fillna(fallback[i]).to_numpy(dtype=float))
    return {ZERO: zero, TASK_MEDIAN: (cols[0], cols[1], cols[2])}


def leave_one_source_out(
    pairs: pd.DataFrame, *, group: str = DEFAULT_GROUP, task_types: Sequence[str] | None = None
) -> LosoReport:
    """Hold out each source (`group` values) in turn; score the predictor and both baselines on it."""
    prepared = prepare_pairs(pairs)
    if group not in prepared.columns:
        raise InputError(f"pairs have no column {group!r} to hold sources out by")
    sources = sorted(prepared[group].astype(str).unique())
    if len(sources) < 3:
        raise InputError(f"leave-one-source-out needs at least 3 sources, found {len(sources)}")
    types = tuple(task_types) if task_types is not None else tuple(sorted(prepared["task_type"].unique()))
    keys = prepared[group].astype(str)
    frames = []
    for source in sources:
        held = (keys == source).to_numpy()
        train = prepared.loc[~held].reset_index(drop=True)
        test = prepared.loc[held].reset_index(drop=True)
        model = fit_gap_model(train, task_types=types, group=group)
        mean, low, high, n_evidence = model.interval(FeatureTable.from_pairs(test))
        ids = test["peft_result_id"].to_numpy() if "peft_result_id" in test else np.arange(len(test))
        frame = pd.DataFrame(
            {"held_out": source, "peft_result_id": ids, "y": test["y"].to_numpy(dtype=float),
             "task_type": test["task_type"].to_numpy(), "mean": mean, "low": low, "high": high,
             "n_evidence": n_evidence}
        )  # fmt: skip
        for name, (b_mean, b_low, b_high) in _baselines(train, test).items():
            frame[f"{name}|mean"], frame[f"{name}|low"], frame[f"{name}|high"] = b_mean, b_low, b_high
        frames.append(frame)
    predictions = pd.concat(frames, ignore_index=True)
    predictions["covered"] = (predictions["low"] <= predictions["y"]) & (predictions["y"] <= predictions["high"])
    y = predictions["y"].to_numpy(dtype=float)
    scores = [_score(PREDICTOR, y, *(predictions[c].to_numpy(dtype=float) for c in ("mean", "low", "high")))]
    for name in (ZERO, TASK_MEDIAN):
        cols = (predictions[f"{name}|{c}"].to_numpy(dtype=float) for c in ("mean", "low", "high"))
        scores.append(_score(name, y, *cols))
    if not all(math.isfinite(s.mae) for s in scores):
        raise ValueError("non-finite error in the leave-one-source-out table")
    return LosoReport(group, len(sources), tuple(scores), predictions)
