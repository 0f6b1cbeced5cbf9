"""The seed paper's claims beside the published evidence: does the evidence agree?

Every gap here is PEFT minus FFT in points of a 0-100 metric (positive: PEFT did better), whatever way the paper
wrote it ("FFT minus LoRA 2.81" is the claim -2.81). A claim is compared with the matched target-task pairs that
have a 0-100 gap (`charted`) and are about what the claim is about (`evidence_for`): its method (any PEFT method
when it names none), its task type and distribution ('mixed' claims average several, so any), then its model:
the same model when pairs of it exist, else the same model family within a factor of `SIZE_FACTOR` of its size,
else any family within that factor (no size stated: the family, else any model). The verdict is deliberately
coarse, because even the narrowest evidence comes from other setups:
- 'agrees' when the evidence's median gap has the claim's sign (or both are within `TIE_POINTS` of zero);
- 'evidence shows no clear gap' when the claim has a gap but the evidence's median is within `TIE_POINTS`;
- 'disagrees' when the median gap sits on the other side of zero by more than `TIE_POINTS`;
- 'no comparable evidence' when no pair matches (e.g. adversarial claims: no verified adversarial rows).
The last three are flagged in the dashboard.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from core.gap.evidence import charted
from core.registry import METHODS, REFERENCE
from core.warehouse.models import link_model

# Identical configurations re-run by the same team move by 1-3 points (Biderman et al. 2024 seeds; LoRA paper
# std over 5 seeds); a half-point median difference is treated as a tie.
TIE_POINTS = 0.5
FLAGGED = ("disagrees", "evidence shows no clear gap", "no comparable evidence")
# Models within a factor of 2 in size count as "about the claim's size": the gap model's size kernel
# (core/gap/settings.py, bandwidth 0.5 in ln params) keeps a factor-2 neighbour at exp(-0.5 (ln 2 / 0.5)^2) = 0.38.
SIZE_FACTOR = 2.0
ANY = "mixed"  # a claim's task type or distribution that averages several: any value matches


@dataclass(frozen=True)
class ClaimEvidence:
    """The pairs behind one claim (a boolean mask over the pairs frame) and, in words, what they are."""

    mask: pd.Series
    scope: str

    def __post_init__(self) -> None:
        if self.mask.dtype != bool:
            raise ValueError("the evidence mask must be boolean")
        if not self.scope:
            raise ValueError("evidence needs a scope in words")


def _sizes(params_b: float) -> tuple[float, float]:
    return params_b / SIZE_FACTOR, params_b * SIZE_FACTOR


def _size_text(params_b: float) -> str:
    low, high = _sizes(params_b)
    return f"{low:.3g}-{high:.3g}B parameters"


def evidence_for(claim: pd.Series, target: pd.DataFrame, catalogue_ids: pd.Series) -> ClaimEvidence:
    """The target-task pairs that bear on `claim` (see the module docstring for the order of model scopes);
    `catalogue_ids` is the catalogue id of each pair's model (empty when unknown), aligned with `target`."""
    method = claim.get("method_id")
    named = isinstance(method, str) and bool(method)
    base = target["method_id"] == method if named else target["method_id"] != REFERENCE
    if claim["task_type"] != ANY:
        base &= target["task_type"] == claim["task_type"]
    if claim["distribution"] != ANY:
        base &= target["distribution"] == claim["distribution"]
    what = METHODS[method].name if named else "PEFT"
    task = "any task type" if claim["task_type"] == ANY else claim["task_type"]
    about = f"{what} pairs, {task}, {claim['distribution']}"
    link = link_model(str(claim["base_model"]))
    params = claim.get("params_b")
    sized = params is not None and not pd.isna(params)
    in_size = target["params_b"].between(*_sizes(float(params))) if sized else pd.Series(True, index=target.index)
    family = target["model_family"] == link.family
    tiers: list[tuple[pd.Series, str]] = []
    if link.catalogue_id:
        tiers.append((catalogue_ids == link.catalogue_id, f"same model ({claim['base_model']})"))
    if sized:
        tiers += [(family & in_size, f"{link.family} models of {_size_text(float(params))}"),
                  (in_size, f"any model of {_size_text(float(params))}")]
    else:
        tiers += [(family, f"{link.family} models of any size"), (in_size, "any model")]
    for extra, scope in tiers:
        mask = base & extra
        if mask.any():
            return ClaimEvidence(mask.astype(bool), f"{about}, {scope}")
    return ClaimEvidence(pd.Series(False, index=target.index), f"none: no {about} on {tiers[-1][1]}")


def claim_comparison(claim: pd.Series) -> str:
    """What the claim compares, always written PEFT minus FFT when it states a gap ('LoRA minus FFT')."""
    method = claim.get("method_id")
    gap = claim.get("peft_minus_fft_100")
    if gap is not None and not pd.isna(gap):
        return f"{METHODS[method].name if isinstance(method, str) else 'PEFT'} minus FFT"
    return str(claim["comparison"])


def compare_claims(claims: pd.DataFrame, pairs: pd.DataFrame) -> pd.DataFrame:
    """One row per claim: the verdict first, the claimed PEFT-minus-FFT gap, the evidence's median, IQR and n, and
    which pairs the evidence is (`evidence_scope`)."""
    target = charted(pairs)
    names = {name: link_model(str(name)).catalogue_id or "" for name in target["model"].unique()}
    catalogue_ids = target["model"].map(names)
    rows = []
    for _, claim in claims.iterrows():
        evidence = evidence_for(claim, target, catalogue_ids)
        match = target.loc[evidence.mask, "gap"].dropna()
        gap = claim.get("peft_minus_fft_100")
        claimed = math.nan if gap is None or pd.isna(gap) else float(gap)
        median = float(match.median()) if len(match) else math.nan
        verdict = _verdict(claimed, median, len(match))
        rows.append(
            {
                "verdict": verdict,
                "flagged": verdict in FLAGGED,
                "claim_id": claim["claim_id"],
                "comparison": claim_comparison(claim),
                "claim": f"{claim['task']} ({claim['base_model']})",
                "claimed_gap": claimed,
                "evidence_median_gap": median,
                "evidence_pairs": len(match),
                "evidence_q25": float(match.quantile(0.25)) if len(match) else math.nan,
                "evidence_q75": float(match.quantile(0.75)) if len(match) else math.nan,
                "evidence_scope": evidence.scope,
                "task_type": claim["task_type"],
                "method_id": method if isinstance(method := claim.get("method_id"), str) else "any PEFT",
                "distribution": claim["distribution"],
                "qualitative": bool(claim["qualitative"]),
                "notes": "" if pd.isna(claim["notes"]) else str(claim["notes"]),
            }
        )
    return pd.DataFrame(rows)


def _verdict(claimed: float, median: float, n: int) -> str:
    if n == 0:
        return "no comparable evidence"
    if math.isnan(claimed):
        return "no gap stated: read the evidence"
    if abs(median) <= TIE_POINTS:
        return "agrees" if abs(claimed) <= TIE_POINTS else "evidence shows no clear gap"
    return "agrees" if (claimed > 0) == (median > 0) else "disagrees"


def _points(value: float) -> str:
    return f"{value:+.2f}"


def claims_display(compared: pd.DataFrame) -> pd.DataFrame:
    """The claims table as the page shows it: verdict first, every number in words where it is missing (no empty
    cells), gaps as PEFT minus FFT in points."""
    def evidence(row: pd.Series) -> str:
        if row["evidence_pairs"] == 0:
            return "no pairs"
        return (f"{_points(row['evidence_median_gap'])} (middle half {_points(row['evidence_q25'])} to "
                f"{_points(row['evidence_q75'])})")

    return pd.DataFrame({
        "⚑": compared["flagged"].map({True: "⚑", False: ""}),
        "verdict": compared["verdict"],
        "claim": compared["claim_id"] + " " + compared["comparison"] + ": " + compared["claim"],
        "claimed gap (points)": compared["claimed_gap"].map(lambda v: "not stated" if math.isnan(v) else _points(v)),
        "evidence median gap (points)": compared.apply(evidence, axis=1),
        "pairs": compared["evidence_pairs"],
        "evidence used": compared["evidence_scope"],
        "notes": compared["notes"],
    })


def verdict_summary(compared: pd.DataFrame) -> str:
    """One line counting the verdicts, flagged ones first: what a reader sees before the table."""
    counts = compared["verdict"].value_counts()
    order = (*FLAGGED, "agrees", "no gap stated: read the evidence")
    parts = [f"{v} {int(counts[v])}" for v in order if v in counts]
    return f"{len(compared)} claims: " + "; ".join(parts) + "."
