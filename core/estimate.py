"""The estimate: per-method results for a scenario, as dataclasses the CLI and app render."""

from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from typing import Any

from core.counting import ParameterCount, count_parameters
from core.errors import InputError, NotApplicableError
from core.memory.ahead import trace_ahead
from core.memory.budget import TrainingEstimate, check_positions, estimate_training, step_spec
from core.memory.quantization import check_quantization, unquantized_experts
from core.registry import MethodChoice
from core.scenario import Scenario


@dataclass(frozen=True)
class MethodEstimate:
    """One method's answer; `error` holds why the method does not apply to this model, `memory_error` why its
    memory could not be estimated (the count still stands)."""

    method: str
    label: str
    count: ParameterCount | None = None
    error: str = ""
    training: TrainingEstimate | None = None
    memory_error: str = ""

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
        training = self.training
        out["memory"] = training.memory.to_dict() if training else None
        out["fit"] = training.fit.to_dict() if training and training.fit else None
        out["time"] = training.time.to_dict() if training else None
        if self.memory_error:
            out["memory_error"] = self.memory_error
        return out


@dataclass(frozen=True)
class EstimateReport:
    """The answer for a whole scenario."""

    model: str
    model_origin: str
    task: str
    methods: list[MethodEstimate] = field(default_factory=list)
    training: dict[str, Any] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "model_origin": self.model_origin,
            "task": self.task,
            "training": self.training,
            "warnings": list(self.warnings),
            "methods": [m.to_dict() for m in self.methods],
        }


# Counts depend only on (model, head, method): cached, so re-estimating after a change of batch, length or GPU
# costs only the memory arithmetic.
cached_count = lru_cache(maxsize=256)(count_parameters)


@dataclass(frozen=True)
class _Planned:
    """One method of the scenario resolved once: its base format and exact count, or why it has neither."""

    choice: MethodChoice
    quantization: str = ""
    count: ParameterCount | None = None
    error: NotApplicableError | InputError | None = None


def _plan(scenario: Scenario) -> list[_Planned]:
    """Each method's base format (refused formats raise) and count, resolved once for the trace-ahead and the
    estimate alike."""
    planned = []
    for choice in scenario.methods:
        try:
            quantization = check_quantization(choice, scenario.training)
            planned.append(_Planned(choice, quantization, cached_count(scenario.skeleton_key, choice)))
        except (NotApplicableError, InputError) as exc:
            planned.append(_Planned(choice, error=exc))
    return planned


def estimate(scenario: Scenario, *, skip_inapplicable: bool = False) -> EstimateReport:
    """Count and size every method of the scenario. With `skip_inapplicable` (method 'all'), a method that cannot
    apply to this model (or to this training setup, e.g. a 4-bit base), or whose settings do not fit it (adaption
    prompt's 30 default layers on a 12-block model), is reported with its reason instead of failing the run."""
    results, notes = [], dict.fromkeys(scenario.warnings)
    key, setup = scenario.skeleton_key, scenario.training
    with contextlib.suppress(NotApplicableError):  # a model that cannot be built is reported per method below
        check_positions(key, setup)  # a bad length is refused before any cold trace, not after
    planned = _plan(scenario)
    # the traced step each countable method needs (tracing a refused one ahead would only fail again)
    trace_ahead(key, [(p.choice, step_spec(setup, p.quantization)) for p in planned if p.error is None])
    for plan in planned:
        choice, count = plan.choice, plan.count
        if plan.error is not None:
            # a user's own bad value stays an error; a method whose own defaults do not fit this model is reported
            own_value = not isinstance(plan.error, NotApplicableError) and choice != MethodChoice(choice.method)
            if not skip_inapplicable or own_value:
                raise plan.error
            results.append(MethodEstimate(choice.method, choice.label(), error=str(plan.error)))
            continue
        assert count is not None  # `_plan` counts every method it finds no error for
        notes.update(dict.fromkeys(filter(None, [unquantized_experts(key, plan.quantization)])))
        try:
            training = estimate_training(key, choice, count, setup, plan.quantization)
        except NotApplicableError as exc:  # e.g. an architecture without an activation model: keep the count
            results.append(MethodEstimate(choice.method, choice.label(), count, memory_error=str(exc)))
            continue
        results.append(MethodEstimate(choice.method, choice.label(), count, training=training))
    return EstimateReport(scenario.model.name, scenario.model.origin, scenario.task, results,
                          asdict(setup), tuple(notes))
