"""Robustness: the gap out of distribution and under adversarial tests, estimated apart from in-domain.

Two kinds of evidence, kept apart and shown side by side:
- `ood` pairs of the warehouse (unseen WebNLG categories, MRQA and paraphrase domain transfer, XSUM topic
  shift), and the shift: each ood gap minus the in-domain gap of the same source, model and PEFT config;
- the seed paper's adversarial claims (AdvGLUE: FFT minus LoRA 5.69 points on RoBERTa-base, 1.48 on
  RoBERTa-large; qualitative Adversarial SQuAD findings) plus any adversarial pairs users add.

Each estimate pools per-source means with a random-effects meta-analysis (DerSimonian & Laird 1986) and
gives an 80% prediction interval for a new setup (Higgins, Thompson & Spiegelhalter 2009, JRSS A 172:137,
with the new result's own noise added). A single published number is given `REPLICATION_SD` of noise:
identical configurations re-run by the same team move by 1-3 points (issue 5).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd
from scipy import stats

from core.gap.evidence import ClaimRow
from core.gap.features import GapScenario
from core.registry import METHODS

REPLICATION_SD = 1.5  # points: the middle of the 1-3 point re-run spread, as an sd


@dataclass(frozen=True)
class ConditionEstimate:
    """The gap (PEFT minus FFT, points; positive = PEFT better) under one condition, or why there is none."""

    condition: str
    basis: str
    mean: float | None
    low: float | None
    high: float | None
    n: int
    n_sources: int
    items: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        numbers = (self.mean, self.low, self.high)
        if any(v is None for v in numbers) and any(v is not None for v in numbers):
            raise ValueError("mean, low and high are given together or not at all")
        if (
            self.mean is not None
            and self.low is not None
            and self.high is not None
            and not (self.low <= self.mean <= self.high)
        ):
            raise ValueError("the interval must hold the mean")

    @property
    def known(self) -> bool:
        return self.mean is not None

    def summary(self) -> str:
        if self.mean is None:
            return f"{self.condition}: no numeric evidence ({self.basis})"
        return (
            f"{self.condition}: {self.mean:+.1f} points (80% interval {self.low:+.1f} to {self.high:+.1f}) "
            f"from {self.n} {self.basis} in {self.n_sources} source{'s' if self.n_sources != 1 else ''}"
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def pooled(condition: str, basis: str, values: pd.Series, sources: pd.Series, items: list[str]) -> ConditionEstimate:
    """Random-effects pooling of per-source means with an 80% prediction interval for one new result."""
    if values.empty:
        return ConditionEstimate(condition, f"no {basis}", None, None, None, 0, 0, items)
    frame = pd.DataFrame({"v": values.to_numpy(dtype=float), "s": sources.astype(str).to_numpy()})
    grouped = frame.groupby("s")["v"]
    means, counts = grouped.mean().to_numpy(), grouped.size().to_numpy()
    # within-source variance, pooled; at least the replication noise of one published number
    resid = frame["v"] - grouped.transform("mean")
    dof = len(frame) - len(means)
    within = max(float((resid**2).sum() / dof) if dof > 0 else 0.0, REPLICATION_SD**2)
    v = within / counts
    k = len(means)
    w = 1 / v
    fixed = float((w * means).sum() / w.sum())
    q = float((w * (means - fixed) ** 2).sum())
    tau2 = max(0.0, (q - (k - 1)) / (w.sum() - (w**2).sum() / w.sum())) if k > 1 else 0.0  # DerSimonian-Laird
    w_re = 1 / (v + tau2)
    mean = float((w_re * means).sum() / w_re.sum())
    se2 = float(1 / w_re.sum())
    t = stats.t.ppf(0.9, df=max(k - 1, 1))  # 80% two-sided; Higgins et al. use k-2, floored at 1 here
    half = float(t * math.sqrt(tau2 + se2 + within))
    return ConditionEstimate(condition, basis, mean, mean - half, mean + half, len(frame), k, items)


def _relevant(frame: pd.DataFrame, scenario: GapScenario | None) -> tuple[pd.DataFrame, str]:
    """The scenario's own method's rows, else its family's, else none (said in the basis): a method's
    robustness comes from evidence about that method, never from other families' pairs."""
    if scenario is None:
        return frame, "pairs (all PEFT methods)"
    method = scenario.match.method_id
    if method is not None and (own := frame.loc[frame["method_id"] == method]).shape[0] > 0:
        return own, f"pairs ({METHODS[method].name})"
    family = scenario.family
    if family is not None and (same := frame.loc[frame["family"] == family]).shape[0] > 0:
        return same, f"pairs ({family} methods; none of {scenario.method} itself)"
    return frame.iloc[0:0], f"pairs of {scenario.method} or its family"


def _claim_applies(claim: ClaimRow, scenario: GapScenario | None) -> bool:
    """A claim about one method counts for a scenario of that method's family (or for no scenario)."""
    if scenario is None or claim.method_id is None:
        return True
    return METHODS[claim.method_id].family == scenario.family


def _item(r: pd.Series, value: float) -> str:
    return f"{r['source']} {r.get('source_table', '')}: {r.get('task', '')} ({r['method_raw']}) {value:+.2f}"


def ood_shift_frame(prepared: pd.DataFrame) -> pd.DataFrame:
    """Each ood pair with the mean in-domain gap of the same source, model, task type and PEFT config."""
    ood = prepared.loc[prepared["distribution"] == "ood"]
    ind = prepared.loc[prepared["distribution"] == "in-domain"]
    keys = ["source", "model", "task_type", "method_raw"]
    matched = ind.groupby(keys, dropna=False)["y"].mean().rename("in_domain").reset_index()
    out = ood.merge(matched, on=keys, how="inner")
    return out.assign(shift=out["y"] - out["in_domain"])


@dataclass(frozen=True)
class RobustnessReport:
    """Out-of-distribution and adversarial estimates side by side, and whether they disagree."""

    ood: ConditionEstimate
    ood_shift: ConditionEstimate
    adversarial: ConditionEstimate
    qualitative: list[ClaimRow]
    disagreement: str | None

    def lines(self) -> list[str]:
        out = [self.ood.summary(), self.ood_shift.summary(), self.adversarial.summary()]
        out += [f"claim {c.claim_id} ({c.citation}): {c.text}" for c in self.qualitative]
        if self.disagreement:
            out.append(self.disagreement)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "ood": self.ood.to_dict(),
            "ood_shift": self.ood_shift.to_dict(),
            "adversarial": self.adversarial.to_dict(),
            "qualitative": [c.to_dict() for c in self.qualitative],
            "disagreement": self.disagreement,
        }


def _disagreement(ood: ConditionEstimate, adversarial: ConditionEstimate) -> str | None:
    """Text when the two conditions point different ways; 'clearly' when their intervals do not overlap or
    one of them excludes 0 on its side."""
    if not (ood.known and adversarial.known):
        return None
    assert ood.mean is not None and ood.low is not None and ood.high is not None
    assert adversarial.mean is not None and adversarial.low is not None and adversarial.high is not None
    apart = ood.low > adversarial.high or adversarial.low > ood.high
    if ood.mean * adversarial.mean >= 0 and not apart:
        return None
    decisive = apart or ood.low > 0 or ood.high < 0 or adversarial.low > 0 or adversarial.high < 0
    strength = "clearly disagrees" if decisive else "points different ways (neither interval is decisive)"
    return (
        f"the evidence {strength}: out of distribution PEFT is at {ood.mean:+.1f} points, under adversarial tests "
        f"at {adversarial.mean:+.1f}; a distribution shift and an attack are different risks, so read both"
    )


def robustness(prepared: pd.DataFrame, claims: list[ClaimRow], scenario: GapScenario | None = None) -> RobustnessReport:
    """OOD and adversarial estimates from prepared pairs (`pairs.prepare_pairs`) and the seed claims.

    With a scenario, the ood evidence is that method's (or family's) pairs only; the seed paper's adversarial
    claims compare FFT with LoRA, so they count for the scenario only when its method is LoRA's family."""
    ood_rows, basis = _relevant(prepared.loc[prepared["distribution"] == "ood"], scenario)
    ood = pooled("out of distribution", basis, ood_rows["y"], ood_rows["source"],
                 [_item(r, r["y"]) for _, r in ood_rows.iterrows()])  # fmt: skip
    shifts, shift_basis = _relevant(ood_shift_frame(prepared), scenario)
    shift = pooled("ood minus in-domain gap", shift_basis.replace("pairs", "matched pairs"), shifts["shift"],
                   shifts["source"], [_item(r, r["shift"]) for _, r in shifts.iterrows()])  # fmt: skip
    adv_pairs, _ = _relevant(prepared.loc[prepared["distribution"] == "adversarial"], scenario)
    adv_claims = [
        c for c in claims if c.distribution == "adversarial" and c.gap is not None and _claim_applies(c, scenario)
    ]
    values = pd.concat([adv_pairs["y"], pd.Series([c.gap for c in adv_claims], dtype=float)], ignore_index=True)
    sources = pd.concat(
        [adv_pairs["source"], pd.Series([c.citation for c in adv_claims], dtype=str)], ignore_index=True
    )
    items = [_item(r, r["y"]) for _, r in adv_pairs.iterrows()]
    items += [f"claim {c.claim_id} ({c.citation}): {c.task}, {c.base_model} {c.gap:+.2f}" for c in adv_claims]
    basis = "adversarial pairs and seed-paper claims" if len(adv_pairs) else "seed-paper claims"
    adversarial = pooled("adversarial", basis, values, sources, items)
    qualitative = [c for c in claims if c.distribution == "adversarial" and c.gap is None]
    return RobustnessReport(ood, shift, adversarial, qualitative, _disagreement(ood, adversarial))
