"""Recalibration: what calibration runs measured, scoped to where it was measured.

Every ok memory measurement gives a ratio measured / predicted for one component:
  `peak_allocated`  a CUDA probe's `max_memory_allocated` against the predicted allocator peak. It corrects
                    later estimates, but only on the same device class (a catalogue GPU id such as H100-80GB;
                    torch's 'NVIDIA H100 80GB HBM3' reads as that), model family (config model_type) and method
                    family (the registry's family). The CUDA context is outside the allocator and not scaled.
  `activations`     a CPU probe's saved-for-backward bytes against the traced activations. It checks the
                    activation model only and never corrects a GPU estimate: the CPU runs other kernels and
                    has no caching allocator, and the trace is what the estimate was built from.
Each group shows how many measurements stand behind it (n) and their spread (lowest and highest ratio);
where no group applies, `uncalibrated_reason` says so in plain words.
"""

from __future__ import annotations

import json
import re
import statistics
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from core.errors import InputError
from core.memory.gpus import find_gpu
from core.memory.overhead import OVERHEAD
from core.registry import METHODS

CORRECTION = "peak_allocated"
CHECK = "activations"
COMPONENTS: tuple[str, ...] = (CORRECTION, CHECK)
CPU = "cpu"
CPU_PROBE_NOTE = ("CPU probe: checks the traced activations against autograd's saved tensors; it does not correct "
                  "GPU estimates")
# Words in torch's device names that do not change the memory a GPU offers (form factor, memory type).
_NOISE = re.compile(r"^(sxm\d*|hbm\w*|tesla|gddr\w*)$")


def device_class(name: str) -> str:
    """The class a measurement applies to: `cpu` for any CPU, the catalogue GPU id where the name matches one
    (whole, without form-factor words, or cut at its end), else the name in lower case."""
    text = " ".join(name.lower().split())
    if text.startswith(CPU):
        return CPU
    tokens = [t for t in re.split(r"[\s_-]+", text) if t]
    plain = [t for t in tokens if not _NOISE.match(t)]
    candidates = [tokens, plain, *(plain[:cut] for cut in range(len(plain) - 1, 1, -1))]
    for words in candidates:
        try:
            return find_gpu(" ".join(words)).id
        except InputError:
            continue
    return text


@dataclass(frozen=True)
class RatioGroup:
    """The measured/predicted ratios of one (device class, model family, method family, component)."""

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
    def low(self) -> float:
        return min(self.ratios)

    @property
    def high(self) -> float:
        return max(self.ratios)

    @property
    def corrects(self) -> bool:
        """Whether this group corrects estimates (GPU peaks) or only checks the activation model (CPU probes)."""
        return self.component == CORRECTION and self.device != CPU

    @property
    def spread(self) -> str:
        """n and the range of measured/predicted, e.g. '3 measurements, measured/predicted 1.10-1.30'."""
        span = f"{self.low:.3f}" if self.n == 1 else f"{self.low:.3f}-{self.high:.3f}"
        return f"{self.n} measurement{'s' if self.n != 1 else ''}, measured/predicted {span}"


@dataclass(frozen=True)
class Calibrated:
    """A total corrected by measurements: the raw and calibrated bytes and the evidence behind them."""

    predicted_total: int
    calibrated_total: int
    group: RatioGroup

    @property
    def label(self) -> str:
        g = self.group
        return (f"calibrated x{g.ratio:.3f} (median) from {g.spread} on {g.device}, {g.model_family} models, "
                f"{g.method_family} methods")


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
            key = (device_class(row.device), family, METHODS[row.method_id].family, component)
            ratios[key].append(float(row.measured_bytes) / float(row.predicted_bytes))
        return cls({k: RatioGroup(*k, ratios=tuple(v)) for k, v in ratios.items() if all(r > 0 for r in v)})

    def find(self, device: str, model_family: str, method_family: str) -> RatioGroup | None:
        """The group that corrects an estimate on `device`: GPU peaks of the same device class, model family and
        method family, or none (CPU probes never correct)."""
        group = self.groups.get((device_class(device), model_family, method_family, CORRECTION))
        return group if group is not None and group.corrects else None

    def uncalibrated_reason(self, device: str, model_family: str, method_family: str) -> str:
        """Plain words for an estimate no group corrects, naming what a correction would need."""
        where = device_class(device)
        reason = (f"not calibrated: no measured GPU peak of {model_family} models with {method_family} methods on "
                  f"{where} yet")
        checked = [g for (_, fam, meth, comp), g in self.groups.items()
                   if (fam, meth, comp) == (model_family, method_family, CHECK)]
        if checked:
            reason += f" (the {sum(g.n for g in checked)} CPU probe measurements check activations only)"
        return reason

    def table(self) -> pd.DataFrame:
        """One row per group, for display: what it is used for, n and the spread of measured/predicted."""
        rows = [{"device": g.device, "model family": g.model_family, "method family": g.method_family,
                 "used for": "corrects GPU estimates" if g.corrects else "checks the activation model only",
                 "measurements": g.n, "median measured/predicted": g.ratio, "lowest": g.low, "highest": g.high}
                for g in self.groups.values()]
        return pd.DataFrame(rows)


def calibrate(
    breakdown: Mapping[str, float], calibration: Calibration, *, device: str, model_family: str, method_id: str
) -> Calibrated | None:
    """Correct a memory breakdown's `total` by its scope's GPU peak ratio; None where no measurement applies
    (`Calibration.uncalibrated_reason` says why)."""
    group = calibration.find(device, model_family, METHODS[method_id].family)
    if group is None:
        return None
    total = float(breakdown["total"])
    context = min(total, OVERHEAD.cuda_context)  # outside the allocator: not what the ratio measured
    corrected = context + (total - context) * group.ratio
    return Calibrated(round(total), round(corrected), group)


def _config(value: Any) -> dict[str, Any]:
    if isinstance(value, Mapping):
        return dict(value)
    try:
        data = json.loads(value)
    except (TypeError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
