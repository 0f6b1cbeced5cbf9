"""Estimator-versus-probe cases on the tiny configs: the accuracy matrix the tests and the benchmark run.

A case is (family, method, dtype, attention, dropout); dropout applies to the model's own dropouts and to the
method's dropout knob. The estimate is the fake-tensor trace of the training step (`core.memory.profile`) with
the CPU's own attention kernels (`kernels="cpu"`), because the probe runs real CPU kernels; everything else is
the very step the GPU estimate traces. The probe is a real forward whose saved tensors autograd reports.
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Iterator
from dataclasses import dataclass

from core.errors import NotApplicableError
from core.memory.probe import probe_activations
from core.memory.profile import saved_activations
from core.memory.step import TRACE_FAILURES, StepSpec
from core.registry import METHODS, MethodChoice, method_ids
from core.skeleton import SkeletonKey, default_task
from tests.support.tiny import FAMILIES, tiny_model

DTYPES: tuple[str, ...] = ("fp32", "bf16")
ATTENTIONS: tuple[str, ...] = ("sdpa", "eager")
DROPOUTS: tuple[float, ...] = (0.0, 0.1)
VARIANTS: tuple[tuple[str, str, float], ...] = tuple(itertools.product(DTYPES, ATTENTIONS, DROPOUTS))


@dataclass(frozen=True)
class Case:
    """One cell of the matrix."""

    family: str
    method: str
    dtype: str
    attention: str
    dropout: float

    @property
    def id(self) -> str:
        return f"{self.family}-{self.method}-{self.dtype}-{self.attention}-p{self.dropout:g}"


@dataclass(frozen=True)
class Result:
    """Estimator and probe bytes for a case; `skipped` says why a method does not apply to the family."""

    case: Case
    estimate: int = 0
    probe: int = 0
    skipped: str = ""

    @property
    def error(self) -> float:
        """Signed relative error of the estimate, in percent of the probe."""
        return 100.0 * (self.estimate - self.probe) / self.probe if self.probe else 0.0


# Size knobs whose defaults the tiny models cannot hold (30 top layers of 4, C3A's 256-wide blocks of 64-wide
# layers, WaveFT's 2,592 coefficients of a 64 x 32 layer, SHiRA's rank 32 x (in + out) entries of a 64 x 16
# layer): the harness uses at most these. Rank 8 also keeps the adapters low-rank next to 64-wide layers, as
# real ranks are next to real widths.
TINY_KNOBS: dict[str, int] = {"rank": 8, "top_layers": 1, "block_size": 16, "n_frequency": 64}


def full_matrix() -> Iterator[Case]:
    """Every estimable method x family x dtype x attention x dropout."""
    for family, method, (dtype, attention, dropout) in itertools.product(FAMILIES, method_ids(), VARIANTS):
        yield Case(family, method, dtype, attention, dropout)


def covering_matrix(per_pair: int = 2) -> Iterator[Case]:
    """`per_pair` cases per (family, method), rotating through the 8 dtype x attention x dropout variants so
    that each family sees every variant and each method sees both dtypes, both attentions and both dropouts."""
    for f, family in enumerate(FAMILIES):
        for m, method in enumerate(method_ids()):
            for k in range(per_pair):
                dtype, attention, dropout = VARIANTS[(f + 3 * m + 5 * k) % len(VARIANTS)]
                yield Case(family, method, dtype, attention, dropout)


def run_case(case: Case, *, batch_size: int = 2, seq_len: int = 16) -> Result:
    """Estimate and probe one case (a method that does not apply to the family is skipped with its reason)."""
    model = tiny_model(case.family, dropout=case.dropout)
    key = SkeletonKey(model, default_task(model), 2)
    defaults = METHODS[case.method].defaults
    knobs: dict[str, float | int] = {"dropout": case.dropout} if "dropout" in defaults else {}
    knobs |= {name: min(value, defaults[name] or value) for name, value in TINY_KNOBS.items() if name in defaults}
    choice = MethodChoice(case.method, **knobs)  # type: ignore[arg-type]
    precision = "fp32" if case.dtype == "fp32" else f"{case.dtype}-true"
    spec = StepSpec(precision, "sgd", case.attention, False, "none", kernels="cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            probe = probe_activations(key, choice, batch_size=batch_size, seq_len=seq_len, dtype=case.dtype,
                                      attention=case.attention)
        except NotApplicableError as exc:
            return Result(case, skipped=str(exc))
        except TRACE_FAILURES as exc:  # the real forward needs what a plain batch lacks (poly's task ids)
            return Result(case, skipped=f"the real forward fails: {str(exc).strip().splitlines()[0][:120]}")
        if probe.activation_bytes == 0:  # nothing trains (e.g. BitFit on a bias-free model)
            return Result(case, skipped="no trainable parameters")
        try:
            estimate = saved_activations(key, choice, spec, batch_size, seq_len)
        except NotApplicableError as exc:
            return Result(case, skipped=str(exc))
    return Result(case, estimate, probe.activation_bytes)
