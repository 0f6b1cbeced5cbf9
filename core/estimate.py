"""The estimate: per-method results for a scenario, as dataclasses the CLI and app render."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from core.counting import ParameterCount, count_parameters
from core.errors import NotApplicableError
from core.scenario import Scenario


@dataclass(frozen=True)
class MethodEstimate:
    """One method's answer; `error` holds why the method does not apply to this model."""

    method: str
    label: str
    count: ParameterCount | None = None
    error: str = ""

    def __post_init__(self) -> None:
        if (self.count is None) == (not self.error):
            raise ValueError("a method estimate has either a count or an error")

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"method": self.method, "label": self.label}
        if self.count is None:
            out.update(applicable=False, error=self.error)
            return out
        out.update(applicable=True, **{k: v for k, v in asdict(self.count).items() if k not in ("method", "label")})
        out["targeted_modules"] = list(self.count.targeted_modules)
        return out


@dataclass(frozen=True)
class EstimateReport:
    """The answer for a whole scenario."""

    model: str
    model_origin: str
    task: str
    methods: list[MethodEstimate] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "model_origin": self.model_origin,
            "task": self.task,
            "methods": [m.to_dict() for m in self.methods],
        }


def estimate(scenario: Scenario, *, skip_inapplicable: bool = False) -> EstimateReport:
    """Count every method of the scenario. With `skip_inapplicable` (method 'all'), a method that cannot
    apply to this model is reported with its reason instead of failing the whole run."""
    results = []
    for choice in scenario.methods:
        try:
            results.append(
                MethodEstimate(choice.method, choice.label(), count_parameters(scenario.skeleton_key, choice))
            )
        except NotApplicableError as exc:
            if not skip_inapplicable:
                raise
            results.append(MethodEstimate(choice.method, choice.label(), error=str(exc)))
    return EstimateReport(scenario.model.name, scenario.model.origin, scenario.task, results)
