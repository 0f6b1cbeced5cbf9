"""Recalibration: what calibration runs measured, as ratios that correct later estimates.

Every ok memory measurement gives a ratio measured / predicted for one component: `peak_allocated` (CUDA's
`max_memory_allocated` against the predicted allocator peak) or `activations` (the CPU probe against the
predicted activations).
Ratios are grouped per (device, model family = config model_type, method family = registry family); a group's
median ratio scales the matching part of a new estimate (everything but the CUDA context for a peak
ratio, the activations alone for an activation ratio), and its error is the median |ratio - 1| of the
runs behind it, shown beside the calibrated number so the user sees how far the raw estimate was off.

Lookup order for an estimate on device D: D's `peak_allocated` ratios; else D's `activations` ratios; else the
`activations` ratios of every device pooled (what autograd saves does not depend on the device, so the CPU
probe corrects a GPU estimate's activations too).
"""

from __future__ import annotations

import json
import statistics
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from core.memory.overhead import OVERHEAD
from core.registry import METHODS

COMPONENTS: tuple[str, ...] = ("peak_allocated", "activations")
ANY_DEVICE = "any"


def normalise_device(name: str) -> str:
    """Device names compare case- and space-insensitively ('NVIDIA H100 80GB HBM3', 'cpu')."""
    return " ".join(name.lower().split())


@dataclass(frozen=True)
class RatioGroup:
    """The measured/predicted ratios of one (device, model family, method family, component)."""

    device: str
    model_family: str
    method_family: str
    component: str
    ratios: tuple[float, ...]

    def __post_init__(self) -> None:
        if self.component not in COMPONENTS:
            raise ValueError(f"unknown component {self.component!r}")
        if not self.ratios or any(r <= 0 for r in self.ratios):
            raise ValueError("a ratio group needs positive ratios")

    @property
    def n(self) -> int:
        return len(self.ratios)

    @property
    def ratio(self) -> float:
        return float(statistics.median(self.ratios))

    @property
    def error(self) -> float:
        """Median relative error of the uncalibrated estimate, |measured/predicted - 1|."""
        return float(statistics.median(abs(r - 1) for r in self.ratios))


@dataclass(frozen=True)
class Calibrated:
    """A total corrected by measurements: the raw and calibrated bytes and the evidence behind them."""

    predicted_total: int
    calibrated_total: int
    group: RatioGroup

    @property
    def label(self) -> str:
        g = self.group
        return (f"calibrated from {g.n} run{'s' if g.n != 1 else ''} on {g.device} ({g.component}): "
                f"estimate was off by {100 * g.error:.1f}% (median)")


@dataclass(frozen=True)
class Calibration:
    """All ratio groups from the warehouse's memory measurements."""

    groups: Mapping[tuple[str, str, str, str], RatioGroup] = field(default_factory=dict)

    @classmethod
    def from_measurements(cls, frame: pd.DataFrame) -> Calibration:
        """Build from `core.warehouse.memory_measurements(wh)` (failed and unpredicted rows are ignored)."""
        ratios: dict[tuple[str, str, str, str], list[float]] = defaultdict(list)
        for row in frame.itertuples(index=False):
            if row.status != "ok" or not row.predicted_bytes or pd.isna(row.measured_bytes):
                continue
            config = _config(row.config)
            component = config.get("component")
            if component not in COMPONENTS or row.method_id not in METHODS:
                continue
            family = str(config.get("model_family") or "unknown")
            key = (normalise_device(row.device), family, METHODS[row.method_id].family, component)
            ratios[key].append(float(row.measured_bytes) / float(row.predicted_bytes))
        return cls({k: RatioGroup(*k, ratios=tuple(v)) for k, v in ratios.items() if all(r > 0 for r in v)})

    def find(self, device: str, model_family: str, method_family: str) -> RatioGroup | None:
        """The group that corrects an estimate on `device` (see the module docstring for the order)."""
        device = normalise_device(device)
        for component in COMPONENTS:
            group = self.groups.get((device, model_family, method_family, component))
            if group is not None:
                return group
        pooled = [r for (_, fam, meth, comp), g in self.groups.items()
                  if (fam, meth, comp) == (model_family, method_family, "activations") for r in g.ratios]
        if pooled:
            return RatioGroup(ANY_DEVICE, model_family, method_family, "activations", tuple(pooled))
        return None

    def table(self) -> pd.DataFrame:
        """One row per group, for display."""
        rows = [{"device": g.device, "model family": g.model_family, "method family": g.method_family,
                 "component": g.component, "runs": g.n, "median measured/predicted": g.ratio,
                 "median error (%)": 100 * g.error} for g in self.groups.values()]
        return pd.DataFrame(rows)


def calibrate(
    breakdown: Mapping[str, float], calibration: Calibration, *, device: str, model_family: str, method_id: str
) -> Calibrated | None:
    """Correct a memory breakdown (needs `total`, and `activations` for activation ratios); None: no evidence."""
    group = calibration.find(device, model_family, METHODS[method_id].family)
    if group is None:
        return None
    total = float(breakdown["total"])
    if group.component == "peak_allocated":
        context = min(total, OVERHEAD.cuda_context)  # outside the allocator: not what the ratio measured
        corrected = context + (total - context) * group.ratio
    else:
        activations = float(breakdown["activations"])
        corrected = total - activations + activations * group.ratio
    return Calibrated(round(total), round(corrected), group)


def _config(value: Any) -> dict[str, Any]:
    if isinstance(value, Mapping):
        return dict(value)
    try:
        data = json.loads(value)
    except (TypeError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
