"""Conventions of the published-results format (data/published_results_sources.md), as code.

One place answers: which columns a results file has, how a training-set size like `4B_tokens` reads,
what the `adversarial` column means, which metrics are 'forgetting' metrics, which way a metric points,
and how a published value maps onto a 0-100 scale.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from types import MappingProxyType

PUBLISHED_COLUMNS: tuple[str, ...] = (
    "source", "table", "base_model", "base_params_b", "task", "task_type", "train_examples",
    "method", "trainable_pct", "metric", "value", "adversarial", "notes",
)  # fmt: skip

ORIGINS: tuple[str, ...] = ("published", "user", "calibration")  # who a result row comes from
METRIC_KINDS: tuple[str, ...] = ("target", "forgetting")

# The `adversarial` column: `no` = in-distribution test, `ood` = distribution shift; `yes`/`adversarial`
# = an adversarial test set (none in the shipped rows; the seed paper's claims use `yes`).
DISTRIBUTIONS: Mapping[str, str] = MappingProxyType(
    {"no": "in-domain", "in-domain": "in-domain", "ood": "ood", "yes": "adversarial", "adversarial": "adversarial"}
)
DISTRIBUTION_NAMES: tuple[str, ...] = tuple(dict.fromkeys(DISTRIBUTIONS.values()))

# Value scales and the factor that puts each on 0-100. 'fraction': 0-1 values (pass@1 0.302 = 30.2);
# '0-10': MT-Bench-style judge scores; 'unbounded': perplexity or loss, which have no 0-100 form.
SCALE_FACTORS: Mapping[str, float | None] = MappingProxyType(
    {"0-100": 1.0, "fraction": 100.0, "0-10": 10.0, "unbounded": None}
)

_TOKENS = re.compile(r"^(\d+(?:\.\d+)?)([KMBT])_tokens$", re.IGNORECASE)
_TOKEN_UNITS = {"K": 10**3, "M": 10**6, "B": 10**9, "T": 10**12}
_COUNT = re.compile(r"^\d+$")
_EPOCHS = re.compile(r"\bepochs?\s*=\s*(\d+(?:\.\d+)?)", re.IGNORECASE)
_UNBOUNDED = re.compile(r"\b(perplexity|ppl|loss)\b", re.IGNORECASE)
_TEN_POINT = re.compile(r"\bmt-?bench\b|\b0-10\b|\b1-10\b", re.IGNORECASE)
_LOWER_IS_BETTER = re.compile(r"\b(perplexity|ppl|loss|error|wer|lower is better|lower=better)\b", re.IGNORECASE)


def parse_train_size(text: str) -> tuple[int | None, int | None]:
    """`train_examples` as (examples, tokens): '392000' -> (392000, None), '4B_tokens' -> (None, 4e9).

    Raises ValueError for anything else; blank means the source does not say.
    """
    text = text.strip()
    if not text:
        return None, None
    if _COUNT.match(text):
        return int(text), None
    match = _TOKENS.match(text)
    if match:
        return None, round(float(match.group(1)) * _TOKEN_UNITS[match.group(2).upper()])
    raise ValueError(f"train_examples {text!r} is not a count (e.g. 392000) or a token budget (e.g. 4B_tokens)")


def parse_epochs(notes: str) -> float | None:
    """Epochs stated in the notes ('epochs=4; ...'): rows of one table that differ only by epochs must not pair."""
    match = _EPOCHS.search(notes)
    return float(match.group(1)) if match else None


def distribution(adversarial: str) -> str:
    """The `adversarial` column as a distribution; raises ValueError for an unknown value."""
    key = adversarial.strip().lower()
    if key not in DISTRIBUTIONS:
        raise ValueError(f"adversarial {adversarial!r} is not one of no, ood, yes")
    return DISTRIBUTIONS[key]


def metric_kind(metric: str) -> str:
    """'forgetting' for retention metrics (LoRA Learns Less and Forgets Less), else 'target'."""
    return "forgetting" if "forgetting" in metric.lower() else "target"


def higher_is_better(metric: str) -> bool:
    """Accuracy, F1, BLEU, ROUGE, pass@1 and retention ('higher=less forgetting') point up; loss-like metrics down."""
    return _LOWER_IS_BETTER.search(metric) is None


def fixed_scale(metric: str) -> str | None:
    """The scale a metric's name settles on its own, or None when the values must decide."""
    if _UNBOUNDED.search(metric):
        return "unbounded"
    if _TEN_POINT.search(metric):
        return "0-10"
    return None


def infer_scale(metric: str, values: Iterable[float]) -> str:
    """The scale of one source's values for one metric.

    The name decides first (perplexity: unbounded; MT-Bench / '0-10': ten-point); otherwise a source
    whose values for the metric all lie in [-1, 1] reports fractions (Biderman et al. give pass@1 as 0.302),
    and anything else is already on 0-100 (the sources give GLUE correlations x100, e.g. 63.6).
    """
    scale = fixed_scale(metric)
    if scale is not None:
        return scale
    return "fraction" if all(-1.0 <= v <= 1.0 for v in values) else "0-100"


def value_range_error(metric: str, value: float) -> str | None:
    """Why a published value cannot be right for its metric, or None when it is plausible."""
    if not math.isfinite(value):
        return f"value {value} is not a finite number"
    scale = fixed_scale(metric)
    if scale == "unbounded":
        return None if value >= 0 else f"value {value} is negative for a loss-like metric"
    top = 10.0 if scale == "0-10" else 100.0
    if not -top <= value <= top:
        return f"value {value:g} is outside [-{top:g}, {top:g}] for metric {metric!r}"
    return None


def to_100(value: float, scale: str) -> float | None:
    """The value on a 0-100 scale; None for unbounded metrics. Rounded to 6 decimals to drop float noise
    (0.302 x 100 = 30.200000000000003); published values carry at most 4."""
    factor = SCALE_FACTORS[scale]
    return None if factor is None else round(value * factor, 6)
