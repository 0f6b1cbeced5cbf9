"""Scenarios and warehouse pairs as model features.

One `FeatureTable` describes rows of either kind: categorical columns (task type, method id, method family,
distribution, which modules an adapter targets) and continuous columns on log scales, NaN where a source
or the user did not say. Log scales are the theory's shape: returns in rank, trainable share, data size and
model size are expected to diminish, so each doubling or decade counts the same.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from core.errors import InputError
from core.gap.names import MethodMatch, match_method, match_task
from core.gap.pairs import NOT_FITTED_FAMILIES
from core.registry import METHODS
from core.warehouse.conventions import distribution as read_distribution

# Centres of the continuous features (so coefficients read at a typical setup): LoRA's default rank 8,
# 0.1% trainable, 10,000 examples, 1B tokens of continued pretraining, a 1B-parameter model.
RANK_CENTRE = 3.0  # log2(8)
SHARE_CENTRE = -1.0  # log10(0.1 %)
EXAMPLES_CENTRE = 4.0  # log10(10,000)
TOKENS_CENTRE = 9.0  # log10(1e9)
PARAMS_CENTRE = 0.0  # log10(1B)

DISTRIBUTIONS: tuple[str, ...] = ("in-domain", "ood", "adversarial")
TARGET_KINDS: tuple[str, ...] = ("all-linear", "attention", "unknown")
RANKED_METHODS = frozenset(m.id for m in METHODS.values() if "rank" in m.defaults)
_MLP_NAMES = re.compile(r"all|mlp|ffn|fc|up|down|gate|dense|w[123io]\b|wi|wo", re.IGNORECASE)


def targets_kind(targets: object) -> str:
    """'all-linear' when the adapter covers the MLP too, 'attention' when only attention, else 'unknown'.

    LoRA Without Regret (Thinking Machines 2025) finds attention-only LoRA underperforms; the kind lets the
    evidence check that.
    """
    if targets is None or (isinstance(targets, float) and math.isnan(targets)):
        return "unknown"
    text = ",".join(targets) if isinstance(targets, list | tuple) else str(targets)
    if not text.strip():
        return "unknown"
    return "all-linear" if _MLP_NAMES.search(text) else "attention"


@dataclass(frozen=True)
class GapScenario:
    """What the user asks about: a PEFT method on a task, against full fine-tuning of the same model.

    Blank (None) fields are unknown; the predictor then averages over the evidence instead of guessing.
    `method` is any name (a registry id, a literature name such as PiSSA or 'Houlsby adapter'): `match` says how
    it was read (`names.match_method`). `distribution` is in-domain, ood or adversarial (the batch file's
    `no`, `ood`, `yes` are accepted).
    """

    task_type: str
    method: str
    base_params_b: float | None = None
    train_examples: float | None = None
    rank: int | None = None
    trainable_pct: float | None = None
    targets: str | None = None
    distribution: str = "in-domain"
    match: MethodMatch = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        problems = self._value_problems()
        if not str(self.task_type).strip():
            problems.insert(0, "task_type is blank: give one, e.g. classification, qa or reasoning-math")
        try:
            match = match_method(str(self.method))
        except InputError as exc:
            problems.insert(0, str(exc))
        if problems:
            raise InputError("; ".join(problems))  # every problem of the scenario at once, in one line
        object.__setattr__(self, "task_type", str(self.task_type).strip().lower())
        object.__setattr__(self, "method", match.method_id or str(self.method).strip())
        object.__setattr__(self, "distribution", read_distribution(str(self.distribution)))
        object.__setattr__(self, "match", match)

    def _value_problems(self) -> list[str]:
        problems = []
        try:
            read_distribution(str(self.distribution))
        except ValueError:
            problems.append(f"adversarial {self.distribution!r} is not one of no, ood, yes")
        checks = (
            ("base_params_b", self.base_params_b, lambda v: v > 0, "must be positive (billions of parameters)"),
            ("train_examples", self.train_examples, lambda v: v >= 1, "must be at least 1"),
            ("rank", self.rank, lambda v: v >= 1, "must be a positive integer"),
            ("trainable_pct", self.trainable_pct, lambda v: 0 < v <= 100, "must be in (0, 100]"),
        )
        for name, value, ok, fix in checks:
            if value is not None and not (math.isfinite(value) and ok(value)):
                problems.append(f"{name} {value:g} {fix}")
        return problems

    @property
    def family(self) -> str | None:
        """The method's family; None when the name reads as PEFT in general."""
        return self.match.family


# The paper-level terms a fit estimates and a prediction for a user's own run sets to 0 (gap-literature.md:
# "paper-level differences (tuning effort, which method is the paper's own, an FFT number quoted from elsewhere)
# are nuisance, not signal").
NUISANCE: tuple[str, ...] = ("own_method", "fft_quoted", "peft_quoted")
# Task types that teach a new skill rather than a format (Biderman et al. 2024: code and mathematics are where
# LoRA falls behind; classification and format-style instruction tuning are where it matches).
NOVEL_TASKS = frozenset({"code", "reasoning-math"})


def own_method(source: object, method_raw: object) -> bool:
    """Whether a pair's method is the one its paper proposes: the paper is cited by a short method name
    ("PiSSA (Meng et al. ...)", "GOAT: Make LoRA ...") and the method's name starts with it."""
    head = re.split(r" \(|:", str(source))[0]
    if len(head.split()) > 2:  # "LoRA Learns Less and Forgets Less (...)" is a study, not a proposal
        return False
    name = re.sub(r"[^a-z0-9]", "", head.lower())
    return bool(name) and re.sub(r"[^a-z0-9]", "", str(method_raw).lower()).startswith(name)


def _flags(values: Sequence[object]) -> np.ndarray:
    """0/1 floats of booleans; blanks (unknown) count as 0."""
    flags = pd.to_numeric(pd.Series(list(values), dtype=object), errors="coerce").fillna(0)
    return (flags.to_numpy(dtype=float) != 0).astype(float)


def _quantized_methods(methods: np.ndarray) -> np.ndarray:
    """1.0 for registry methods that train on a quantized base (QLoRA), else 0."""
    return np.array([1.0 if m in METHODS and METHODS[m].quantized_base else 0.0 for m in methods])


def _str_array(values: Sequence[object]) -> np.ndarray:
    return np.array([str(v) for v in values], dtype=object)


def _log(values: Sequence[object] | pd.Series, base: float) -> np.ndarray:
    """log_base of positive numbers; NaN for blanks and non-positive values."""
    arr = pd.to_numeric(pd.Series(values, dtype=object), errors="coerce").to_numpy(dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.log(arr) / math.log(base)
    out[~(arr > 0)] = np.nan
    return out


@dataclass(frozen=True)
class FeatureTable:
    """Feature columns for n rows; continuous columns are logs, NaN where unknown."""

    task_type: np.ndarray
    method: np.ndarray
    family: np.ndarray
    distribution: np.ndarray
    targets: np.ndarray
    log_params: np.ndarray
    log_examples: np.ndarray
    log_tokens: np.ndarray
    log_rank: np.ndarray
    log_share: np.ndarray
    ranked: np.ndarray = field(repr=False)
    # paper-level nuisance (0/1): the method is the paper's own proposal; its FFT or PEFT number was quoted from
    # another paper. A user's run is none of these (`NUISANCE_FOR_USERS`), so a prediction sets them to 0.
    # 0/1: the frozen base is quantized (QLoRA-style 4/8-bit); a registry method says so itself
    quantized: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)
    own_method: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)
    fft_quoted: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)
    peft_quoted: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)

    def __post_init__(self) -> None:
        n = len(self.task_type)
        if len(self.quantized) == 0 and n:  # rows of registry methods: the registry says
            object.__setattr__(self, "quantized", _quantized_methods(self.method))
        for name in NUISANCE:
            if len(getattr(self, name)) == 0 and n:
                object.__setattr__(self, name, np.zeros(n))  # a user's scenario: none of the paper-level terms
        for name in self.__dataclass_fields__:
            if len(getattr(self, name)) != n:
                raise ValueError(f"feature column {name} has {len(getattr(self, name))} rows, expected {n}")

    def __len__(self) -> int:
        return len(self.task_type)

    def take(self, index: np.ndarray) -> FeatureTable:
        """The rows selected by a boolean mask or integer index."""
        return FeatureTable(**{name: getattr(self, name)[index] for name in self.__dataclass_fields__})

    @classmethod
    def from_columns(
        cls,
        *,
        task_type: Sequence[object],
        method: Sequence[object],
        family: Sequence[object],
        distribution: Sequence[object],
        targets: Sequence[object],
        params_b: Sequence[object],
        examples: Sequence[object],
        tokens: Sequence[object],
        rank: Sequence[object],
        share_pct: Sequence[object],
        nuisance: dict[str, Sequence[object]] | None = None,
    ) -> FeatureTable:
        methods = _str_array(method)
        ranked = np.array([m in RANKED_METHODS for m in methods], dtype=bool)
        log_rank = _log(rank, 2)
        log_rank[~ranked] = np.nan  # a rank means nothing to methods that take none
        return cls(
            task_type=_str_array(task_type),
            method=methods,
            family=_str_array(family),
            distribution=_str_array(distribution),
            targets=_str_array([targets_kind(t) for t in targets]),
            log_params=_log(params_b, 10),
            log_examples=_log(examples, 10),
            log_tokens=_log(tokens, 10),
            log_rank=log_rank,
            log_share=_log(share_pct, 10),
            ranked=ranked,
            **{name: _flags(list(values)) for name, values in (nuisance or {}).items()},
        )

    @classmethod
    def from_pairs(cls, pairs: pd.DataFrame) -> FeatureTable:
        """Features of prepared pairs (`pairs.prepare_pairs`: the `pairs` view's columns plus `family`)."""
        return cls.from_columns(
            task_type=pairs["task_type"].tolist(),
            method=[m if m in METHODS else "" for m in pairs["method_id"]],
            family=pairs["family"].tolist(),
            distribution=pairs["distribution"].tolist(),
            targets=pairs["targets"].tolist(),
            params_b=pairs["params_b"].tolist(),
            examples=pairs["train_examples"].tolist(),
            tokens=pairs["train_tokens"].tolist(),
            rank=pairs["rank"].tolist(),
            share_pct=pairs["trainable_pct"].tolist(),
            nuisance={
                "quantized": np.maximum(_quantized_methods(np.array([str(m) for m in pairs["method_id"]])),
                                        pairs["quantization"].notna().to_numpy(float) if "quantization" in pairs
                                        else 0.0),
                "own_method": [own_method(s, m) for s, m in zip(pairs["source"], pairs["method_raw"], strict=True)],
                "fft_quoted": pairs["fft_quoted"].tolist() if "fft_quoted" in pairs else [],
                "peft_quoted": pairs["peft_quoted"].tolist() if "peft_quoted" in pairs else [],
            },
        )

    @classmethod
    def from_scenarios(cls, scenarios: Sequence[GapScenario], task_types: Sequence[str]) -> FeatureTable:
        """Scenario rows; task types and methods as `names` reads them ('' where only a family or nothing is
        known, so no task- or method-specific effect applies)."""
        return cls.from_columns(
            task_type=[match_task(s.task_type, task_types).key for s in scenarios],
            method=[s.match.key for s in scenarios],
            family=[s.match.family or "" for s in scenarios],
            distribution=[s.distribution for s in scenarios],
            targets=[s.targets for s in scenarios],
            params_b=[s.base_params_b for s in scenarios],
            examples=[s.train_examples for s in scenarios],
            tokens=[None] * len(scenarios),
            rank=[s.rank for s in scenarios],
            share_pct=[s.trainable_pct for s in scenarios],
        )


# -- the design matrix of the linear (theory) model -------------------------------------------------------

BLOCKS: tuple[str, ...] = ("intercept", "category", "method", "slope", "indicator")


@dataclass(frozen=True)
class Design:
    """A design matrix with column names and the prior block each column belongs to."""

    matrix: np.ndarray
    names: tuple[str, ...]
    blocks: tuple[str, ...]

    def column(self, name: str) -> int:
        return self.names.index(name)


SLOPES: tuple[str, ...] = ("log2_rank", "log2_rank_sq", "log10_share", "log10_examples", "log10_tokens", "log10_params")


def slope_values(f: FeatureTable) -> tuple[np.ndarray, np.ndarray]:
    """The centred continuous features in `SLOPES` order, and which are known (n x 6 each)."""
    rank = f.log_rank - RANK_CENTRE
    cols = np.column_stack(
        [
            rank,
            rank**2,
            f.log_share - SHARE_CENTRE,
            f.log_examples - EXAMPLES_CENTRE,
            f.log_tokens - TOKENS_CENTRE,
            f.log_params - PARAMS_CENTRE,
        ]
    )
    known = ~np.isnan(cols)
    return np.where(known, cols, 0.0), known


def design(f: FeatureTable, task_types: Sequence[str]) -> Design:
    """One-hot categories (no reference level: the ridge prior makes them identifiable), centred slopes
    set to 0 when unknown, and missing-value indicators so rows with blanks do not bias the slopes."""
    names: list[str] = ["intercept"]
    blocks: list[str] = ["intercept"]
    cols: list[np.ndarray] = [np.ones(len(f))]

    def add(name: str, values: np.ndarray, block: str) -> None:
        names.append(name)
        blocks.append(block)
        cols.append(values.astype(float))

    for task_type in task_types:
        add(f"task:{task_type}", f.task_type == task_type, "category")
    for family in (fam for fam in dict.fromkeys(m.family for m in METHODS.values()) if fam not in NOT_FITTED_FAMILIES):
        add(f"family:{family}", f.family == family, "category")
    for method in (m.id for m in METHODS.values() if m.family not in NOT_FITTED_FAMILIES):
        add(f"method:{method}", f.method == method, "method")
    for dist in DISTRIBUTIONS[1:]:
        add(f"distribution:{dist}", f.distribution == dist, "category")
    add("targets:attention", f.targets == "attention", "category")
    novel = np.isin(f.task_type, list(NOVEL_TASKS))
    for family in (fam for fam in dict.fromkeys(m.family for m in METHODS.values()) if fam not in NOT_FITTED_FAMILIES):
        add(f"novel task x family:{family}", novel & (f.family == family), "method")
    add("quantized base", f.quantized, "category")
    for name in NUISANCE:
        add(f"nuisance:{name}", getattr(f, name), "category")
    values, _ = slope_values(f)
    for j, name in enumerate(SLOPES):
        add(name, values[:, j], "slope")
    add("rank unknown", f.ranked & np.isnan(f.log_rank), "indicator")
    add("share unknown", np.isnan(f.log_share), "indicator")
    add("size in tokens", ~np.isnan(f.log_tokens), "indicator")
    add("size unknown", np.isnan(f.log_examples) & np.isnan(f.log_tokens), "indicator")
    return Design(np.column_stack(cols), tuple(names), tuple(blocks))
