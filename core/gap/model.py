"""The gap predictor: expected PEFT-minus-FFT gap for a scenario from a paper the evidence has never seen.

Why this model: a few hundred noisy pairs from ten papers, each covering its own corner (GLUE encoders, GPT-3,
Llama-2 continued pretraining, PEFT's GSM8K benchmark...). The spread between papers is as large as any
effect, so the answer a manager needs is the predictive distribution for a *new* source:

1. mean: one of three bases, times a factor `shrink` towards "gap = 0", both chosen by leave-one-source-out
   on the training sources (`calibrate`): `mixed`, the random-source-intercept model of `theory` (method
   family, method within family, task type, distribution, targets, data size, model size, trainable share,
   rank; Student-t errors; empirical-Bayes priors) with the new source's effect at its mean (0); `cells`,
   source-balanced medians per method family and task type, shrunk towards the family's and then the overall
   median (`CellMedians`); `median`, the source-balanced median of all pairs. shrink 0 is "gap = 0";
2. spread: the coefficients' posterior variance plus the between-source variance tau2 plus the t errors'
   variance, plus the prior variance of a method (or family, or task type) effect the evidence has not seen,
   so a literature method answered by its family, or an unknown task type, gets a wider interval;
3. interval: mean +- q * sd, with q the 80% quantile of |error| / sd over leave-one-source-out predictions on
   the training sources, each source weighted equally (grouped cross-conformal; Vovk 2015; Lei et al. 2018,
   JASA 113:1094), so the coverage holds per source rather than being carried by the largest paper.

The basis, `shrink` and q are chosen inside the fit, on the training sources only, so the nested evaluation
in `evaluate` is honest. `gap_model()` fits on the warehouse and caches the fit keyed on a cheap fingerprint
of its results.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from core.errors import InputError
from core.gap.evidence import ClaimRow, EvidenceRow, claim_rows, evidence_rows, relevant_claims, similarity
from core.gap.features import RANKED_METHODS, FeatureTable, GapScenario, design
from core.gap.names import TaskMatch, match_task
from core.gap.pairs import prepare_pairs
from core.gap.settings import GapSettings
from core.gap.theory import T_DOF, LinearFit, data_note, fit_linear, rank_note, share_note, targets_note
from core.gap.theory import task_note as theory_task_note
from core.gap.theory import theory_notes as all_theory_notes
from core.registry import METHODS, REFERENCE

DEFAULT_GROUP = "source"  # the pairs view's `source`: the citation, so a paper's tables move together
VERDICTS: tuple[str, ...] = ("PEFT ahead", "FFT ahead", "indistinguishable from FFT")
COMPLEX_TASKS = frozenset({"reasoning-math", "code", "instruction"})


def verdict(low: float, high: float) -> str:
    """'PEFT ahead' / 'FFT ahead' when the 80% interval excludes 0 on that side, else indistinguishable."""
    if low > 0:
        return VERDICTS[0]
    if high < 0:
        return VERDICTS[1]
    return VERDICTS[2]


@dataclass(frozen=True)
class Crossover:
    """Where a scenario's expected gap crosses 0 as the training set grows (the fitted examples slope)."""

    examples: float
    slope: float  # points per 10x examples
    leader_beyond: str  # "FFT" or "PEFT"

    def __post_init__(self) -> None:
        if not (self.examples > 0 and math.isfinite(self.slope) and self.leader_beyond in ("FFT", "PEFT")):
            raise ValueError(f"bad crossover {self}")

    def summary(self) -> str:
        return (
            f"data-size crossover: at this slope ({self.slope:+.2f} points per 10x examples) the expected gap "
            f"crosses 0 near {self.examples:,.0f} examples; {self.leader_beyond} leads beyond that"
        )


@dataclass(frozen=True)
class GapPrediction:
    """Expected gap (PEFT minus FFT, points of a 0-100 metric; positive = PEFT better) with its 80% interval,
    the probability that FFT beats the method by more than `margin` points, and the evidence behind it."""

    scenario: GapScenario
    mean: float
    low: float
    high: float
    p_fft_better: float
    margin: float
    n_evidence: int
    n_sources: int
    verdict: str
    evidence_basis: str
    evidence: list[EvidenceRow] = field(default_factory=list)
    claims: list[ClaimRow] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    theory_notes: list[str] = field(default_factory=list)
    crossover: Crossover | None = None

    def __post_init__(self) -> None:
        if not all(math.isfinite(v) for v in (self.mean, self.low, self.high)):
            raise ValueError("a gap prediction needs finite mean and bounds")
        if not self.low <= self.mean <= self.high:
            raise ValueError(f"interval [{self.low}, {self.high}] does not hold the mean {self.mean}")
        if self.verdict != verdict(self.low, self.high):
            raise ValueError(f"verdict {self.verdict!r} does not match the interval [{self.low}, {self.high}]")
        if self.n_evidence != len(self.evidence):
            raise ValueError("n_evidence must count the evidence rows")
        if not 0 <= self.p_fft_better <= 1:
            raise ValueError(f"probability {self.p_fft_better} outside [0, 1]")

    @property
    def width(self) -> float:
        return self.high - self.low

    def summary(self) -> str:
        """One line: the mean, the interval, the probability FFT is ahead by more than the margin, the verdict."""
        return (
            f"{self.mean:+.1f} points (80% interval {self.low:+.1f} to {self.high:+.1f}; P(FFT ahead by more than "
            f"{self.margin:g} point{'s' if self.margin != 1 else ''}) {self.p_fft_better:.0%}): {self.verdict}; "
            f"{self.n_evidence} {self.evidence_basis} from {self.n_sources} source{'s' if self.n_sources != 1 else ''}"
        )

    def to_dict(self, *, evidence_limit: int | None = None) -> dict[str, Any]:
        rows = self.evidence if evidence_limit is None else self.evidence[:evidence_limit]
        scenario = {k: v for k, v in asdict(self.scenario).items() if k != "match"}
        return {
            "scenario": scenario,
            "method_match": asdict(self.scenario.match),
            "mean": round(self.mean, 3),
            "low": round(self.low, 3),
            "high": round(self.high, 3),
            "p_fft_better": round(self.p_fft_better, 4),
            "margin": self.margin,
            "verdict": self.verdict,
            "n_evidence": self.n_evidence,
            "n_sources": self.n_sources,
            "evidence_basis": self.evidence_basis,
            "evidence": [r.to_dict() for r in rows],
            "claims": [c.to_dict() for c in self.claims],
            "notes": list(self.notes),
            "theory_notes": list(self.theory_notes),
            "crossover": None if self.crossover is None else asdict(self.crossover),
        }


@dataclass(frozen=True)
class Predictive:
    """Per query row: the unshrunk linear mean and the predictive sd for a new source (before the scale q)."""

    linear_mean: np.ndarray
    sd: np.ndarray


def predictive(linear: LinearFit, query: FeatureTable, task_types: Sequence[str]) -> Predictive:
    """Steps 1-2 of the module docstring for each query row."""
    x = design(query, task_types).matrix
    mean = x @ linear.coef
    coef_var = np.einsum("ij,jk,ik->i", x, linear.cov, x)
    # Student-t errors with nu degrees of freedom have variance sigma2 * nu / (nu - 2)
    noise = linear.sigma2 * T_DOF / (T_DOF - 2)
    unseen = np.zeros(len(query))
    unseen += np.where(query.method == "", linear.prior_var["method"], 0.0)
    unseen += np.where(query.family == "", linear.prior_var["category"], 0.0)
    unseen += np.where(query.task_type == "", linear.prior_var["category"], 0.0)
    return Predictive(mean, np.sqrt(coef_var + linear.tau2 + noise + unseen))


def source_weights(groups: np.ndarray) -> np.ndarray:
    """1 / (pairs of the row's source): each source weighs the same in a calibration."""
    _, index, counts = np.unique(groups.astype(str), return_inverse=True, return_counts=True)
    return 1.0 / counts[index]


def weighted_quantile(values: np.ndarray, weights: np.ndarray, level: float) -> float:
    """The smallest value whose cumulative weight share reaches `level` (a weighted empirical quantile)."""
    order = np.argsort(values, kind="stable")
    cum = np.cumsum(weights[order]) / weights.sum()
    return float(values[order][min(int(np.searchsorted(cum, min(level, 1.0) - 1e-12)), len(values) - 1)])


def conformal_level(coverage: float, n_sources: int) -> float:
    """The finite-sample level for a quantile over `n_sources` exchangeable sources (Lei et al. 2018, sec. 2.2:
    the ceil((n+1) * coverage)-th of n scores, here with sources as the units)."""
    return min(coverage * (n_sources + 1) / n_sources, 1.0)


def interval_score(y: np.ndarray, low: np.ndarray, high: np.ndarray, coverage: float) -> np.ndarray:
    """Winkler's interval score of a central (coverage) interval: width plus 2/alpha times the miss
    (Gneiting & Raftery 2007, JASA 102:359, eq. 43); lower is better, and it is proper."""
    alpha = 1 - coverage
    return (high - low) + (2 / alpha) * (np.maximum(low - y, 0) + np.maximum(y - high, 0))


def per_source_mean(values: np.ndarray, groups: np.ndarray) -> float:
    """The mean over sources of each source's mean: every paper counts the same."""
    frame = pd.DataFrame({"v": values, "g": groups.astype(str)})
    return float(frame.groupby("g")["v"].mean().mean())


def _balanced(values: pd.Series, groups: pd.Series) -> tuple[float, float, int]:
    """Source-balanced location and spread of one cell: the median over sources of each source's median, the
    mean over sources of each source's mean absolute deviation from that location, and the number of sources."""
    location = float(values.groupby(groups).median().median())
    spread = float((values - location).abs().groupby(groups).mean().mean())
    return location, spread, int(groups.nunique())


# The levels of `CellMedians`, most general first: what each level's cells are keyed by.
_LEVELS: tuple[tuple[str, ...], ...] = ((), ("task_type",), ("family",), ("family", "task_type"),
                                        ("method_key", "task_type"))  # fmt: skip


@dataclass(frozen=True)
class CellMedians:
    """Source-balanced medians and spreads per cell of a hierarchy: all pairs; task type (for a method read as
    PEFT in general); family; family x task type; registry method x task type. A cell is pulled towards its
    parent by `pseudo` sources, (n * cell + pseudo * parent) / (n + pseudo), so one paper's cell does not speak
    for every paper, and a method without pairs of its own inherits its family's wider spread."""

    cells: dict[tuple[str, ...], tuple[float, float, int]]
    pseudo: float

    @classmethod
    def fit(cls, prepared: pd.DataFrame, groups: np.ndarray, pseudo: float) -> CellMedians:
        frame = prepared.assign(method_key=[m if m in METHODS else "" for m in prepared["method_id"]],
                                _g=groups)  # fmt: skip
        y = frame["y"].astype(float)
        cells: dict[tuple[str, ...], tuple[float, float, int]] = {(): _balanced(y, frame["_g"])}
        for level in _LEVELS[1:]:
            for key, idx in frame.groupby(list(level)).groups.items():
                keys = key if isinstance(key, tuple) else (key,)
                cells[(*level, *map(str, keys))] = _balanced(y[idx], frame.loc[idx, "_g"])
        return cls(cells, pseudo)

    @property
    def overall(self) -> float:
        return self.cells[()][0]

    def _chain(self, method: str, family: str, task: str) -> list[tuple[str, ...]]:
        if not family:
            return [("task_type", task)] if task else []
        chain = [("family", family)]
        if task:
            chain.append(("family", "task_type", family, task))
            if method:
                chain.append(("method_key", "task_type", method, task))
        return chain

    def predict(self, query: FeatureTable) -> tuple[np.ndarray, np.ndarray]:
        """Location and spread (a mean absolute deviation, in points) per query row."""
        location, spread = np.empty(len(query)), np.empty(len(query))
        for i, (method, family, task) in enumerate(zip(query.method, query.family, query.task_type, strict=True)):
            loc, dev, _ = self.cells[()]
            for key in self._chain(str(method), str(family), str(task)):
                cell_loc, cell_dev, n = self.cells.get(key, (loc, dev, 0))
                loc = (n * cell_loc + self.pseudo * loc) / (n + self.pseudo)
                dev = (n * cell_dev + self.pseudo * dev) / (n + self.pseudo)
            location[i], spread[i] = loc, dev
        return location, spread


MEAN_BASES: tuple[str, ...] = ("median", "cells", "mixed")
SPREADS: tuple[str, ...] = ("mixed", "cells")  # the sd an interval is q times: the mixed model's, or the cells'
_ABS_DEV_TO_SD = math.sqrt(math.pi / 2)  # a normal's sd over its mean absolute deviation


@dataclass(frozen=True)
class Calibration:
    """The settings chosen by leave-one-source-out on the training sources, and those held-out predictions."""

    basis: str
    shrink: float
    spread: str
    scale: float
    heldout: pd.DataFrame  # source, y, mean, low, high: the predictions the settings were chosen on
    candidates: pd.DataFrame  # basis, shrink, spread, scale, score: every setting the search tried

    def __post_init__(self) -> None:
        if self.basis not in MEAN_BASES or self.spread not in SPREADS or not (0 <= self.shrink <= 1 and self.scale > 0):
            raise ValueError(f"bad calibration: {self}")

    def describe(self) -> str:
        mean = "gap = 0" if self.shrink == 0 else f"{self.shrink:g} x {self.basis}"
        return f"{mean}, {self.spread} spread x {self.scale:.2f}"


def calibrate(
    prepared: pd.DataFrame, groups: np.ndarray, task_types: tuple[str, ...], linear: LinearFit, settings: GapSettings
) -> Calibration:
    """Inner leave-one-source-out: predict each training source from the others with every basis (the mixed
    model with the hyperparameters of the fit on all training sources), then choose the basis, `shrink` from
    the grid and its scale q by the per-source mean interval score, q being the source-weighted conformal
    quantile of |error| / sd."""
    features = FeatureTable.from_pairs(prepared)
    y = prepared["y"].to_numpy(dtype=float)
    bases = {b: np.full(len(y), np.nan) for b in MEAN_BASES}
    sds = {s: np.full(len(y), np.nan) for s in SPREADS}
    for label in np.unique(groups):
        held = groups == label
        train = prepared.loc[~held].reset_index(drop=True)
        rest = _fit_linear(train, groups[~held], task_types, linear.log_hyper)
        query = features.take(held)
        pred = predictive(rest, query, task_types)
        cells = CellMedians.fit(train, groups[~held], settings.cell_pseudo_sources)
        location, spread = cells.predict(query)
        bases["mixed"][held], sds["mixed"][held] = pred.linear_mean, pred.sd
        bases["cells"][held], sds["cells"][held] = location, cell_sd(spread, query, rest)
        bases["median"][held] = cells.overall
    weights = source_weights(groups)
    level = conformal_level(settings.coverage, len(np.unique(groups)))
    tried = []
    for basis in MEAN_BASES:
        for shrink in settings.shrink_grid:
            mean = shrink * bases[basis]
            for spread_kind, sd in sds.items():
                scale = max(weighted_quantile(np.abs(y - mean) / sd, weights, level), 1e-6)
                score = interval_score(y, mean - scale * sd, mean + scale * sd, settings.coverage)
                tried.append((basis, shrink, spread_kind, scale, per_source_mean(score, groups)))
    candidates = pd.DataFrame(tried, columns=["basis", "shrink", "spread", "scale", "score"])
    # the lowest per-source interval score; among equals the first tried (a smaller shrink: closer to gap = 0)
    basis, shrink, spread_kind, scale, _ = tried[int(np.argmin(candidates["score"].to_numpy()))]
    mean, sd = shrink * bases[basis], sds[spread_kind]
    low, high = mean - scale * sd, mean + scale * sd
    heldout = pd.DataFrame({"source": groups, "y": y, "mean": mean, "low": low, "high": high})
    return Calibration(basis, shrink, spread_kind, scale, heldout, candidates)


def cell_sd(spread: np.ndarray, query: FeatureTable, linear: LinearFit) -> np.ndarray:
    """The cells' spread as an sd, plus the prior variance of a family or task type the evidence has not seen."""
    unseen = np.where(query.family == "", linear.prior_var["category"], 0.0)
    unseen += np.where(query.task_type == "", linear.prior_var["category"], 0.0)
    return np.sqrt((_ABS_DEV_TO_SD * np.maximum(spread, 0.05)) ** 2 + unseen)


def _fit_linear(
    prepared: pd.DataFrame, groups: np.ndarray, task_types: tuple[str, ...], log_hyper: tuple[float, ...] | None
) -> LinearFit:
    features = FeatureTable.from_pairs(prepared)
    return fit_linear(design(features, task_types), prepared["y"].to_numpy(dtype=float), groups, log_hyper=log_hyper)


@dataclass(frozen=True, eq=False)
class GapModel:
    """A fitted predictor. Build it with `fit_gap_model` (a frame of pairs) or `gap_model` (the warehouse)."""

    pairs: pd.DataFrame
    features: FeatureTable
    groups: np.ndarray
    linear: LinearFit
    task_types: tuple[str, ...]
    cells: CellMedians
    calibration: Calibration
    settings: GapSettings = field(default_factory=GapSettings)
    claims: tuple[ClaimRow, ...] = ()
    fingerprint: str = ""

    def __post_init__(self) -> None:
        if len(self.pairs) != len(self.features) or len(self.groups) != len(self.pairs):
            raise ValueError("pairs, features and groups must have one row per pair")

    @property
    def scale(self) -> float:
        return self.calibration.scale

    @property
    def y(self) -> np.ndarray:
        return self.pairs["y"].to_numpy(dtype=float)

    def interval(self, query: FeatureTable) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Mean, low, high and the predictive sd of the interval (half-width / z) per query row."""
        pred = predictive(self.linear, query, self.task_types)
        location, spread = self.cells.predict(query)
        basis = {"mixed": pred.linear_mean, "cells": location, "median": np.full(len(query), self.cells.overall)}
        mean = self.calibration.shrink * basis[self.calibration.basis]
        sd = pred.sd if self.calibration.spread == "mixed" else cell_sd(spread, query, self.linear)
        half = self.scale * sd
        return mean, mean - half, mean + half, half / stats.norm.ppf(0.5 + self.settings.coverage / 2)

    def heldout(self) -> pd.DataFrame:
        """Per source: pairs, the MAE of these predictions and of gap = 0, and 80% coverage, from the
        leave-one-source-out predictions the settings were chosen on (so slightly optimistic; the nested
        figures are `benchmarks/bench_gap.py`'s)."""
        h = self.calibration.heldout
        frame = h.assign(err=(h["y"] - h["mean"]).abs(), err0=h["y"].abs(),
                         covered=(h["low"] <= h["y"]) & (h["y"] <= h["high"]))  # fmt: skip
        return (
            frame.groupby("source")
            .agg(pairs=("y", "size"), mae=("err", "mean"), mae_gap0=("err0", "mean"), coverage=("covered", "mean"))
            .reset_index()
        )

    def heldout_summary(self) -> str:
        """One line: the held-out figures behind every answer (see `heldout`)."""
        per = self.heldout()
        return (
            f"predicting each of {len(per)} papers from the others, mean error {per['mae'].mean():.2f} points per "
            f"paper vs {per['mae_gap0'].mean():.2f} for 'gap = 0'; 80% intervals held {per['coverage'].mean():.0%} "
            f"per paper (lowest {per['coverage'].min():.0%}); chosen setting: {self.calibration.describe()}"
        )

    def task(self, scenario: GapScenario) -> TaskMatch:
        """How the scenario's task type is read against the warehouse's task types."""
        return match_task(scenario.task_type, self.task_types)

    def predict(self, scenario: GapScenario) -> GapPrediction:
        """The prediction for one scenario with its evidence, the seed paper's claims, notes and theory notes."""
        task = self.task(scenario)
        query = FeatureTable.from_scenarios([scenario], self.task_types)
        means, lows, highs, sds = self.interval(query)
        mean, low, high, sd = float(means[0]), float(lows[0]), float(highs[0]), float(sds[0])
        margin = self.settings.margin
        evidence, basis = self.evidence(scenario, task, similarity(query, self.features, self.settings)[0])
        notes = [n for n in (scenario.match.note, task.note) if n]
        if len(evidence) < self.settings.scarce:
            notes.append(f"evidence is scarce: {len(evidence)} {basis}")
        crossover = self.crossover(mean, float(query.log_examples[0]))
        return GapPrediction(
            scenario=scenario,
            mean=mean,
            low=low,
            high=high,
            p_fft_better=float(stats.norm.cdf((-margin - mean) / sd)),
            margin=margin,
            n_evidence=len(evidence),
            n_sources=len({r.source for r in evidence}),
            verdict=verdict(low, high),
            evidence_basis=basis,
            evidence=evidence,
            claims=relevant_claims(scenario, list(self.claims)),
            notes=notes,
            theory_notes=self._theory(scenario),
            crossover=crossover,
        )

    def evidence(self, scenario: GapScenario, task: TaskMatch, weights: np.ndarray) -> tuple[list[EvidenceRow], str]:
        """The pairs behind an estimate: the method's own on the task type, else its family's there, else its
        family's on any task; most similar first, with what they are."""
        f = self.features
        same_task = f.task_type == task.key if task.key else np.ones(len(f), dtype=bool)
        where = f"on {task.key}" if task.key else "on any task type"
        method = scenario.match.method_id
        if method is not None and (own := (f.method == method) & same_task).sum() >= self.settings.min_own_pairs:
            return evidence_rows(self.pairs, weights, own), f"{METHODS[method].name} pairs {where}"
        family = scenario.match.family
        if family is not None:
            fam = (f.family == family) & same_task
            if fam.sum() == 0:
                fam, where = f.family == family, "on any task type"
            return evidence_rows(self.pairs, weights, fam), f"{family} pairs {where}"
        return evidence_rows(self.pairs, weights, same_task), f"PEFT pairs {where}"

    def reported(self, method: str, task_type: str) -> int:
        """How many pairs report this very method on this task type (any model, size or source)."""
        key = match_task(task_type, self.task_types).key
        return int(((self.features.method == method) & (self.features.task_type == key)).sum())

    def examples_range(self) -> tuple[float, float]:
        """The smallest and largest log10 training-set size (in examples) in the evidence."""
        known = self.features.log_examples[~np.isnan(self.features.log_examples)]
        if not len(known):
            raise InputError("no pair in the evidence states its training-set size in examples")
        return float(known.min()), float(known.max())

    def crossover(self, mean: float, log_examples: float) -> Crossover | None:
        """Where this expected gap would cross 0 as data grows, when the examples slope is clear (its 80%
        interval excludes 0) and the crossing lies inside the evidence's range of sizes (no extrapolation)."""
        slope, sd = self.linear.contrast({"log10_examples": 1.0})
        z = stats.norm.ppf(0.5 + self.settings.coverage / 2)
        if math.isnan(log_examples) or abs(slope) <= z * sd or self.calibration.basis != "mixed":
            return None  # only the mixed basis moves with data size
        # the shrunk mean moves by shrink * slope per decade
        crossing = log_examples - mean / (self.calibration.shrink * slope)
        low, high = self.examples_range()
        if not low <= crossing <= high:
            return None
        return Crossover(10**crossing, self.calibration.shrink * slope, "FFT" if slope < 0 else "PEFT")

    def theory_notes(self) -> list[str]:
        """The theory checks on the whole evidence."""
        return all_theory_notes(self.linear, self.task_types, self.confounded())

    def confounded(self) -> frozenset[str]:
        """Contrasts no single source reports both sides of ('task': classification vs a complex task type,
        'targets': attention-only vs all-linear adapters); their coefficients lean on the source effects."""
        frame = pd.DataFrame({"group": self.groups, "task": self.features.task_type, "targets": self.features.targets})
        sides = {
            "task": (frame["task"] == "classification", frame["task"].isin(COMPLEX_TASKS)),
            "targets": (frame["targets"] == "attention", frame["targets"] == "all-linear"),
        }
        out = set()
        for name, (left, right) in sides.items():
            if not (left.groupby(frame["group"]).any() & right.groupby(frame["group"]).any()).any():
                out.add(name)
        return frozenset(out)

    def _theory(self, scenario: GapScenario) -> list[str]:
        notes: list[str] = []
        if scenario.method in RANKED_METHODS:
            notes.append(rank_note(self.linear))
        if scenario.trainable_pct is not None:
            notes.append(share_note(self.linear))
        notes.append(data_note(self.linear))
        confounded = self.confounded()
        if scenario.targets:
            notes.append(targets_note(self.linear, confounded="targets" in confounded))
        task = theory_task_note(self.linear, self.task_types, confounded="task" in confounded)
        if task is not None:
            notes.append(task)
        return notes


def fit_gap_model(
    pairs: pd.DataFrame,
    *,
    extra: pd.DataFrame | None = None,
    claims: pd.DataFrame | None = None,
    task_types: Sequence[str] | None = None,
    group: str = DEFAULT_GROUP,
    settings: GapSettings | None = None,
    fingerprint: str = "",
) -> GapModel:
    """Fit on a frame with the `pairs` view's columns (filtered and de-duplicated here by `prepare_pairs`;
    `extra`: literature pairs). `group` names the column whose values are sources."""
    chosen = settings or GapSettings()
    prepared = prepare_pairs(pairs, extra)
    if group not in prepared.columns:
        raise InputError(f"pairs have no column {group!r} to group sources by")
    n_groups = prepared[group].nunique()
    if len(prepared) < 3 or n_groups < 3:
        raise InputError(
            f"the gap model needs matched FFT-vs-PEFT pairs from at least 3 sources, found {len(prepared)} pairs "
            f"from {n_groups}: import results that include a full fine-tuning row for each setup"
        )
    types = tuple(task_types) if task_types is not None else tuple(sorted(prepared["task_type"].unique()))
    groups = prepared[group].astype(str).to_numpy()
    linear = _fit_linear(prepared, groups, types, None)
    calibration = calibrate(prepared, groups, types, linear, chosen)
    cells = CellMedians.fit(prepared, groups, chosen.cell_pseudo_sources)
    claim_list = tuple(claim_rows(claims)) if claims is not None and not claims.empty else ()
    features = FeatureTable.from_pairs(prepared)
    return GapModel(prepared, features, groups, linear, types, cells, calibration, chosen, claim_list, fingerprint)


# -- the warehouse-backed, cached model -------------------------------------------------------------------

_CACHE: dict[str, GapModel] = {}
_CACHE_LOCK = threading.Lock()


def warehouse_fingerprint(wh: Any) -> str:
    """Cheap and changes whenever results or claims do: row counts and the newest result's timestamp."""
    row = (
        wh.cursor()
        .execute(
            "SELECT (SELECT count(*) FROM results), (SELECT max(created_at) FROM results), "
            "(SELECT count(*) FROM claims)"
        )
        .fetchone()
    )
    return "|".join(str(v) for v in row)


def warehouse_pairs(wh: Any) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The pairs view and the literature pairs of the warehouse's `other` rows (see `pairs`)."""
    from core.gap.pairs import literature_pairs
    from core.warehouse import Filters, pairs, results

    return pairs(wh), literature_pairs(results(wh, Filters(methods=["other", REFERENCE])))


def gap_model(wh: Any | None = None) -> GapModel:
    """The model fitted on the warehouse (`open_warehouse()` when None), refitted only when its content changed."""
    if wh is None:
        from core.warehouse import open_warehouse

        with open_warehouse() as opened:
            return gap_model(opened)
    from core.warehouse import claims

    # keyed on the content's fingerprint, not the file: replicas and copies of one warehouse share one fit
    fingerprint = warehouse_fingerprint(wh)
    with _CACHE_LOCK:
        cached = _CACHE.get(fingerprint)
        if cached is not None:
            return cached
        task_types = [
            r[0] for r in wh.cursor().execute("SELECT task_type FROM task_types ORDER BY task_type").fetchall()
        ]
        view, extra = warehouse_pairs(wh)
        model = fit_gap_model(view, extra=extra, claims=claims(wh), task_types=task_types, fingerprint=fingerprint)
        _CACHE[fingerprint] = model
        return model


def predict_gap(scenario: GapScenario, wh: Any | None = None) -> GapPrediction:
    """One scenario against the (cached) warehouse model."""
    return gap_model(wh).predict(scenario)
