"""What TuneWise predicts for the configuration a calibration run measures: the estimator's own answer
(`core.memory.budget.estimate_training`) for the same model, head, method and `TrainingSetup`.

The estimator's `total` is the predicted per-GPU peak including overhead (CUDA context, the loss's transient
logits, allocator fragmentation; `core.memory.overhead`). A CUDA run measures the caching allocator, which
sees neither the context nor its own fragmentation in `max_memory_allocated`. Since the overhead is
context + (transient + allocated) x fragmentation + transient, the predicted reserved peak is total - context
and the predicted allocated peak is that divided by 1 + fragmentation. On CPU the activations are predicted
with the CPU kernels' saving rules (dropout keeps its mask in the input dtype there), as the CPU probe runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from core.calibrate.spec import CalibrationSpec
from core.counting import count_parameters
from core.errors import NotApplicableError
from core.memory.activations import activation_model
from core.memory.budget import estimate_training
from core.memory.overhead import PRIORS
from core.registry import MethodChoice


@dataclass(frozen=True)
class Prediction:
    """Predicted bytes (empty, with the reason, where the estimator has no answer for this method or model)."""

    activations: int | None = None
    total: int | None = None
    breakdown: dict[str, int] = field(default_factory=dict)
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"predicted_activations": self.activations, "predicted_total": self.total}
        out.update({f"predicted_{k}": v for k, v in self.breakdown.items() if k not in ("activations", "total")})
        if self.note:
            out["prediction_note"] = self.note
        return out


def predict(spec: CalibrationSpec, choice: MethodChoice, device: str) -> Prediction:
    """The estimator's answer for `choice` under the spec's training setup on `device`."""
    setup = spec.training_setup
    try:
        memory = estimate_training(spec.key, choice, count_parameters(spec.key, choice), setup).memory
        activations = activation_model(spec.key, choice, dtype=setup.compute_dtype, attention=setup.attention,
                                       checkpointing=setup.gradient_checkpointing,
                                       kernels="cuda" if device == "cuda" else "cpu")
    except NotApplicableError as exc:
        return Prediction(note=str(exc))
    reserved = memory.total - PRIORS.cuda_context
    breakdown = {**memory.to_dict(), "states": memory.weights + memory.gradients + memory.optimizer,
                 "peak_reserved": reserved, "peak_allocated": round(reserved / (1 + PRIORS.fragmentation))}
    return Prediction(activations.bytes(spec.batch_size, spec.seq_len), memory.total, breakdown)
