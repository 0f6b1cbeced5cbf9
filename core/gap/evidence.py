"""Which published pairs an answer shows, and in what order: the similarity kernel and the evidence rows.

The similarity of a pair to a scenario is a product of per-feature factors in [0, 1] (a product kernel, as
in Nadaraya-Watson regression with mixed data; Racine & Li 2004, "Nonparametric estimation of regression
functions with both categorical and continuous data"). Categorical features multiply by 1 when equal and
by a fixed factor when not; continuous log features by a Gaussian in their distance; a feature only one
side knows multiplies by `unknown`. The factors live in `settings.GapSettings`; the kernel orders the rows
an answer shows (which rows are shown is `GapModel.evidence`: the method's own pairs, or its family's).
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from core.gap.features import FeatureTable, GapScenario
from core.gap.settings import GapSettings


def _categorical(a: np.ndarray, b: np.ndarray, mismatch: float) -> np.ndarray:
    return np.where(a[:, None] == b[None, :], 1.0, mismatch)


def _continuous(a: np.ndarray, b: np.ndarray, bandwidth: float, unknown: float) -> np.ndarray:
    both_known = ~np.isnan(a)[:, None] & ~np.isnan(b)[None, :]
    neither = np.isnan(a)[:, None] & np.isnan(b)[None, :]
    distance = np.nan_to_num(a[:, None] - b[None, :]) / bandwidth
    return np.where(both_known, np.exp(-0.5 * distance**2), np.where(neither, 1.0, unknown))


def similarity(query: FeatureTable, pairs: FeatureTable, s: GapSettings) -> np.ndarray:
    """Similarity weights, one row per query and one column per pair, each in [0, 1]."""
    same_method = (query.method[:, None] == pairs.method[None, :]) & (query.method[:, None] != "")
    same_family = query.family[:, None] == pairs.family[None, :]
    weights = np.where(same_method, 1.0, np.where(same_family, s.same_family_other_method, s.other_family))
    weights = weights * _categorical(query.task_type, pairs.task_type, s.other_task_type)
    weights = weights * _categorical(query.distribution, pairs.distribution, s.other_distribution)
    known_targets = (query.targets[:, None] != "unknown") & (pairs.targets[None, :] != "unknown")
    # Targets are rarely published: a side that does not say leaves the weight alone.
    weights = weights * np.where(known_targets, _categorical(query.targets, pairs.targets, s.other_targets), 1.0)
    weights = weights * _continuous(query.log_params, pairs.log_params, s.bandwidth_params, s.unknown)
    weights = weights * _size_kernel(query, pairs, s)
    ranked = query.ranked[:, None] & pairs.ranked[None, :]
    rank = _continuous(query.log_rank, pairs.log_rank, s.bandwidth_rank, s.unknown)
    weights = weights * np.where(ranked, rank, 1.0)
    return weights * _continuous(query.log_share, pairs.log_share, s.bandwidth_share, s.unknown)


def _size_kernel(query: FeatureTable, pairs: FeatureTable, s: GapSettings) -> np.ndarray:
    """Examples compare with examples and tokens with tokens; a count against a token budget is `unknown`."""
    examples = _continuous(query.log_examples, pairs.log_examples, s.bandwidth_size, s.unknown)
    tokens = _continuous(query.log_tokens, pairs.log_tokens, s.bandwidth_size, s.unknown)
    q_tokens = ~np.isnan(query.log_tokens)[:, None]
    p_tokens = ~np.isnan(pairs.log_tokens)[None, :]
    return np.where(q_tokens | p_tokens, np.where(q_tokens & p_tokens, tokens, s.unknown), examples)


@dataclass(frozen=True)
class EvidenceRow:
    """One matched published (or user, or calibration) pair behind a prediction, with its provenance."""

    source: str
    source_table: str
    model: str
    params_b: float
    task: str
    task_type: str
    metric: str
    distribution: str
    method: str
    method_raw: str
    family: str
    gap: float
    similarity: float
    origin: str
    rank: int | None = None
    train_examples: int | None = None
    train_tokens: int | None = None
    peft_result_id: int | None = None
    fft_result_id: int | None = None

    def __post_init__(self) -> None:
        if not self.source:
            raise ValueError("an evidence row needs its source")
        if not 0 <= self.similarity <= 1:
            raise ValueError(f"similarity {self.similarity} outside [0, 1]")
        if not math.isfinite(self.gap):
            raise ValueError(f"gap {self.gap} is not finite")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _optional_int(value: Any) -> int | None:
    return None if value is None or pd.isna(value) else int(value)


def evidence_rows(pairs: pd.DataFrame, weights: np.ndarray, chosen: np.ndarray) -> list[EvidenceRow]:
    """The `chosen` pairs (a boolean mask over the prepared training frame), most similar first."""
    order = [int(i) for i in np.argsort(-weights, kind="stable") if chosen[i]]
    rows = []
    for i in order:
        r = pairs.iloc[i]
        rows.append(
            EvidenceRow(
                source=str(r["source"]),
                source_table=str(r.get("source_table", "") or ""),
                model=str(r.get("model", "") or ""),
                params_b=float(r["params_b"]),
                task=str(r.get("task", "") or ""),
                task_type=str(r["task_type"]),
                metric=str(r.get("metric", "") or ""),
                distribution=str(r["distribution"]),
                method=str(r["method_id"]),
                method_raw=str(r.get("method_raw", "") or r["method_id"]),
                family=str(r["family"]),
                gap=float(r["y"]),
                similarity=round(float(weights[i]), 4),
                origin=str(r.get("origin", "published") or "published"),
                rank=_optional_int(r.get("rank")),
                train_examples=_optional_int(r.get("train_examples")),
                train_tokens=_optional_int(r.get("train_tokens")),
                peft_result_id=_optional_int(r.get("peft_result_id")),
                fft_result_id=_optional_int(r.get("fft_result_id")),
            )
        )
    return rows


@dataclass(frozen=True)
class ClaimRow:
    """A claim of the seed paper shown next to the evidence (not fitted): the gap when it states one."""

    claim_id: str
    citation: str
    base_model: str
    task: str
    task_type: str
    distribution: str
    comparison: str
    gap: float | None
    text: str
    method_id: str | None = None  # the PEFT method the claim compares with FFT, when it names one

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def claim_rows(claims: pd.DataFrame) -> list[ClaimRow]:
    """Claims as rows; `gap` is the claim as PEFT minus FFT on 0-100 when it is a number."""
    out = []
    for _, c in claims.iterrows():
        gap = c.get("peft_minus_fft_100")
        notes = "" if pd.isna(c.get("notes")) else str(c.get("notes"))
        out.append(
            ClaimRow(
                claim_id=str(c["claim_id"]),
                citation=str(c["citation"]),
                base_model=str(c["base_model"]),
                task=str(c["task"]),
                task_type=str(c["task_type"]),
                distribution=str(c["distribution"]),
                comparison=str(c["comparison"]),
                gap=None if gap is None or pd.isna(gap) else float(gap),
                text=notes,
                method_id=None if pd.isna(c.get("method_id")) else str(c.get("method_id")),
            )
        )
    return out


def relevant_claims(scenario: GapScenario, claims: list[ClaimRow]) -> list[ClaimRow]:
    """Claims on the scenario's task type (or averaged over several) and distribution (or mixed)."""
    return [
        c
        for c in claims
        if c.task_type in (scenario.task_type, "mixed") and c.distribution in (scenario.distribution, "mixed")
    ]


def charted(pairs: pd.DataFrame) -> pd.DataFrame:
    """The pairs the gap charts show: the task trained for (not forgetting), with a gap on the 0-100 scale."""
    return pairs[(pairs["metric_kind"] == "target") & pairs["gap"].notna()]


def pairs_explained(n_results: int, pairs: pd.DataFrame, n_learned: int | None = None) -> str:
    """One line saying what a result and a pair are and how many of each the view holds, so the counts on the
    page (the charts count `charted` pairs, the pairs table all of them) read as parts of one whole."""
    shown = len(charted(pairs))
    target = int((pairs["metric_kind"] == "target").sum())
    parts = [f"{shown:,} on the task trained for (the charts)"]
    if target > shown:
        parts.append(f"{target - shown:,} on that task without a 0-100 score (loss, perplexity)")
    parts.append(f"{len(pairs) - target:,} on other tasks (forgetting)")
    line = (
        f"{n_results:,} results (one reported score each: a method on a model and task) give {len(pairs):,} "
        "matched pairs (a PEFT result beside the FFT result of the same source, model, task and data size): "
        + ", ".join(parts) + "."
    )
    if n_learned is not None:
        line += (f" The expected gap learns from {n_learned:,} task-trained pairs: repeated rows and a paper's "
                 "averages beside their parts count once, and methods outside the registry (SVFT, ...) count "
                 "for their family.")
    return line


def gap_summary(pairs: pd.DataFrame, by: tuple[str, ...] = ("task_type", "method_id")) -> pd.DataFrame:
    """Per group: pairs, median gap and its 25-75% range (PEFT minus FFT, points), largest group first; the table
    beside a chart, so no reader has to count overlapping dots."""
    grouped = pairs.groupby(list(by), observed=True)["gap"]
    table = grouped.agg(pairs="count", median="median", q25=lambda g: g.quantile(0.25),
                        q75=lambda g: g.quantile(0.75)).reset_index()
    return table.sort_values(["pairs", *by], ascending=[False, *([True] * len(by))], ignore_index=True)


# An absolute POSIX or Windows path (at least two parts), not part of a URL: shown by its last part only.
_SERVER_PATH = re.compile(r"(?<![\w:/.])(?:[A-Za-z]:\\|/)(?:[^\s/\\\"',;]+[/\\])+([^\s/\\\"',;]+)")


def without_server_paths(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with every absolute path in its text columns cut to the file or folder name: a page never shows
    where the server keeps things (`/root/.local/...`)."""
    out = frame.copy()
    for column in out.columns:
        if out[column].dtype == object or pd.api.types.is_string_dtype(out[column]):
            out[column] = out[column].map(lambda v: _SERVER_PATH.sub(r"\1", v) if isinstance(v, str) else v)
    return out
