"""The gap predictor: expected PEFT-minus-FFT gap for a scenario, with an 80% interval and its evidence.

Why this model: a few hundred noisy pairs from a handful of papers, each covering its own corner (GLUE
encoders, GPT-3, Llama-2 continued pretraining...), strong source effects, heavy tails and blanks. A global
regression extrapolates badly to a new source (it lost to "gap = 0" under leave-one-source-out), so the
prediction is local:

1. mean: a similarity-weighted Huber M-estimate (Huber 1964) of the neighbours' gaps, each first moved to
   the scenario's rank, trainable share, data size and model size by the slopes of the empirical-Bayes
   linear model in `theory` (a partially linear model), plus a pseudo-observation "gap = 0" of weight
   `PRIOR_WEIGHT`, so scarce evidence shrinks towards "indistinguishable from FFT";
2. spread: the neighbours' within-source and between-source variances, each shrunk towards the global
   one-way random-effects components with `VARIANCE_PRIOR` pseudo-observations; the mean's uncertainty
   grows as the effective number of neighbours and of sources falls, so scarce or conflicting evidence
   gives a wider interval;
3. interval: mean +- q * sd, with q the 80% quantile of |error| / sd over leave-one-source-out predictions
   on the training pairs (locally weighted conformal prediction, Lei et al. 2018, JASA 113:1094; grouped by
   source as cross-conformal, Vovk 2015), so 80% intervals cover about 80% of pairs from an unseen source.

`gap_model()` fits on the warehouse and caches the fit keyed on a cheap fingerprint of its results, so it
refits after users import results or calibration runs land, and not otherwise.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from core.errors import InputError
from core.gap.evidence import (
    EVIDENCE_MIN_WEIGHT,
    ClaimRow,
    EvidenceRow,
    claim_rows,
    evidence_rows,
    relevant_claims,
    similarity,
)
from core.gap.features import RANKED_METHODS, FeatureTable, GapScenario, design, prepare_pairs
from core.gap.theory import LinearFit, crossover_note, data_note, fit_linear, rank_note, share_note, targets_note
from core.gap.theory import task_note as theory_task_note
from core.gap.theory import theory_notes as all_theory_notes

COVERAGE = 0.8
PRIOR_WEIGHT = 0.5  # weight of the "gap = 0" pseudo-observation, in units of one identical pair
HUBER_C = 2.0  # points; gaps further than this from the estimate count linearly, not quadratically
VARIANCE_PRIOR = 2.0  # pseudo-observations pulling local variances towards the global components
SOURCE_PSEUDO = 0.5  # added to the effective number of sources in the mean's between-source uncertainty
SCARCE = 5  # fewer evidence rows than this is called scarce in the notes
DEFAULT_GROUP = "source"  # the pairs view's `source`: the citation, so a paper's tables move together
_QUERY_CHUNK = 256  # queries per block (the slope adjustment holds chunk x pairs x 6 floats)

VERDICTS: tuple[str, ...] = ("PEFT ahead", "FFT ahead", "indistinguishable from FFT")


def verdict(low: float, high: float) -> str:
    """'PEFT ahead' / 'FFT ahead' when the 80% interval excludes 0 on that side, else indistinguishable."""
    if low > 0:
        return VERDICTS[0]
    if high < 0:
        return VERDICTS[1]
    return VERDICTS[2]


@dataclass(frozen=True)
class GapPrediction:
    """Expected gap (PEFT minus FFT, points of a 0-100 metric; positive = PEFT better) with its 80% interval."""

    scenario: GapScenario
    mean: float
    low: float
    high: float
    n_evidence: int
    n_sources: int
    verdict: str
    evidence: list[EvidenceRow] = field(default_factory=list)
    claims: list[ClaimRow] = field(default_factory=list)
    theory_notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not all(math.isfinite(v) for v in (self.mean, self.low, self.high)):
            raise ValueError("a gap prediction needs finite mean and bounds")
        if not self.low <= self.mean <= self.high:
            raise ValueError(f"interval [{self.low}, {self.high}] does not hold the mean {self.mean}")
        if self.verdict != verdict(self.low, self.high):
            raise ValueError(f"verdict {self.verdict!r} does not match the interval [{self.low}, {self.high}]")
        if self.n_evidence != len(self.evidence):
            raise ValueError("n_evidence must count the evidence rows")

    @property
    def width(self) -> float:
        return self.high - self.low

    def summary(self) -> str:
        """One line: the mean, the interval and the verdict."""
        return (
            f"{self.mean:+.1f} points (80% interval {self.low:+.1f} to {self.high:+.1f}): {self.verdict}; "
            f"{self.n_evidence} matched pairs from {self.n_sources} source{'s' if self.n_sources != 1 else ''}"
        )

    def to_dict(self, *, evidence_limit: int | None = None) -> dict[str, Any]:
        rows = self.evidence if evidence_limit is None else self.evidence[:evidence_limit]
        return {
            "scenario": asdict(self.scenario),
            "mean": round(self.mean, 3),
            "low": round(self.low, 3),
            "high": round(self.high, 3),
            "verdict": self.verdict,
            "n_evidence": self.n_evidence,
            "n_sources": self.n_sources,
            "evidence": [r.to_dict() for r in rows],
            "claims": [c.to_dict() for c in self.claims],
            "theory_notes": list(self.theory_notes),
        }


@dataclass(frozen=True)
class LocalEstimate:
    """Per query: mean, sd (before the conformal scale), similarity weights, and the between-source variance
    of the neighbours (for the 'sources disagree' note)."""

    mean: np.ndarray
    sd: np.ndarray
    weights: np.ndarray
    between_local: np.ndarray


def huber_location(weights: np.ndarray, values: np.ndarray, prior_weight: float, c: float) -> np.ndarray:
    """Per row, the m minimising sum_j w_j rho_c(v_j - m) + prior_weight * rho_c(m) (Huber 1964), by
    iteratively reweighted least squares. The prior pulls towards 0 (no gap): under leave-one-source-out,
    anchoring scarce scenarios on 0 beat anchoring them on the linear model or on the method's mean gap."""
    w = np.hstack([weights, np.full((len(weights), 1), prior_weight)])
    v = np.hstack([values, np.zeros((len(values), 1))])
    m = (w * v).sum(1) / w.sum(1)
    for _ in range(100):
        r = np.abs(v - m[:, None])
        wu = w * np.where(r <= c, 1.0, c / np.maximum(r, 1e-12))
        new = (wu * v).sum(1) / wu.sum(1)
        if np.max(np.abs(new - m)) < 1e-9:
            return new
        m = new
    return m


def variance_components(y: np.ndarray, groups: np.ndarray) -> tuple[float, float]:
    """Within- and between-group variances of a one-way random-effects model (method of moments;
    Searle, Casella & McCulloch 1992, ch. 3), for unbalanced groups."""
    labels, index = np.unique(groups.astype(str), return_inverse=True)
    counts = np.bincount(index).astype(float)
    means = np.bincount(index, weights=y) / counts
    n, g = len(y), len(labels)
    within = float(((y - means[index]) ** 2).sum() / max(n - g, 1))
    if g < 2:
        return max(within, 1e-6), max(within, 1e-6)
    # E[between mean square] = within + n0 * tau2, n0 = (n - sum n_i^2 / n) / (g - 1)
    grand = y.mean()
    between_ms = float((counts * (means - grand) ** 2).sum() / (g - 1))
    n0 = (n - (counts**2).sum() / n) / (g - 1)
    tau2 = max((between_ms - within) / n0, 0.0)
    return max(within, 1e-6), max(tau2, 1e-6)


@dataclass(frozen=True, eq=False)
class GapModel:
    """A fitted predictor. Build it with `fit_gap_model` (a frame of pairs) or `gap_model` (the warehouse)."""

    pairs: pd.DataFrame
    features: FeatureTable
    groups: np.ndarray
    linear: LinearFit
    within_var: float
    between_var: float
    task_types: tuple[str, ...]
    scale: float
    claims: tuple[ClaimRow, ...] = ()
    fingerprint: str = ""

    def __post_init__(self) -> None:
        if len(self.pairs) != len(self.features) or len(self.groups) != len(self.pairs):
            raise ValueError("pairs, features and groups must have one row per pair")
        if not self.scale > 0:
            raise ValueError(f"interval scale must be positive, got {self.scale}")

    @property
    def y(self) -> np.ndarray:
        return self.pairs["y"].to_numpy(dtype=float)

    def local(self, query: FeatureTable) -> LocalEstimate:
        """The local estimate for each query row (see the module docstring, steps 1 and 2)."""
        parts = [self._local_block(query.take(np.arange(i, min(i + _QUERY_CHUNK, len(query)))))
                 for i in range(0, len(query), _QUERY_CHUNK)]  # fmt: skip
        if not parts:
            empty = np.zeros(0)
            return LocalEstimate(empty, empty, np.zeros((0, len(self.pairs))), empty)
        return LocalEstimate(
            *(np.concatenate([getattr(p, f) for p in parts]) for f in LocalEstimate.__dataclass_fields__)
        )

    def _local_block(self, query: FeatureTable) -> LocalEstimate:
        w = similarity(query, self.features)
        values = self.linear.adjust(query, self.features, self.y)
        mean = huber_location(w, values, PRIOR_WEIGHT, HUBER_C)
        labels, index = np.unique(self.groups.astype(str), return_inverse=True)
        onehot = np.zeros((len(self.groups), len(labels)))
        onehot[np.arange(len(self.groups)), index] = 1.0
        total = np.maximum(w.sum(1), 1e-300)
        per_source = np.einsum("ij,jk->ik", w, onehot)
        source_means = np.einsum("ij,jk->ik", w * values, onehot) / np.maximum(per_source, 1e-300)
        within_local = (w * (values - source_means[:, index]) ** 2).sum(1) / total
        pooled = (per_source * source_means).sum(1) / total
        between_local = (per_source * (source_means - pooled[:, None]) ** 2).sum(1) / total
        # How much evidence there is: only pairs similar enough to count as evidence (the rows the user is
        # shown); Kish's effective sample size (Kish 1965, Survey Sampling, sec. 11.7), capped by their mass
        # in identical-pair equivalents.
        close = np.where(w >= EVIDENCE_MIN_WEIGHT, w, 0.0)
        mass = close.sum(1)
        n_eff = np.minimum(mass**2 / np.maximum((close**2).sum(1), 1e-300), mass)
        close_sources = np.einsum("ij,jk->ik", close, onehot)
        n_sources = np.minimum(mass**2 / np.maximum((close_sources**2).sum(1), 1e-300), mass)
        within = (n_eff * within_local + VARIANCE_PRIOR * self.within_var) / (n_eff + VARIANCE_PRIOR)
        between = (n_sources * between_local + VARIANCE_PRIOR * self.between_var) / (n_sources + VARIANCE_PRIOR)
        var = within * (1 + 1 / (n_eff + 1)) + between * (1 + 1 / (n_sources + SOURCE_PSEUDO))
        return LocalEstimate(mean, np.sqrt(var), w, between_local)

    def interval(self, query: FeatureTable) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Mean, low, high and evidence count per query row (the batch path: no evidence objects)."""
        est = self.local(query)
        half = self.scale * est.sd
        n_evidence = (est.weights >= EVIDENCE_MIN_WEIGHT).sum(1)
        return est.mean, est.mean - half, est.mean + half, n_evidence

    def check(self, scenario: GapScenario) -> None:
        """Refuse a task type the warehouse does not know (the dataclass checks everything else)."""
        if scenario.task_type not in self.task_types:
            raise InputError(f"unknown task type {scenario.task_type!r}: choose one of {', '.join(self.task_types)}")

    def predict(self, scenario: GapScenario) -> GapPrediction:
        """The prediction for one scenario with its evidence, the seed paper's claims and theory notes."""
        self.check(scenario)
        query = FeatureTable.from_scenarios([scenario])
        est = self.local(query)
        mean = float(est.mean[0])
        half = float(self.scale * est.sd[0])
        evidence = evidence_rows(self.pairs, est.weights[0])
        notes = self._notes(scenario, query, mean, evidence, float(est.between_local[0]))
        return GapPrediction(
            scenario=scenario,
            mean=mean,
            low=mean - half,
            high=mean + half,
            n_evidence=len(evidence),
            n_sources=len({r.source for r in evidence}),
            verdict=verdict(mean - half, mean + half),
            evidence=evidence,
            claims=relevant_claims(scenario, list(self.claims)),
            theory_notes=notes,
        )

    def reported(self, method: str, task_type: str) -> int:
        """How many pairs report this very method on this task type (any model, size or source)."""
        return int(((self.features.method == method) & (self.features.task_type == task_type)).sum())

    def examples_range(self) -> tuple[float, float]:
        """The smallest and largest log10 training-set size (in examples) in the evidence."""
        known = self.features.log_examples[~np.isnan(self.features.log_examples)]
        return (float(known.min()), float(known.max())) if len(known) else (math.nan, math.nan)

    def theory_notes(self) -> list[str]:
        """The theory checks on the whole evidence."""
        return all_theory_notes(self.linear, self.task_types, self.confounded())

    def confounded(self) -> frozenset[str]:
        """Contrasts no single source reports both sides of ('task': classification vs a complex task type,
        'targets': attention-only vs all-linear adapters); their coefficients lean on the source effects."""
        frame = pd.DataFrame({"group": self.groups, "task": self.features.task_type, "targets": self.features.targets})
        complex_types = {"reasoning-math", "code", "instruction"}
        sides = {
            "task": (frame["task"] == "classification", frame["task"].isin(complex_types)),
            "targets": (frame["targets"] == "attention", frame["targets"] == "all-linear"),
        }
        out = set()
        for name, (left, right) in sides.items():
            both = (left.groupby(frame["group"]).any() & right.groupby(frame["group"]).any()).any()
            if not both:
                out.add(name)
        return frozenset(out)

    def _notes(
        self, scenario: GapScenario, query: FeatureTable, mean: float, evidence: list[EvidenceRow], between: float
    ) -> list[str]:
        notes: list[str] = []
        if len(evidence) < SCARCE:
            notes.append(f"evidence is scarce: {len(evidence)} matched pairs resemble this scenario")
        if between > self.between_var and len({r.source for r in evidence}) > 1:
            notes.append(
                f"sources disagree here: their spread ({math.sqrt(between):.1f} points sd) exceeds the usual "
                f"between-source spread ({math.sqrt(self.between_var):.1f})"
            )
        if scenario.method in RANKED_METHODS:
            notes.append(rank_note(self.linear))
        if scenario.trainable_pct is not None:
            notes.append(share_note(self.linear))
        notes.append(data_note(self.linear))
        cross = crossover_note(self.linear, mean, float(query.log_examples[0]), self.examples_range())
        if cross is not None:
            notes.append(cross)
        confounded = self.confounded()
        if scenario.targets:
            notes.append(targets_note(self.linear, confounded="targets" in confounded))
        task = theory_task_note(self.linear, self.task_types, confounded="task" in confounded)
        if task is not None:
            notes.append(task)
        return notes


def _fit_core(
    prepared: pd.DataFrame,
    group: str,
    task_types: tuple[str, ...],
    *,
    claims: tuple[ClaimRow, ...] = (),
    scale: float = 1.0,
    log_hyper: tuple[float, ...] | None = None,
) -> GapModel:
    features = FeatureTable.from_pairs(prepared)
    groups = prepared[group].astype(str).to_numpy()
    y = prepared["y"].to_numpy(dtype=float)
    linear = fit_linear(design(features, task_types), y, groups, log_hyper=log_hyper)
    within, between = variance_components(y, groups)
    return GapModel(prepared, features, groups, linear, within, between, task_types, scale, claims)


def loso_scores(
    prepared: pd.DataFrame, group: str, task_types: tuple[str, ...], log_hyper: tuple[float, ...] | None = None
) -> np.ndarray:
    """|error| / sd of each pair predicted from the other sources: the conformity scores."""
    groups = prepared[group].astype(str).to_numpy()
    scores = np.full(len(prepared), np.nan)
    features = FeatureTable.from_pairs(prepared)
    for label in np.unique(groups):
        held = groups == label
        sub = _fit_core(prepared.loc[~held].reset_index(drop=True), group, task_types, log_hyper=log_hyper)
        est = sub.local(features.take(held))
        scores[held] = np.abs(prepared["y"].to_numpy(dtype=float)[held] - est.mean) / est.sd
    return scores


def conformal_quantile(scores: np.ndarray, coverage: float = COVERAGE) -> float:
    """The ceil((n+1) * coverage)-th smallest score (split-conformal rank; Lei et al. 2018, sec. 2.2)."""
    ordered = np.sort(scores[np.isfinite(scores)])
    if len(ordered) == 0:
        raise ValueError("no conformity scores to calibrate on")
    rank = min(math.ceil((len(ordered) + 1) * coverage), len(ordered))
    return float(ordered[rank - 1])


def fit_gap_model(
    pairs: pd.DataFrame,
    *,
    claims: pd.DataFrame | None = None,
    task_types: Sequence[str] | None = None,
    group: str = DEFAULT_GROUP,
    fingerprint: str = "",
) -> GapModel:
    """Fit on a frame with the `pairs` view's columns (raw: filtered here by `prepare_pairs`).

    `group` names the column whose values are sources for the random effect and the calibration.
    """
    prepared = prepare_pairs(pairs)
    if group not in prepared.columns:
        raise InputError(f"pairs have no column {group!r} to group sources by")
    n_groups = prepared[group].nunique()
    if len(prepared) < 3 or n_groups < 2:
        raise InputError(
            f"the gap model needs matched FFT-vs-PEFT pairs from at least 2 sources, found {len(prepared)} pairs "
            f"from {n_groups}: import results that include a full fine-tuning row for each setup"
        )
    types = tuple(task_types) if task_types is not None else tuple(sorted(prepared["task_type"].unique()))
    claim_list = tuple(claim_rows(claims)) if claims is not None and not claims.empty else ()
    core = _fit_core(prepared, group, types, claims=claim_list)
    scale = conformal_quantile(loso_scores(prepared, group, types, core.linear.log_hyper))
    return GapModel(
        core.pairs, core.features, core.groups, core.linear, core.within_var, core.between_var, types, scale,
        claim_list, fingerprint,
    )  # fmt: skip


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


def gap_model(wh: Any | None = None) -> GapModel:
    """The model fitted on the warehouse (`open_warehouse()` when None), refitted only when it changed."""
    if wh is None:
        from core.warehouse import open_warehouse

        with open_warehouse() as opened:
            return gap_model(opened)
    from core.warehouse import claims, pairs

    fingerprint = warehouse_fingerprint(wh)
    key = str(getattr(wh, "location", id(wh)))
    with _CACHE_LOCK:
        cached = _CACHE.get(key)
        if cached is not None and cached.fingerprint == fingerprint:
            return cached
        task_types = [
            r[0] for r in wh.cursor().execute("SELECT task_type FROM task_types ORDER BY task_type").fetchall()
        ]
        model = fit_gap_model(pairs(wh), claims=claims(wh), task_types=task_types, fingerprint=fingerprint)
        _CACHE[key] = model
        return model


def predict_gap(scenario: GapScenario, wh: Any | None = None) -> GapPrediction:
    """One scenario against the (cached) warehouse model."""
    return gap_model(wh).predict(scenario)
