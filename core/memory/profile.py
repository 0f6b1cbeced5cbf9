"""The memory profile of a training step: traced a few times, then evaluated at any batch and sequence length.

Two facts make tracing a handful of small steps exact for the whole model at any shape:

* Blocks of one kind are identical, so copies that keep a prefix of each block stack and one block more differ
  by that block's exact contribution; each phase's peak (with its breakdown) is extrapolated linearly to the
  full depth (see `StepProfile`).
* The op sequence of a step does not depend on batch or length, and every tensor's size is a polynomial in
  them: batch enters linearly, length at most quadratically (s x s attention scores, masks, position biases).
  So the live bytes after each allocation are a polynomial in (b, s) in the basis 1, s, s^2, b, b·s, b·s^2;
  tracing at the six (b, s) points of `DESIGN` fits it exactly. If the op sequences of the traced shapes
  differ, the profile says so and each shape is traced.

A sequence as long as a sliding-window model's window or longer takes another attention path: transformers
skips the mask only while the keys are fewer than the window (masking_utils `_ignore_causal_mask_sdpa`) and
otherwise builds an explicit window mask, and SDPA with a mask repeats the key/value heads. A fit at lengths
under the window never sees that path, so such a length is answered by a profile traced with the window shrunk
below the design lengths (`windowed`); the window's own size changes no tensor's size on that path.

MoE layers run transformers' `grouped_mm` experts path, whose shapes are static: every token goes to its top-k
experts (k x tokens rows), so the bytes do not depend on how the router balances them.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, replace
from difflib import SequenceMatcher
from functools import cached_property, lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np

from core.memory import cache
from core.memory.spec import CATEGORIES, PHASES
from core.registry import MethodChoice

if TYPE_CHECKING:  # the trace's modules import torch: only a cache miss (a trace) imports them
    from core.memory.spec import StepSpec
    from core.memory.steplog import AllocationLog
    from core.memory.trace import Timeline
    from core.skeleton import BlockStack
    from core.skeleton_key import SkeletonKey

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

    def __init__(self, coef: np.ndarray, phase: np.ndarray) -> None:
        if coef.ndim != 3 or coef.shape[1] != len(phase) or coef.shape[2] != len(CATEGORIES):
            raise ValueError("coefficients are (basis, events, categories), one phase per event")
        self.coef, self.phase = coef, phase
        self.by_phase = _phase_indices(phase)

    @classmethod
    def peaks_of(cls, coef: np.ndarray, phase: np.ndarray) -> FittedTimeline:
        """Only the events of fitted coefficients (basis, events, categories) that can be a phase's peak."""
        keep = _undominated(coef.sum(axis=2), phase)
        return cls(coef[:, keep, :], phase[keep])

    def live(self, batch: int, seq: int) -> np.ndarray:
        weights = np.array(_basis(batch, seq))
        return np.tensordot(weights, self.coef, axes=1)

    def phase_peaks(self, batch: int, seq: int) -> PhasePeaks:
        return _phase_peaks(self.live(batch, seq), self.by_phase)


def _undominated(totals: np.ndarray, phase: np.ndarray) -> np.ndarray:
    """Indices of the events that can be their phase's peak for some b, s >= 0. Every basis term is non-negative
    there, so an event whose total coefficients are all at most another event's of the same phase never exceeds
    it: only the others are kept (ties keep the first), which leaves a handful per phase."""
    kept: list[int] = []
    for index in range(len(PHASES)):
        events = np.flatnonzero(phase == index)
        block = totals[:, events].T  # (events, basis)
        for position, event in enumerate(events):
            at_least = np.all(block >= block[position] - 1e-6, axis=1)
            equal = np.all(np.abs(block - block[position]) <= 1e-6, axis=1)
            beaten = (at_least & ~equal) | (equal & (np.arange(len(events)) < position))
            if not beaten.any():
                kept.append(int(event))
    return np.array(sorted(kept), dtype=np.int64)


def _phase_indices(phase: np.ndarray) -> list[np.ndarray]:
    """The events of each phase, in `PHASES` order (computed once per timeline: re-estimates reuse them)."""
    return [np.flatnonzero(phase == index) for index in range(len(PHASES))]


def timeline_peaks(timeline: Timeline) -> PhasePeaks:
    """Each phase's peak of one traced timeline, with its breakdown at that instant."""
    return _phase_peaks(timeline.live.astype(np.float64), _phase_indices(timeline.phase))


def _phase_peaks(live: np.ndarray, by_phase: list[np.ndarray]) -> PhasePeaks:
    rows = np.zeros((len(PHASES), len(CATEGORIES)))
    totals = live.sum(axis=1)
    for index, where in enumerate(by_phase):
        if len(where):
            rows[index] = live[where[np.argmax(totals[where])]]
    return PhasePeaks(np.maximum(rows, 0))


class StepProfile:
    """Phase peaks of one step of `choice` on the whole model of `key`, at any (b, s).

    The copies traced follow the skeleton's stack plan (`core.skeleton.stack_plans`, as the counts do): a base
    prefix of each stack holding every kind of block, and for each kind one step of one more block, scaled by
    how many blocks of that kind lie beyond. Partial fine-tuning trains the top K blocks, so its copies keep
    K + 1 blocks of the output-side stack and grow it by one frozen block.

    The full-depth timeline is built event by event (`full_depth`), not from each copy's own peak: a copy's peak
    can sit at another instant than its neighbour's (the start of backward, all activations held, against its
    end, all gradients held), and a weighted sum of peaks taken at different instants is no instant at all.
    """

    def __init__(self, key: SkeletonKey, choice: MethodChoice, spec: StepSpec) -> None:
        self.key, self.choice, self.spec = key, choice, spec
        # (weight, blocks kept): the total is the sum of weight x peaks over the variants
        name = cache.entry_key(key, choice, spec)
        cached = cache.load(name)
        if cached is None:
            with cache.claim(name):
                cached = cache.load(name)  # traced by another process while this one waited
                if cached is None:
                    self.variants, self.fitted, self.full, self.log = self._fit()
                    fits = None if self.fitted is None else [(f.coef, f.phase) for f in self.fitted]
                    full = None if self.full is None else (self.full.coef, self.full.phase)
                    cache.store(name, (self.variants, fits, full, None if self.log is None else self.log.arrays()))
                    return
        from core.memory.steplog import AllocationLog

        self.variants = cached[0]
        self.fitted = None if cached[1] is None else [FittedTimeline(c, p) for c, p in cached[1]]
        self.full = None if cached[2] is None else FittedTimeline(*cached[2])
        self.log = None if cached[3] is None else AllocationLog.from_arrays(cached[3])

    def _fit(self) -> tuple[list[tuple[int, dict[str, int] | None]], list[FittedTimeline] | None,
                            FittedTimeline | None, AllocationLog | None]:
        from core.memory.step import TracedModel
        from core.memory.steplog import LogUnavailableError, fit_log, full_depth_log
        from core.skeleton import skeleton_stacks

        plan = growth_plan(skeleton_stacks(self.key), self.choice)
        variants = plan.variants
        fitted, aligned, logs = [], [], []
        for _, blocks in variants:
            model = TracedModel(self.key, self.choice, self.spec, blocks)
            timelines = {(b, s): model.trace(b, s) for b, s in DESIGN}
            if len({t.ops.tobytes() for t in timelines.values()}) != 1:
                return variants, None, None, None  # the op sequence depends on the shape: trace each shape instead
            aligned.append(_coefficients(timelines))
            fitted.append(FittedTimeline.peaks_of(aligned[-1].coef, aligned[-1].phase))
            with contextlib.suppress(LogUnavailableError):  # a step whose log cannot be fitted has none
                logs.append(fit_log(timelines))
        full = FittedTimeline.peaks_of(*full_depth(plan, aligned))
        try:
            log = full_depth_log(plan, logs) if len(logs) == len(variants) else None
        except LogUnavailableError:
            log = None
        # a built log must hold the step's own live bytes (a hand-over it misread would not): checked at real shapes
        if log is not None and not all(_same_peak(log.live_peak(*shape), full.phase_peaks(*shape))
                                       for shape in LOG_CHECKS):
            log = None
        return variants, fitted, full, log

    def _trace(self, batch: int, seq: int, blocks: dict[str, int] | None) -> Timeline:
        from core.memory.step import trace_step

        return trace_step(self.key, self.choice, self.spec, batch_size=batch, seq_len=seq, keep_blocks=blocks)

    @cached_property
    def block_bytes(self) -> np.ndarray:
        """Bytes by category one block of the deepest stack holds between steps' compute (its weights, gradients
        and optimizer states: what ZeRO-3/FSDP gather or reduce-scatter per block): the copy with the most
        extrapolated blocks minus the copy one block shorter (computed once: it does not depend on the shape)."""
        grown = [(weight, i) for i, (weight, blocks) in enumerate(self.variants[1:], start=1) if weight > 0 and blocks]
        if not grown:
            return np.zeros(len(CATEGORIES))
        high = max(grown)[1]
        blocks = self.variants[high][1]
        assert blocks is not None
        index = {_blocks_id(b): i for i, (_, b) in enumerate(self.variants)}
        lower = next(index[_blocks_id({**blocks, name: count - 1})] for name, count in blocks.items()
                     if _blocks_id({**blocks, name: count - 1}) in index)
        clip = PHASES.index("clip")
        shape = DESIGN[0]
        return np.maximum(self._peaks_of(high, *shape)[clip] - self._peaks_of(lower, *shape)[clip], 0)

    def _peaks_of(self, variant: int, batch: int, seq: int) -> np.ndarray:
        if self.fitted is not None:
            return self.fitted[variant].phase_peaks(batch, seq).bytes
        return _traced_peaks(self, batch, seq, variant)

    def _beyond_window(self, seq: int) -> StepProfile | None:
        """The profile traced with the window shrunk, for a length at or beyond the model's sliding window (see
        the module docstring); None for a length under it."""
        window = sliding_window(self.key.model.config_dict)
        if window is not None and window > WINDOW_STAND_IN and seq >= window:
            return step_profile(windowed(self.key), self.choice, self.spec)
        return None

    def allocation_log(self, seq: int) -> AllocationLog | None:
        """The full-depth step's allocation log for sequences of length `seq` (`core.memory.steplog`; None
        where the step has none)."""
        if (other := self._beyond_window(seq)) is not None:
            return other.allocation_log(seq)
        return self.log if self.full is not None else None

    def phase_peaks(self, batch: int, seq: int) -> PhasePeaks:
        """Per-phase peaks of the full-depth model (see the module docstring)."""
        if (other := self._beyond_window(seq)) is not None:
            return other.phase_peaks(batch, seq)
        if self.full is not None:
            return self.full.phase_peaks(batch, seq)
        return _traced_full_peaks(self.key, self.choice, self.spec, (batch, seq))


# the shapes at which a built allocation log must reproduce the profile's allocated peak (`StepProfile._fit`)
LOG_CHECKS = ((2, 512), (1, 2048))


def _same_peak(live_peak: int, peaks: PhasePeaks) -> bool:
    """Whether a log's live peak is the profile's allocated peak (to 0.01%: the fit rounds)."""
    return abs(live_peak - peaks.bytes.sum(axis=1).max()) <= 1e-4 * live_peak
# the window a profile of lengths beyond a model's sliding window is traced with: under every design length
WINDOW_STAND_IN = SEQ_POINTS[0] // 2


def sliding_window(config: dict[str, Any]) -> int | None:
    """The sliding window of a config or its text part (None when it has none or turns it off, as Qwen2's
    `use_sliding_window: false` does)."""
    for section in (config, config.get("text_config")):
        if isinstance(section, dict) and section.get("use_sliding_window") is not False:
            window = section.get("sliding_window")
            if isinstance(window, int) and window > 0:
                return window
    return None


def windowed(key: SkeletonKey) -> SkeletonKey:
    """The model of `key` with its sliding window shrunk to `WINDOW_STAND_IN` (see the module docstring)."""
    config = json.loads(key.model.config_json)
    for section in (config, config.get("text_config")):
        if isinstance(section, dict) and isinstance(section.get("sliding_window"), int):
            section["sliding_window"] = WINDOW_STAND_IN
    model = replace(key.model, config_json=json.dumps(config, sort_keys=True))
    return replace(key, model=model)


@dataclass(frozen=True)
class GrowthPlan:
    """The copies traced (`variants`: weight and blocks kept, one entry per distinct copy) and how they combine:
    the full model is the base copy plus, for each step `(copies, grown, shorter)` (indices into `variants`),
    `copies` times what one block more adds (`grown` minus `shorter`)."""

    variants: list[tuple[int, dict[str, int] | None]]
    steps: tuple[tuple[int, int, int], ...]


MIN_BASE = 2  # a 1-block copy takes other paths (prefix tuning's per-layer cache) than deeper ones


def growth_plan(stacks: tuple[BlockStack, ...], choice: MethodChoice) -> GrowthPlan:
    """The copies to trace: base + sum over kinds of copies x (one block more - that prefix)."""
    if not stacks:
        return GrowthPlan([(1, None)], ())
    base = {stack.name: max(stack.base, MIN_BASE) for stack in stacks}
    if choice.spec.top_blocks_only and choice.top_layers is not None:
        base[stacks[-1].name] = max(base[stacks[-1].name], choice.top_layers + 1)
    if any(base[stack.name] >= stack.depth for stack in stacks):
        return GrowthPlan([(1, None)], ())
    variants: list[tuple[int, dict[str, int] | None]] = [(1, base)]
    pairs: list[tuple[int, dict[str, int], dict[str, int]]] = []
    for stack in stacks:
        beyond = stack.kinds[base[stack.name]:]
        for kind in dict.fromkeys(beyond):
            index = base[stack.name] + beyond.index(kind)
            copies = beyond.count(kind)
            grown, shorter = {**base, stack.name: index + 1}, {**base, stack.name: index}
            variants += [(copies, grown), (-copies, shorter)]
            pairs.append((copies, grown, shorter))
    merged = _merged(variants)
    position = {_blocks_id(blocks): i for i, (_, blocks) in enumerate(merged)}
    steps = tuple((copies, position[_blocks_id(grown)], position[_blocks_id(shorter)])
                  for copies, grown, shorter in pairs)
    return GrowthPlan(merged, steps)


@dataclass(frozen=True)
class AlignedTimeline:
    """One copy's events as fitted coefficients (basis, events, categories), with each event's phase and its
    signature (op, phase and size at one traced shape) for matching events across copies."""

    coef: np.ndarray
    phase: np.ndarray
    ops: np.ndarray


def _signatures(timeline: Timeline) -> np.ndarray:
    return np.array([hash(pair) for pair in zip(timeline.ops.tolist(), timeline.sizes.tolist(), strict=True)])


def _coefficients(timelines: dict[tuple[int, int], Timeline]) -> AlignedTimeline:
    """Every event's live bytes fitted in (b, s) (the timelines share one op sequence)."""
    points = list(timelines)
    first = timelines[points[0]]
    design = np.array([_basis(b, s) for b, s in points])
    values = np.stack([timelines[p].live.reshape(-1) for p in points]).astype(np.float64)
    coef, *_ = np.linalg.lstsq(design, values, rcond=None)
    return AlignedTimeline(np.round(coef.reshape(len(design[0]), *first.live.shape), 6), first.phase,
                           _signatures(first))


def _as_aligned(timeline: Timeline) -> AlignedTimeline:
    """A timeline traced at one shape, as coefficients of a one-term basis."""
    return AlignedTimeline(timeline.live[np.newaxis].astype(np.float64), timeline.phase, _signatures(timeline))


def _match(shorter: np.ndarray, longer: np.ndarray, latest: np.ndarray | None = None) -> np.ndarray:
    """For each event of `longer`, the index of the same event in `shorter` (-1 for the events of the block the
    longer copy adds): the longest common subsequence of the events' signatures (op, phase, size), as difflib
    finds it, with each run of added events moved as early as the same signatures allow (as late, for the runs
    that start at an event `latest` marks: the backward runs its blocks in reverse, so the block added first in
    the forward is the last one there). Where identical events repeat (a foreach optimizer op's outputs, one per
    parameter, the added block's among them), the shorter copy's last one then matches the longer copy's last
    one: the instant the run's outputs all live, the optimizer step's peak. Blocks being identical, which of two
    equal runs counts as added changes nothing else."""
    matched = np.full(len(longer), -1, dtype=np.int64)
    for a, b, size in SequenceMatcher(None, shorter.tolist(), longer.tolist(), autojunk=False).get_matching_blocks():
        matched[b:b + size] = np.arange(a, a + size)
    end = len(longer)
    while end > 0:
        if matched[end - 1] >= 0:
            end -= 1
            continue
        start = end
        while start > 0 and matched[start - 1] < 0:
            start -= 1
        if latest is not None and latest[start]:
            run_start, run_end = start, end
            while run_end < len(longer) and matched[run_end] >= 0 and longer[run_start] == longer[run_end]:
                matched[run_start], matched[run_end] = matched[run_end], -1  # slide the added run one event later
                run_start, run_end = run_start + 1, run_end + 1
        else:
            while start > 0 and longer[start - 1] == longer[end - 1]:  # slide the added run one event earlier
                matched[end - 1], matched[start - 1] = matched[start - 1], -1
                start, end = start - 1, end - 1
        end = start
    return matched


def _inverse(matched: np.ndarray, size: int) -> np.ndarray:
    """For each event of the shorter copy, its index in the longer one (-1 where it has none)."""
    out = np.full(size, -1, dtype=np.int64)
    found = matched >= 0
    out[matched[found]] = np.flatnonzero(found)
    return out


def _filled(index: np.ndarray) -> np.ndarray:
    """-1 entries replaced by the last valid index before them (the first valid one at the start)."""
    valid = index >= 0
    if not valid.any():
        raise ValueError("copies of different depths share no event: their timelines cannot be aligned")
    positions = np.maximum.accumulate(np.where(valid, np.arange(len(index)), -1))
    positions[positions < 0] = np.flatnonzero(valid)[0]
    return index[positions]


def full_depth(plan: GrowthPlan, copies: list[AlignedTimeline]) -> tuple[np.ndarray, np.ndarray]:
    """Every event of the full-depth step that can be a peak, as (coefficients, phases).

    A block adds the same bytes at the same point of the step whatever the depth, so the full model at an event
    of the base copy holds the base's bytes plus, per step of the plan, `copies` times what one block more holds
    at that same event (the grown copy minus the shorter one, matched event by event). At an event inside the
    added block itself (its forward or backward), the other `copies - 1` blocks of its kind are either all still
    ahead or all done, the two extremes of a sum linear in how many are done: both are candidates."""
    base = copies[0]
    if not plan.steps:
        return base.coef, base.phase
    n_base = base.coef.shape[1]
    # per step: the grown and shorter events matching each base event, and what one block more adds there
    added, step_maps = [], []
    for _, grown_index, shorter_index in plan.steps:
        grown, shorter = copies[grown_index], copies[shorter_index]
        in_shorter = np.arange(n_base) if shorter_index == 0 else _filled(_inverse(_match(base.ops, shorter.ops),
                                                                                   n_base))
        grown_from_shorter = _match(shorter.ops, grown.ops)
        in_grown = _filled(_inverse(grown_from_shorter, len(shorter.ops)))[in_shorter]
        added.append(grown.coef[:, in_grown, :] - shorter.coef[:, in_shorter, :])
        step_maps.append((grown_from_shorter, in_shorter))
    weights = np.array([copies_ for copies_, _, _ in plan.steps], dtype=np.float64)
    at_base = base.coef + np.tensordot(weights, np.stack(added), axes=1)
    coefs, phases = [at_base], [base.phase]
    for step, (_, grown_index, shorter_index) in enumerate(plan.steps):
        grown, shorter = copies[grown_index], copies[shorter_index]
        grown_from_shorter, in_shorter = step_maps[step]
        new = np.flatnonzero(grown_from_shorter < 0)
        if not len(new):
            continue
        # the shorter copy's event just before each new event, and the base events around it
        before_short = _filled(np.where(grown_from_shorter >= 0, grown_from_shorter, -1))[new]
        before = np.searchsorted(in_shorter, before_short, side="right") - 1
        # the base before the new event, plus what the added block holds at it
        inside = base.coef[:, before.clip(0), :] + grown.coef[:, new, :] - shorter.coef[:, before_short, :]
        for anchor in (np.maximum(before, 0), np.minimum(before + 1, n_base - 1)):
            # the other kinds' blocks, and this kind's other copies - 1 blocks, as they stand around the event
            others = at_base[:, anchor, :] - base.coef[:, anchor, :] - added[step][:, anchor, :]
            coefs.append(inside + others)
            phases.append(grown.phase[new])
    return np.concatenate(coefs, axis=1), np.concatenate(phases)


def _blocks_id(blocks: dict[str, int] | None) -> tuple[tuple[str, int], ...]:
    return tuple(sorted((blocks or {}).items()))


def _merged(variants: list[tuple[int, dict[str, int] | None]]) -> list[tuple[int, dict[str, int] | None]]:
    """One entry per distinct copy, weights summed: the one-block-shorter copy of a kind is often the base
    itself, and each copy is traced once."""
    weights: dict[tuple[tuple[str, int], ...], int] = {}
    copies: dict[tuple[tuple[str, int], ...], dict[str, int] | None] = {}
    for weight, blocks in variants:
        ident = _blocks_id(blocks)
        weights[ident] = weights.get(ident, 0) + weight
        copies.setdefault(ident, blocks)
    return [(weights[i], copies[i]) for i in weights]


def _traced_peaks(profile: StepProfile, batch: int, seq: int, variant: int) -> np.ndarray:
    return _cached_trace(profile.key, profile.choice, profile.spec, (batch, seq), variant).bytes


@lru_cache(maxsize=256)
def _traced_full_peaks(key: SkeletonKey, choice: MethodChoice, spec: StepSpec, shape: tuple[int, int]) -> PhasePeaks:
    """The full-depth peaks from copies traced at this shape (a step whose op sequence depends on the shape)."""
    from core.skeleton import skeleton_stacks

    profile = step_profile(key, choice, spec)
    plan = growth_plan(skeleton_stacks(key), choice)
    copies = [_as_aligned(profile._trace(*shape, blocks)) for _, blocks in plan.variants]
    coef, phase = full_depth(plan, copies)
    return _phase_peaks(coef[0], _phase_indices(phase))


@lru_cache(maxsize=256)
def _cached_trace(key: SkeletonKey, choice: MethodChoice, spec: StepSpec, shape: tuple[int, int],
                  variant: int) -> PhasePeaks:
    profile = step_profile(key, choice, spec)
    timeline = profile._trace(*shape, profile.variants[variant][1])
    return timeline_peaks(timeline)


def saved_activations(key: SkeletonKey, choice: MethodChoice, spec: StepSpec, batch: int, seq: int) -> int:
    """Bytes the forward leaves for backward (the activations when backward starts) on the whole model, traced
    directly at this shape: what a real run's autograd saved, for the CPU harness and calibration probes."""
    from core.memory.step import trace_step

    timeline = trace_step(key, choice, spec, batch_size=batch, seq_len=seq, keep_blocks=None)
    first_backward = int(np.flatnonzero(timeline.phase == PHASES.index("backward"))[0])
    return int(timeline.live[first_backward, CATEGORIES.index("activations")])


@lru_cache(maxsize=256)
def step_profile(key: SkeletonKey, choice: MethodChoice, spec: StepSpec) -> StepProfile:
    """The cached profile of one (model, head, method, step setup)."""
    return StepProfile(key, choice, spec)
