"""What TuneWise predicts for the configuration a calibration run measures: the estimator's own answer
(`core.memory.budget.estimate_training`) for the same model, head, method and `TrainingSetup`.

On CUDA the estimate's `allocated` peak is what `torch.cuda.max_memory_allocated` measures, `reserved` (the step
replayed through the caching-allocator model, `core.memory.steplog`) what `max_memory_reserved` measures, and the total
(`device`) adds the CUDA context. On the CPU there is neither a caching allocator nor a CUDA context: the total
is the allocated peak alone. The activations are the bytes the forward leaves for backward, traced on the whole model at
the run's shape, with CUDA's attention kernels on CUDA and the CPU's own on the CPU (as the CPU probe runs).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from core.calibrate.spec import CalibrationSpec
from core.counting import count_parameters
from core.errors import NotApplicableError
from core.memory.budget import estimate_training, step_spec
from core.memory.profile import saved_activations
from core.memory.quantization import check_quantization
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
        quant = check_quantization(choice, setup)
        memory = estimate_training(spec.key, choice, count_parameters(spec.key, choice), setup, quant).memory
        kernels = "cuda" if device == "cuda" else "cpu"
        activations = saved_activations(spec.key, choice, replace(step_spec(setup, quant), kernels=kernels),
                                        spec.batch_size, spec.seq_len)
    except NotApplicableError as exc:
        return Prediction(note=str(exc))
    breakdown = {k: v for k, v in memory.to_dict().items() if isinstance(v, int)}
    breakdown.update(states=memory.weights + memory.gradients + memory.optimizer, peak_allocated=memory.allocated)
    if device != "cuda":  # no caching allocator and no CUDA context on the CPU: the total is what was allocated
        for gpu_only in ("cached", "context", "overhead", "reserved", "device"):
            del breakdown[gpu_only]
        breakdown["total"] = memory.allocated
        return Prediction(activations, memory.allocated, breakdown)
    breakdown["peak_reserved"] = memory.reserved
    return Prediction(activations, memory.device, breakdown)
