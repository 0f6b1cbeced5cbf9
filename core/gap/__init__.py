"""Expected accuracy gap of PEFT vs full fine-tuning, with honest intervals and evidence; and the recommender.

- `GapScenario` (any method or task name: `match_method`, `match_task`) -> `gap_model(wh).predict(...)` ->
  `GapPrediction` (mean, 80% interval for a new source, P(FFT ahead by > 1 point), verdict, the method's or
  family's evidence rows with their sources, the seed paper's claims, notes); `fit_gap_model` fits any frame.
- `robustness` (ood and adversarial, side by side) and `forgetting` (retention per method).
- `leave_one_source_out` scores the predictor, nested, against "gap = 0" and a task-type median.
- `recommend(RecommendRequest)` ranks FFT and PEFT methods for a model, a GPU budget and priorities.
"""

import importlib
from typing import Any

# Imported on first use (PEP 562), so a light submodule (settings, names) or `python -m core --help` does not
# load the predictor, pandas and torch.
_EXPORTS: dict[str, str] = {
    "LosoReport": "core.gap.evaluate",
    "leave_one_source_out": "core.gap.evaluate",
    "ClaimRow": "core.gap.evidence",
    "EvidenceRow": "core.gap.evidence",
    "GapScenario": "core.gap.features",
    "ForgettingReport": "core.gap.forgetting",
    "forgetting": "core.gap.forgetting",
    "Crossover": "core.gap.model",
    "GapModel": "core.gap.model",
    "GapPrediction": "core.gap.model",
    "fit_gap_model": "core.gap.model",
    "gap_model": "core.gap.model",
    "predict_gap": "core.gap.model",
    "MethodMatch": "core.gap.names",
    "TaskMatch": "core.gap.names",
    "match_method": "core.gap.names",
    "match_task": "core.gap.names",
    "literature_pairs": "core.gap.pairs",
    "prepare_pairs": "core.gap.pairs",
    "MethodOption": "core.gap.recommend",
    "PRIORITIES": "core.gap.settings",
    "RecommendRequest": "core.gap.recommend",
    "Recommendation": "core.gap.recommend",
    "recommend": "core.gap.recommend",
    "ConditionEstimate": "core.gap.robustness",
    "RobustnessReport": "core.gap.robustness",
    "robustness": "core.gap.robustness",
    "GapSettings": "core.gap.settings",
}

__all__ = [
    "PRIORITIES",
    "ClaimRow",
    "ConditionEstimate",
    "Crossover",
    "EvidenceRow",
    "ForgettingReport",
    "GapModel",
    "GapPrediction",
    "GapScenario",
    "GapSettings",
    "LosoReport",
    "MethodMatch",
    "MethodOption",
    "RecommendRequest",
    "Recommendation",
    "RobustnessReport",
    "TaskMatch",
    "fit_gap_model",
    "forgetting",
    "gap_model",
    "leave_one_source_out",
    "literature_pairs",
    "match_method",
    "match_task",
    "predict_gap",
    "prepare_pairs",
    "recommend",
    "robustness",
]


def __getattr__(name: str) -> Any:
    """The exported name, importing its submodule on first use."""
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
