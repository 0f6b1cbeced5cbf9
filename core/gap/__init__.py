"""Expected accuracy gap of PEFT vs full fine-tuning, with honest intervals and evidence; and the recommender.

- `GapScenario` (any method or task name: `match_method`, `match_task`) -> `gap_model(wh).predict(...)` ->
  `GapPrediction` (mean, 80% interval for a new source, P(FFT ahead by > 1 point), verdict, the method's or
  family's evidence rows with their sources, the seed paper's claims, notes); `fit_gap_model` fits any frame.
- `robustness` (ood and adversarial, side by side) and `forgetting` (retention per method).
- `leave_one_source_out` scores the predictor, nested, against "gap = 0" and a task-type median.
- `recommend(RecommendRequest)` ranks FFT and PEFT methods for a model, a GPU budget and priorities.
"""

from core.gap.evaluate import LosoReport, leave_one_source_out
from core.gap.evidence import ClaimRow, EvidenceRow
from core.gap.features import GapScenario
from core.gap.forgetting import ForgettingReport, forgetting
from core.gap.model import Crossover, GapModel, GapPrediction, fit_gap_model, gap_model, predict_gap
from core.gap.names import MethodMatch, TaskMatch, match_method, match_task
from core.gap.pairs import literature_pairs, prepare_pairs
from core.gap.recommend import PRIORITIES, MethodOption, Recommendation, RecommendRequest, recommend
from core.gap.robustness import ConditionEstimate, RobustnessReport, robustness
from core.gap.settings import GapSettings

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
