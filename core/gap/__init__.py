"""Expected accuracy gap of PEFT vs full fine-tuning, with honest intervals and evidence; and the recommender.

- `GapScenario` -> `gap_model(wh).predict(...)` -> `GapPrediction` (mean, 80% interval, verdict, evidence rows
  with their sources, the seed paper's claims, theory notes); `fit_gap_model` fits on any frame of pairs.
- `robustness` (ood and adversarial, side by side) and `forgetting` (retention per method).
- `leave_one_source_out` scores the predictor against two baselines on any frame of pairs.
- `recommend(RecommendRequest)` ranks FFT and PEFT methods for a model, a GPU budget and priorities.
"""

from core.gap.evaluate import LosoReport, leave_one_source_out
from core.gap.evidence import ClaimRow, EvidenceRow
from core.gap.features import GapScenario, prepare_pairs
from core.gap.forgetting import ForgettingReport, forgetting
from core.gap.model import GapModel, GapPrediction, fit_gap_model, gap_model, predict_gap
from core.gap.recommend import PRIORITIES, MethodOption, Recommendation, RecommendRequest, recommend
from core.gap.robustness import ConditionEstimate, RobustnessReport, robustness

__all__ = [
    "PRIORITIES",
    "ClaimRow",
    "ConditionEstimate",
    "EvidenceRow",
    "ForgettingReport",
    "GapModel",
    "GapPrediction",
    "GapScenario",
    "LosoReport",
    "MethodOption",
    "RecommendRequest",
    "Recommendation",
    "RobustnessReport",
    "fit_gap_model",
    "forgetting",
    "gap_model",
    "leave_one_source_out",
    "predict_gap",
    "prepare_pairs",
    "recommend",
    "robustness",
]
