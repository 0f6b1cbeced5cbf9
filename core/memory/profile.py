"""The memory profile of a training step: traced a few times, then evaluated at any batch and sequence length.

Two facts make tracing a handful of small steps exact for the whole model at any shape:

* Transformer blocks are identical, so a step of the first 2 and of the first 3 blocks of each block stack
  differ by one block's exact contribution; each phase's peak (with its breakdown) is extrapolated linearly to
  the full depth. The stacks come from `core.skeleton.block_stacks`, as for the counts.
* The op sequence of a step does not depend on batch or length, and every tensor's size is a polynomial in
  them: batch enters linearly, length at most quadratically (s x s attention scores, masks, position biases).
  So the live bytes after each allocation are a polynomial in (b, s) in the basis 1, s, s^2, b, b·s, b·s^2;
  tracing at the six (b, s) points of `DESIGN` fits it exactly. If the op sequences of the traced shapes
  differ, the profile says so and each shape is traced.

MoE layers run transformers' `grouped_mm` experts path, whose shapes are static: every token goes to its top-k
experts (k x tokens rows), so the bytes do not depend on how the router balances them.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from core.memory.step import StepSpec, TracedModel, trace_step
from core.memory.trace import CATEGORIES, PHASES, Timeline
from core.registry import MethodChoice
from core.skeleton import SkeletonKey, block_stacks, skeleton

BASE_DEPTH = 2
SEQ_POINTS = (64, 96, 128)
BATCH_POINTS = (2, 3)  # not 1: a size-1 dim makes some copies (contiguous) into views


def _basis(batch: float, seq: float) -> list[float]:
    return [1.0, seq, seq * seq, batch, batch * seq, batch * seq * seq]


DESIGN = tuple((b, s) for b in BATCH_POINTS for s in SEQ_POINTS)


@dataclass(frozen=True)
class PhasePeaks:
    """Per-phase peak bytes by category (rows: `PHASES`, columns: `CATEGORIES`) of one step at one shape."""

    bytes: np.ndarray

    def __post_init__(self) -> None:
        if self.bytes.shape != (len(PHASES), len(CATEGORIES)):
            raise ValueError("phase peaks have one row per phase and one column per category")


class FittedTimeline:
    """A timeline whose every event's live bytes are a fitted polynomial in (b, s)."""

    def __init__(self, timelines: dict[tuple[int, int], Timeline]) -> None:
        points = list(timelines)
        first = timelines[points[0]]
        self.phase = first.phase
        design = np.array([_basis(b, s) for b, s in points])
        values = np.stack([timelines[p].live.reshape(-1) for p in points]).astype(np.float64)
        coef, *_ = np.linalg.lstsq(design, values, rcond=None)
        self.coef = coef.reshape(len(design[0]), *first.live.shape)  # (basis, events, categories)

    def live(self, batch: int, seq: int) -> np.ndarray:
        weights = np.array(_basis(batch, seq))
        return np.tensordot(weights, self.coef, axes=1)

    def phase_peaks(self, batch: int, seq: int) -> PhasePeaks:
        return _phase_peaks(self.live(batch, seq), self.phase)


def _phase_peaks(live: np.ndarray, phase: np.ndarray) -> PhasePeaks:
    rows = np.zeros((len(PHASES), len(CATEGORIES)))
    totals = live.sum(axis=1)
    for index in range(len(PHASES)):
        where = np.flatnonzero(phase == index)
        if len(where):
            rows[index] = live[where[np.argmax(totals[where])]]
    return PhasePeaks(np.maximum(rows, 0))


class StepProfile:
    """Phase peaks of one step of `choice` on the whole model of `key`, at any (b, s)."""

    def __init__(self, key: SkeletonKey, choice: MethodChoice, spec: StepSpec) -> None:
        self.key, self.choice, self.spec = key, choice, spec
        stacks = block_stacks(skeleton(key))
        self.variants: list[tuple[int, dict[str, int] | None]] = []
        if stacks:
            base = dict.fromkeys(stacks, BASE_DEPTH)
            self.variants.append((0, base))
            self.variants += [(depth - BASE_DEPTH, {**base, name: BASE_DEPTH + 1}) for name, depth in stacks.items()]
        else:
            self.variants.append((0, None))
        self.fitted: list[FittedTimeline] | None = self._fit()

    def _fit(self) -> list[FittedTimeline] | None:
        fitted = []
        for _, blocks in self.variants:
            model = TracedModel(self.key, self.choice, self.spec, blocks)
            timelines = {(b, s): model.trace(b, s) for b, s in DESIGN}
            if len({t.live.shape for t in timelines.values()}) != 1:
                return None  # the op sequence depends on the shape: trace each shape instead
            fitted.append(FittedTimeline(timelines))
        return fitted

    def _trace(self, batch: int, seq: int, blocks: dict[str, int] | None) -> Timeline:
        return trace_step(self.key, self.choice, self.spec, batch_size=batch, seq_len=seq, keep_blocks=blocks)

    def block_bytes(self) -> np.ndarray:
        """Bytes by category one block of the deepest stack holds between steps' compute (its weights, gradients
        and optimizer states: what ZeRO-3/FSDP gather or reduce-scatter per block)."""
        if len(self.variants) == 1:
            return np.zeros(len(CATEGORIES))
        clip = PHASES.index("clip")
        deepest = 1 + int(np.argmax([extra for extra, _ in self.variants[1:]]))
        shape = DESIGN[0]
        rows = [self._peaks_of(i, *shape)[clip] for i in (0, deepest)]
        return np.maximum(rows[1] - rows[0], 0)

    def _peaks_of(self, variant: int, batch: int, seq: int) -> np.ndarray:
        if self.fitted is not None:
            return self.fitted[variant].phase_peaks(batch, seq).bytes
        return _traced_peaks(self, batch, seq, variant)

    def phase_peaks(self, batch: int, seq: int) -> PhasePeaks:
        """Per-phase peaks of the full-depth model (see the module docstring)."""
        peaks = [self._peaks_of(i, batch, seq) for i in range(len(self.variants))]
        base = peaks[0]
        total = base.copy()
        for (extra, _), grown in zip(self.variants[1:], peaks[1:], strict=True):
            total += extra * (grown - base)
        return PhasePeaks(np.maximum(total, 0))


def _traced_peaks(profile: StepProfile, batch: int, seq: int, variant: int) -> np.ndarray:
    return _cached_trace(profile.key, profile.choice, profile.spec, (batch, seq), variant).bytes


@lru_cache(maxsize=256)
def _cached_trace(key: SkeletonKey, choice: MethodChoice, spec: StepSpec, shape: tuple[int, int],
                  variant: int) -> PhasePeaks:
    profile = step_profile(key, choice, spec)
    timeline = profile._trace(*shape, profile.variants[variant][1])
    return _phase_peaks(timeline.live.astype(np.float64), timeline.phase)


def saved_activations(key: SkeletonKey, choice: MethodChoice, spec: StepSpec, batch: int, seq: int) -> int:
    """Bytes the forward leaves for backward (the activations when backward starts) on the whole model, traced
    directly at this shape: what a real run's autograd saved, for the CPU harness and calibration probes."""
    timeline = trace_step(key, choice, spec, batch_size=batch, seq_len=seq, keep_blocks=None)
    first_backward = int(np.flatnonzero(timeline.phase == PHASES.index("backward"))[0])
    return int(timeline.live[first_backward, CATEGORIES.index("activations")])


@lru_cache(maxsize=256)
def step_profile(key: SkeletonKey, choice: MethodChoice, spec: StepSpec) -> StepProfile:
    """The cached profile of one (model, head, method, step setup)."""
    return StepProfile(key, choice, spec)
