"""A training step's every allocation and free at full depth and at any (batch, length), for the allocator model.

The caching allocator's reserved peak depends on the order and sizes of all allocations and frees, not on the
live bytes alone (`core.memory.allocator`), so the device peak needs the whole step's log at the model's real
depth and shape. Tracing that directly costs seconds to minutes per shape; it is built instead from the copies
the profile traces anyway (`core.memory.profile`), in two steps:

* Shape: the log's structure (which entry frees which) does not depend on (b, s) and each allocation's bytes
  are a polynomial in them (the basis of `core.memory.profile`), so the six design traces fit every entry
  exactly (`fit_log`).
* Depth: a copy one block deeper logs the same entries plus that block's (matched as the live-bytes timeline
  is, `core.memory.profile._match`, on each entry's size polynomial). The full log repeats the added block's
  runs once per block (`full_depth_log`). What one block hands to the next (its hidden state in the forward,
  the gradient of its input in the backward) is what the added block frees of the entries before it and what
  the entries after it free of the added block's: copies chain those hand-offs, in the order the runs execute
  (a backward run consumes its blocks in the reverse order of the forward run whose tensors it frees).

The result is checked where it can be: every free frees a live allocation once, and exactly the allocations the
copies leave alive stay alive. A step whose chains cannot be resolved (several kinds of blocks whose copies
differ by more than one block; a block freeing something every copy would free) has no log: the device
level then says that its reserved figure is not a replay.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from core.memory.profile import GrowthPlan, _basis, _match
from core.memory.replay import ReplayPeaks, replay
from core.memory.spec import PHASES

if TYPE_CHECKING:
    from core.memory.trace import Timeline

BACKWARD, OPTIMIZER = PHASES.index("backward"), PHASES.index("optimizer")
STEPS = 2  # the second step's allocations land among the first's cached blocks; a third reserves nothing more


class LogUnavailableError(ValueError):
    """The step's full-depth log cannot be built from its copies (see the module docstring)."""


@dataclass(frozen=True)
class AllocationLog:
    """A step's allocations and frees in order. `coef` (basis, entries): each allocation's bytes as a polynomial
    in (b, s), 0 at a free; `freed`: for a free, the index of the allocation it frees, -1 at an allocation;
    the first `kept` entries are allocations that exist before the step (weights, optimizer states)."""

    coef: np.ndarray
    freed: np.ndarray
    kept: int
    phase: np.ndarray  # per entry, its phase (an index into `PHASES`)
    op: np.ndarray  # per allocation of the step, the op that made it (`Timeline.ops`); 0 elsewhere

    def __post_init__(self) -> None:
        if (self.coef.ndim != 2 or not self.coef.shape[1] == len(self.freed) == len(self.phase) == len(self.op)
                or not 0 <= self.kept <= len(self.freed)):
            raise ValueError("an allocation log has one size polynomial, freed index and phase per entry")
        if (self.freed[:self.kept] >= 0).any():
            raise ValueError("the entries kept from before the step are allocations")

    def arrays(self) -> dict[str, np.ndarray]:
        """The log as named arrays (what the trace cache stores)."""
        return {"coef": self.coef, "freed": self.freed, "kept": np.array(self.kept), "phase": self.phase,
                "op": self.op}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> AllocationLog:
        return cls(arrays["coef"], arrays["freed"], int(arrays["kept"]), arrays["phase"], arrays["op"])

    def sizes(self, batch: int, seq: int) -> np.ndarray:
        """Each entry's bytes at (batch, seq) (0 at frees)."""
        return np.rint(np.array(_basis(batch, seq)) @ self.coef).astype(np.int64)

    def live_peak(self, batch: int, seq: int) -> int:
        """The most bytes live at once in one steady step (the states before it): the traced profile's allocated
        peak, if the log is the step's (`StepProfile` checks that before keeping a built log)."""
        sizes = self.sizes(batch, seq)
        change = np.where(self.freed < 0, sizes, -sizes[np.maximum(self.freed, 0)])
        return int(sizes[:self.kept].sum() + max(np.cumsum(change[self.kept:]).max(initial=0), 0))

    def signatures(self, *, op: bool = True) -> np.ndarray:
        """What identifies an entry across copies: an allocation's op and size polynomial, or the freed one's."""
        ops = self.op.tolist() if op else [0] * len(self.op)
        keys = [hash((code, *column)) for code, column in zip(ops, np.round(self.coef.T, 3).tolist(), strict=True)]
        return np.array([keys[i] if f < 0 else hash(("free", keys[f])) for i, f in enumerate(self.freed.tolist())])

    def peaks(self, batch: int, seq: int, *, paged: bool = False) -> ReplayPeaks:
        """The allocator's allocated and reserved peaks over a run's first `STEPS` steps at (batch, seq): the
        weights exist before the first; the optimizer makes its states at the start of the first step's
        optimizer phase (torch's optimizers make them lazily, a foreach optimizer all at once in `_init_group`),
        among the blocks the forward and backward left cached; a `paged` optimizer keeps them in unified memory,
        outside the allocator."""
        sizes = self.sizes(batch, seq)
        kept = np.arange(self.kept)
        is_state = self.phase[:self.kept] == OPTIMIZER
        states = kept[is_state][:0 if paged else None]
        step = np.arange(self.kept, len(self.freed))
        optimizer = np.flatnonzero(self.phase[step] == OPTIMIZER)
        start = int(optimizer[0]) if len(optimizer) else len(step)
        orders = [np.concatenate([step[:start], states, step[start:]]), *[step] * (STEPS - 1)]
        position = np.full(len(self.freed), -1, dtype=np.int64)
        replaced, successors = self._successors(sizes)
        events, offset = [], 0
        for order in orders:
            if offset:  # a later step frees what the step before made in place of a kept entry, not that entry
                position[replaced] = position[successors]
            position[order] = offset + np.arange(len(order))
            freed = self.freed[order]
            events.append(np.where(freed < 0, sizes[order], -1 - position[np.maximum(freed, 0)]))
            offset += len(order)
        log = np.concatenate(events)
        if (log == 0).any():
            raise ValueError(f"an allocation is empty at batch {batch} x {seq} tokens")
        return replay(log, preallocated=sizes[kept[~is_state]])

    def _successors(self, sizes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Kept entries the step frees (an optimizer that replaces its states each step, as Adafactor does, frees
        the old ones) and, for each, the allocation of the same size the step makes and keeps past its end (the
        new state), matched in order: the next step frees that one instead."""
        freed = self.freed[self.kept:]
        replaced = freed[(freed >= 0) & (freed < self.kept)]
        if not len(replaced):
            return replaced, replaced
        made = np.arange(self.kept, len(self.freed))[freed < 0]
        survivors = made[~np.isin(made, freed[freed >= 0])].tolist()
        successors = []
        for entry in replaced.tolist():
            match = next((i for i in survivors if sizes[i] == sizes[entry]), None)
            if match is None:
                raise LogUnavailableError("the step frees a kept entry without making one of its size to keep")
            survivors.remove(match)
            successors.append(match)
        return replaced, np.array(successors, dtype=np.int64)


def fit_log(logs: dict[tuple[int, int], Timeline]) -> AllocationLog:
    """The logs of the design shapes' timelines fitted into size polynomials (raises LogUnavailableError when the
    structures differ or a size is not a polynomial of the basis)."""
    shapes = list(logs)
    timeline = logs[shapes[0]]
    first, kept, phase = timeline.log, timeline.kept, timeline.log_phase
    freed = _canonical(np.where(first < 0, -1 - first, -1), phase)
    for other in logs.values():
        log = other.log
        if (other.kept != kept or len(log) != len(first)
                or not np.array_equal(_canonical(np.where(log < 0, -1 - log, -1), phase), freed)):
            raise LogUnavailableError("the step frees different allocations at different shapes")
    op = np.zeros(len(first), dtype=np.int64)
    made = np.flatnonzero(first > 0)
    made = made[made >= kept]
    ops = timeline.ops[timeline.sizes > 0]
    if len(ops) != len(made):
        raise LogUnavailableError("the step's log and timeline disagree")
    op[made] = ops
    design = np.array([_basis(b, s) for b, s in shapes], dtype=np.float64)
    values = np.stack([np.maximum(logs[p].log, 0) for p in shapes]).astype(np.float64)
    coef, *_ = np.linalg.lstsq(design, values, rcond=None)
    coef = np.round(coef, 6)
    if not np.array_equal(np.rint(design @ coef), values):
        raise LogUnavailableError("an allocation's size is not a polynomial in batch and length")
    return AllocationLog(coef, freed, kept, phase, op)


def _canonical(freed: np.ndarray, phase: np.ndarray) -> np.ndarray:
    """The frees of each burst (frees with no allocation between them) in the order of what they free: the
    allocator ends a burst in the same state whatever its order, and torch empties some caches in hash order
    (autocast's weight casts at the end of the forward), which no copy of another depth repeats. Backward bursts
    are sorted the other way round, as the backward meets the blocks."""
    out = freed.copy()
    for burst in _runs(np.flatnonzero(freed >= 0)):
        if len(burst) > 1:
            order = np.sort(freed[burst])
            out[burst] = order[::-1] if phase[burst[0]] == BACKWARD else order
    return out


def _runs(indices: np.ndarray) -> list[np.ndarray]:
    """Sorted indices split into runs of consecutive values."""
    return [run for run in np.split(indices, np.flatnonzero(np.diff(indices) > 1) + 1) if len(run)]


@dataclass
class _Growth:
    """The grown copy's log read against the base copy's: which allocations the added block makes (in runs of
    consecutive allocations), where each free happens (after which allocation) and which block-to-block hand-off
    each free of a base allocation by the added block is."""

    copies: int
    grown: AllocationLog
    run_of: np.ndarray  # per grown entry: the run of an added allocation, or of the allocation a free follows; -1
    orientation: list[int]  # per run, +1 when its copies execute in the blocks' forward order, -1 when reversed
    handoff: dict[int, int]  # a base allocation an added block frees -> the added allocation the next one frees
    chain_in_run: dict[int, bool]  # per handed-over allocation: whether its chain runs within one run

    def forward_index(self, run: int, emitted: int) -> int:
        """Which block (1..copies, forward order) the `emitted`-th copy of `run` is."""
        return emitted if self.orientation[run] > 0 else self.copies + 1 - emitted

    def emitted(self, run: int, forward: int) -> int:
        return forward if self.orientation[run] > 0 else self.copies + 1 - forward

    def last(self, handed: int) -> int:
        """The copy whose hand-over the entries after the block free (the end of the chain)."""
        run = int(self.run_of[handed])
        return self.copies if self.chain_in_run[handed] else self.emitted(run, self.copies)


def _grow(copies: int, base: AllocationLog, grown: AllocationLog) -> _Growth:
    allocations = np.flatnonzero(grown.freed < 0)
    signatures = grown.signatures()[allocations]
    base_signatures = base.signatures()[base.freed < 0]
    # the added block is the first one: its forward runs first, its backward last (unless that differs: below)
    matched = _realigned(_match(base_signatures, signatures, latest=grown.phase[allocations] == BACKWARD),
                         allocations, grown, signatures)
    run_of = np.full(len(grown.freed), -1, dtype=np.int64)
    for index, run in enumerate(_runs(np.flatnonzero(matched < 0))):
        run_of[allocations[run]] = index
    runs = int(run_of.max()) + 1
    previous = np.maximum.accumulate(np.where(grown.freed < 0, np.arange(len(grown.freed)), -1))
    frees = np.flatnonzero(grown.freed >= 0)
    # a free inside a run belongs to the run when what it frees is the block's (or a hand-over): see `_inside`
    run_of[frees] = np.where(previous[frees] >= 0, run_of[np.maximum(previous[frees], 0)], -1)
    growth = _Growth(copies, grown, run_of, [1] * runs, {}, {})
    signature_of = grown.signatures(op=False)  # a hand-over can be made by another op (embedding, add)
    free_of = np.full(len(grown.freed), -1, dtype=np.int64)
    free_of[grown.freed[frees]] = frees
    for entry in frees.tolist():
        run, target = int(run_of[entry]), int(grown.freed[entry])
        if run < 0 or run_of[target] >= 0 or target in growth.handoff:
            continue
        # the added block frees a base allocation: the next block frees the same allocation of the block before
        # it, the one the entries after the block free (an allocation of the block freed outside this run)
        # (made in the same phase as it, and freed in the phase it is freed in)
        later = [x for x in np.flatnonzero((signature_of == signature_of[target]) & (run_of >= 0)
                                           & (grown.freed < 0) & (free_of >= 0)
                                           & (grown.phase == grown.phase[target])).tolist()
                 if run_of[free_of[x]] != run and x not in growth.chain_in_run and (x < entry or run_of[x] == run)
                 and grown.phase[free_of[x]] == grown.phase[entry]]
        if later:
            growth.handoff[target] = later[0]
            growth.chain_in_run[later[0]] = int(run_of[later[0]]) == run
    for entry in frees.tolist():  # what ran first is freed last: a run freeing another run's is reversed
        run, target = int(run_of[entry]), int(grown.freed[entry])
        source = int(run_of[growth.handoff.get(target, target)])
        if run >= 0 and source >= 0 and source < run and growth.orientation[run] == 1:
            growth.orientation[run] = -growth.orientation[source]
    return growth


def _realigned(matched: np.ndarray, allocations: np.ndarray, grown: AllocationLog,
               signatures: np.ndarray) -> np.ndarray:
    """`matched` with each run of added allocations moved, by whole blocks, onto the block whose allocations a
    later added run frees: the first block's backward can differ from the others' (no gradient for an input
    that needs none), so the backward's added block is then a later one, and the forward's must be the same
    block for each to free its own activations."""
    matched = matched.copy()
    index_of = np.full(len(grown.freed), -1, dtype=np.int64)
    index_of[allocations] = np.arange(len(allocations))
    previous = np.maximum.accumulate(np.where(grown.freed < 0, np.arange(len(grown.freed)), -1))
    runs = _runs(np.flatnonzero(matched < 0))
    for later in runs:
        made = set(allocations[later].tolist())
        frees = [e for e in np.flatnonzero(grown.freed >= 0).tolist() if previous[e] in made]
        phase = grown.phase[allocations[later[0]]]
        targets = [int(index_of[grown.freed[e]]) for e in frees
                   if grown.phase[grown.freed[e]] != phase and matched[index_of[grown.freed[e]]] >= 0]
        for run in runs:
            length, start = len(run), int(run[0])
            same = [t for t in targets if t >= start and grown.phase[allocations[t]] == grown.phase[allocations[start]]]
            if run is later or not same or start + length > later[0]:
                continue
            # the fewest entries to move the run by so that it holds them (what precedes it is a hand-over)
            shift = max(same) - (start + length - 1)
            if (shift > 0 and min(same) >= start + shift
                    and np.array_equal(signatures[start:start + shift], signatures[start + length:
                                                                                   start + length + shift])):
                matched[start:start + shift] = matched[start + length:start + length + shift]
                matched[start + shift:start + shift + length] = -1
    return matched


def full_depth_log(plan: GrowthPlan, copies: list[AllocationLog]) -> AllocationLog:
    """The full-depth step's log from the copies' logs (see the module docstring)."""
    base = copies[0]
    if not plan.steps:
        return base
    if len(plan.steps) > 1:
        raise LogUnavailableError("blocks of several kinds")
    count, grown_index, _ = plan.steps[0]
    growth = _grow(count, base, copies[grown_index])
    grown, run_of = growth.grown, growth.run_of
    out_coef: list[np.ndarray] = []
    out_freed: list[int] = []
    out_phase: list[int] = []
    out_op: list[int] = []
    at: dict[tuple[int, int], int] = {}  # (grown entry, copy; 0 for a base entry) -> output index

    def emit(entry: int, freed: int) -> int:
        out_coef.append(grown.coef[:, entry])
        out_freed.append(freed)
        out_phase.append(int(grown.phase[entry]))
        out_op.append(int(grown.op[entry]))
        return len(out_freed) - 1

    def instance(target: int, run: int, emitted: int) -> int:
        """The output allocation a free of `target` in the `emitted`-th copy of `run` frees."""
        source = int(run_of[target])
        if source >= 0:  # the block's own allocation, in the copy that made it
            copy = emitted if source == run else growth.emitted(source, growth.forward_index(run, emitted))
            return at[(target, copy)]
        handed = growth.handoff.get(target)
        if handed is None:
            return at[(target, 0)]
        source = int(run_of[handed])
        if growth.chain_in_run[handed]:  # each copy frees what the copy before it made
            return at[(target, 0)] if emitted == 1 else at[(handed, emitted - 1)]
        forward = growth.forward_index(run, emitted)  # across runs: block j frees what block j-1 made
        return at[(target, 0)] if forward == 1 else at[(handed, growth.emitted(source, forward - 1))]

    entries = len(grown.freed)
    entry = 0
    while entry < entries:
        run = int(run_of[entry])
        if run < 0 or (grown.freed[entry] >= 0 and not _inside(growth, entry)):
            _emit_free(growth, entry, emit, at)
            entry += 1
            continue
        last = max(i for i in range(entry, entries) if run_of[i] == run and grown.freed[i] < 0)
        end = last + 1
        while end < entries and grown.freed[end] >= 0:  # the frees before the next allocation
            end += 1
        span = range(entry, end)
        # the base's entries among the block's happen once: with the first copy, where they fall in it (what the
        # blocks before made is let go as the next block runs), except frees of the blocks' own allocations,
        # after the last copy
        base_entries = {i for i in span if run_of[i] != run or (grown.freed[i] >= 0 and not _inside(growth, i))}
        late = {i for i in base_entries if grown.freed[i] >= 0 and run_of[grown.freed[i]] >= 0}
        for copy in range(1, count + 1):
            for inner in span:
                target = int(grown.freed[inner])
                if inner in base_entries:
                    if copy == 1 and inner not in late:
                        _emit_free(growth, inner, emit, at)
                elif target < 0:
                    at[(inner, copy)] = emit(inner, -1)
                else:
                    emit(inner, instance(target, run, copy))
        for inner in sorted(late):
            _emit_free(growth, inner, emit, at)
        entry = end
    kept = base.kept + count * int((run_of[:grown.kept] >= 0).sum())
    log = AllocationLog(np.stack(out_coef, axis=1), np.array(out_freed, dtype=np.int64), kept,
                        np.array(out_phase, dtype=np.int8), np.array(out_op, dtype=np.int64))
    _check(log, base, grown, count)
    return log


def _inside(growth: _Growth, entry: int) -> bool:
    """Whether a free that follows an added allocation belongs to each copy of its block: it frees one of the
    blocks' allocations (not the end of a chain) or a hand-over (else it is the base's, done once after the
    copies)."""
    target = int(growth.grown.freed[entry])
    return (bool(growth.run_of[target] >= 0) and target not in growth.chain_in_run) or target in growth.handoff


def _emit_free(growth: _Growth, entry: int, emit: Callable[[int, int], int], at: dict[tuple[int, int], int]) -> None:
    """A base entry: an allocation, or a free of a base allocation, of the end of a chain (the last copy's
    hand-over) or of what every block made (a cache emptied at once: one free per copy)."""
    target = int(growth.grown.freed[entry])
    if target < 0:
        at[(entry, 0)] = emit(entry, -1)
    elif growth.run_of[target] < 0:
        emit(entry, at[(target, 0)])
    elif target in growth.chain_in_run:
        emit(entry, at[(target, growth.last(target))])
    else:
        for copy in range(1, growth.copies + 1):
            emit(entry, at[(target, copy)])


def _check(log: AllocationLog, base: AllocationLog, grown: AllocationLog, copies: int) -> None:
    """Every free frees an earlier live allocation once; the allocations left alive are the copies' (kept
    entries first: a block's weights before the step)."""
    if (log.freed[:log.kept] >= 0).any():
        raise LogUnavailableError("a block's weights interleave with the step's entries")
    freed = log.freed[log.freed >= 0]
    if len(np.unique(freed)) != len(freed) or (log.freed[freed] >= 0).any():
        raise LogUnavailableError("the built log frees an allocation twice or frees a free")
    if (freed >= np.flatnonzero(log.freed >= 0)).any():
        raise LogUnavailableError("the built log frees an allocation before making it")

    def alive(one: AllocationLog) -> int:
        return int((one.freed < 0).sum()) - int((one.freed >= 0).sum())

    if alive(log) != alive(base) + copies * (alive(grown) - alive(base)):
        raise LogUnavailableError("the built log leaves other allocations alive than its copies do")
