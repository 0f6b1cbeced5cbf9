"""Nested leave-one-source-out evaluation of the gap predictor against "gap = 0", on any frame of pairs.

Each source in turn is held out; the predictor is fitted on the rest, and every setting it has (the
shrinkage towards 0 and the interval scale) is chosen inside that fit by an inner leave-one-source-out on the
training sources only (`model.calibrate`). So the held-out figures estimate how the answer does on a paper the
model has never seen, settings included.

Baselines, fitted on the same training sources:
- `gap = 0`: PEFT matches FFT; interval +-h with h the source-weighted conformal 80% quantile of the training
  pairs' |gap| (its own calibrated interval: "gap = 0" predicts the same for every fold, so this is its
  leave-one-source-out calibration too);
- `task-type median`: the median gap of the scenario's task type (all training pairs when the type is
  absent); interval from that type's 10% to 90% training quantiles.

Scores: mean absolute error, the interval score at 80% (Winkler; proper: a narrow interval that misses pays
2/alpha times the miss), coverage overall and per source, and the Brier score of P(FFT ahead by > 1 point).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from core.errors import InputError
from core.gap.features import FeatureTable
from core.gap.model import (
    DEFAULT_GROUP,
    conformal_level,
    fit_gap_model,
    interval_score,
    per_source_mean,
    source_weights,
    weighted_quantile,
)
from core.gap.pairs import prepare_pairs
from core.gap.settings import GapSettings

PREDICTOR = "TuneWise gap predictor"
ZERO = "baseline: gap = 0"
TASK_MEDIAN = "baseline: task-type median"
NAMES: tuple[str, ...] = (PREDICTOR, ZERO, TASK_MEDIAN)


@dataclass(frozen=True)
class Score:
    """Held-out accuracy of one predictor, in points; `*_per_source` average each source's figure."""

    name: str
    mae: float
    mae_per_source: float
    interval_score: float
    interval_score_per_source: float
    coverage: float
    worst_source_coverage: float
    mean_width: float
    median_width: float
    brier: float
    spearman: float  # rank correlation of predicted and published gaps, all held-out pairs pooled
    spearman_within: float  # the mean over sources of the rank correlation inside each (papers weighted equally)
    n: int

    def __post_init__(self) -> None:
        if self.n < 1:
            raise ValueError("a score needs at least one held-out pair")
        if not (0 <= self.coverage <= 1 and 0 <= self.worst_source_coverage <= 1):
            raise ValueError(f"coverage {self.coverage} outside [0, 1]")


@dataclass(frozen=True)
class LosoReport:
    """The nested leave-one-source-out table, plus every held-out prediction for inspection."""

    group: str
    n_sources: int
    scores: tuple[Score, ...]
    predictions: pd.DataFrame
    chosen_per_fold: tuple[str, ...]

    def score(self, name: str) -> Score:
        return next(s for s in self.scores if s.name == name)

    def by_source(self) -> pd.DataFrame:
        """Per held-out source: pairs, and each predictor's MAE, interval score and coverage."""
        p = self.predictions
        out = p.groupby("held_out").size().rename("pairs").to_frame()
        for name, tag in ((PREDICTOR, "model"), (ZERO, "zero")):
            err = (p["y"] - p[f"{name}|mean"]).abs()
            covered = (p[f"{name}|low"] <= p["y"]) & (p["y"] <= p[f"{name}|high"])
            score = interval_score(p["y"].to_numpy(), p[f"{name}|low"].to_numpy(), p[f"{name}|high"].to_numpy(), 0.8)
            frame = pd.DataFrame({"held_out": p["held_out"], "e": err, "c": covered, "s": score})
            agg = frame.groupby("held_out").agg(e=("e", "mean"), c=("c", "mean"), s=("s", "mean"))
            out[f"mae_{tag}"], out[f"coverage_{tag}"], out[f"is_{tag}"] = agg["e"], agg["c"], agg["s"]
        return out.reset_index()

    def to_markdown(self) -> str:
        lines = [
            f"Nested leave-one-source-out by `{self.group}` ({self.n_sources} sources), gap in points of a 0-100 "
            "metric; per source = the mean over sources of each source's figure",
            "",
            "| predictor | MAE | MAE per source | interval score (80%) | per source | coverage | worst source "
            "| mean width | median width | Spearman | within sources | Brier P(FFT > +1) | pairs |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        lines += [
            f"| {s.name} | {s.mae:.2f} | {s.mae_per_source:.2f} | {s.interval_score:.1f} | "
            f"{s.interval_score_per_source:.1f} | {100 * s.coverage:.1f}% | {100 * s.worst_source_coverage:.0f}% | "
            f"{s.mean_width:.1f} | {s.median_width:.1f} | {s.spearman:+.2f} | {s.spearman_within:+.2f} | "
            f"{s.brier:.3f} | {s.n} |"
            for s in self.scores
        ]
        return "\n".join(lines)


def _zero_half(train: pd.DataFrame, groups: np.ndarray, settings: GapSettings) -> float:
    y = train["y"].to_numpy(dtype=float)
    level = conformal_level(settings.coverage, len(np.unique(groups)))
    return weighted_quantile(np.abs(y), source_weights(groups), level)


def _task_median(train: pd.DataFrame, test: pd.DataFrame, coverage: float) -> tuple[np.ndarray, ...]:
    y = train["y"].to_numpy(dtype=float)
    tail = (1 - coverage) / 2
    by_type = train.groupby("task_type")["y"].agg(
        median="median", low=lambda s: s.quantile(tail), high=lambda s: s.quantile(1 - tail)
    )
    fallback = (float(np.median(y)), float(np.quantile(y, tail)), float(np.quantile(y, 1 - tail)))
    return tuple(
        test["task_type"].map(by_type[name]).fillna(fallback[i]).to_numpy(dtype=float)
        for i, name in enumerate(("median", "low", "high"))
    )


def _score(name: str, frame: pd.DataFrame, settings: GapSettings) -> Score:
    y = frame["y"].to_numpy(dtype=float)
    mean, low, high = (frame[f"{name}|{c}"].to_numpy(dtype=float) for c in ("mean", "low", "high"))
    groups = frame["held_out"].to_numpy()
    err = np.abs(y - mean)
    covered = ((low <= y) & (y <= high)).astype(float)
    score = interval_score(y, low, high, settings.coverage)
    # P(FFT ahead by > margin) from each predictor's own interval read as a normal predictive distribution
    sd = np.maximum((high - low) / (2 * stats.norm.ppf(0.5 + settings.coverage / 2)), 1e-9)
    p = stats.norm.cdf((-settings.margin - mean) / sd)
    brier = float(np.mean((p - (y < -settings.margin)) ** 2))
    per_source_coverage = pd.Series(covered).groupby(groups).mean()
    width = high - low
    return Score(
        name, float(err.mean()), per_source_mean(err, groups), float(score.mean()), per_source_mean(score, groups),
        float(covered.mean()), float(per_source_coverage.min()), float(width.mean()), float(np.median(width)), brier,
        _spearman(mean, y), _spearman_within(mean, y, groups), len(y),
    )  # fmt: skip


def _spearman(predicted: np.ndarray, published: np.ndarray) -> float:
    """Spearman's rank correlation; 0 when either side is constant (a constant answer orders nothing)."""
    if np.ptp(predicted) == 0 or np.ptp(published) == 0:
        return 0.0
    return float(stats.spearmanr(predicted, published).statistic)


def _spearman_within(predicted: np.ndarray, published: np.ndarray, groups: np.ndarray) -> float:
    """The mean over sources of each source's rank correlation (sources with one pair left out): whether the
    answer orders a paper's own comparisons, whatever that paper's overall level."""
    frame = pd.DataFrame({"p": predicted, "y": published, "g": groups.astype(str)})
    values = [_spearman(d["p"].to_numpy(), d["y"].to_numpy()) for _, d in frame.groupby("g") if len(d) > 1]
    return float(np.mean(values)) if values else 0.0


def leave_one_source_out(
    pairs: pd.DataFrame,
    *,
    extra: pd.DataFrame | None = None,
    group: str = DEFAULT_GROUP,
    task_types: Sequence[str] | None = None,
    settings: GapSettings | None = None,
) -> LosoReport:
    """Hold out each source (`group` values) in turn; score the predictor and both baselines on it."""
    chosen = settings or GapSettings()
    everything = prepare_pairs(pairs, extra, unread=True)  # every comparison gets a prediction ...
    prepared = everything.loc[everything["family"] != ""].reset_index(drop=True)  # ... the fits learn from these
    if group not in prepared.columns:
        raise InputError(f"pairs have no column {group!r} to hold sources out by")
    sources = sorted(prepared[group].astype(str).unique())
    if len(sources) < 4:
        raise InputError(f"nested leave-one-source-out needs at least 4 sources, found {len(sources)}")
    types = tuple(task_types) if task_types is not None else tuple(sorted(prepared["task_type"].unique()))
    keys = prepared[group].astype(str)
    frames, shrinks = [], []
    for source in sources:
        held = (keys == source).to_numpy()
        train = prepared.loc[~held].reset_index(drop=True)
        test = everything.loc[everything[group].astype(str) == source].reset_index(drop=True)
        model = fit_gap_model(train, task_types=types, group=group, settings=chosen)
        shrinks.append(model.calibration.describe())
        mean, low, high, _ = model.interval(FeatureTable.from_pairs(test))
        half = _zero_half(train, train[group].astype(str).to_numpy(), chosen)
        t_mean, t_low, t_high = _task_median(train, test, chosen.coverage)
        ids = test["peft_result_id"].to_numpy() if "peft_result_id" in test else np.arange(len(test))
        frame = pd.DataFrame({"held_out": source, "peft_result_id": ids, "y": test["y"].to_numpy(dtype=float),
                              "task_type": test["task_type"].to_numpy(), "method_id": test["method_id"].to_numpy(),
                              "family": test["family"].to_numpy()})  # fmt: skip
        for name, cols in ((PREDICTOR, (mean, low, high)), (ZERO, (0.0 * mean, 0.0 * mean - half, 0.0 * mean + half)),
                           (TASK_MEDIAN, (t_mean, t_low, t_high))):  # fmt: skip
            frame[f"{name}|mean"], frame[f"{name}|low"], frame[f"{name}|high"] = cols
        frames.append(frame)
    predictions = pd.concat(frames, ignore_index=True)
    scores = tuple(_score(name, predictions, chosen) for name in NAMES)
    if not all(math.isfinite(s.mae) and math.isfinite(s.interval_score) for s in scores):
        raise ValueError("non-finite error in the leave-one-source-out table")
    return LosoReport(group, len(sources), scores, predictions, tuple(shrinks))
