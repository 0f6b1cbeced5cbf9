"""Trace one training step on fake tensors and record every allocation and free, in order.

Why our own `TorchDispatchMode` and not `torch.distributed._tools.mem_tracker.MemTracker`: MemTracker registers a
gradient hook on every parameter of each module it enters, which fails on frozen (peft) parameters, and it keeps
per-module peaks, not the timeline. We need the timeline: the peak of a step is the maximum over it, the breakdown
shown is the one at that instant, and the timelines of a few traced shapes are fitted into polynomials
(`core.memory.profile`). The tracker sees the output storages of every aten op (fake tensors carry real sizes
and no data) and a weak reference tells it when each storage dies.

Categories (what the storage is at the instant of a snapshot): weights (parameters and buffers, at their real,
possibly quantized, size), gradients (a parameter's `.grad`), optimizer (optimizer state), activations (made in
the forward and still alive: what autograd saved, the logits and the loss) and temporaries (everything else:
backward intermediates, foreach/optimizer scratch, dequantisation buffers).
"""

from __future__ import annotations

import weakref
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cache

import numpy as np
import torch
from torch._subclasses.fake_tensor import FakeTensor
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from core.memory.spec import ACTIVATIONS, CATEGORIES, GRADIENTS, OPTIMIZER, PHASES, TEMPORARIES, WEIGHTS

__all__ = ["ACTIVATIONS", "CATEGORIES", "GRADIENTS", "OPTIMIZER", "PHASES", "TEMPORARIES", "WEIGHTS",
           "AllocationTracker", "Timeline"]


@dataclass(frozen=True)
class Timeline:
    """Live bytes per category after every allocation of the traced step; `phase` indexes `PHASES`; `ops` names
    what made each event (the aten op and phase, or a phase mark) and `sizes` its bytes, so that the events of
    copies of different depths can be aligned (`core.memory.profile`)."""

    live: np.ndarray  # shape (events, categories), int64
    phase: np.ndarray  # shape (events,), int8
    ops: np.ndarray  # shape (events,), int64
    sizes: np.ndarray  # shape (events,), int64
    # every allocation and free in order (`AllocationTracker.log`); its first `kept` entries are the storages that
    # existed before the step (weights, optimizer states)
    log: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    kept: int = 0
    log_phase: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int8))  # the phase of each entry

    def __post_init__(self) -> None:
        if (self.live.ndim != 2 or self.live.shape[1] != len(CATEGORIES)
                or not len(self.phase) == len(self.ops) == len(self.sizes) == len(self.live)):
            raise ValueError("a timeline has one row of category bytes, one phase, op and size per event")
        if not 0 <= self.kept <= len(self.log) or len(self.log_phase) != len(self.log):
            raise ValueError("a timeline keeps at most the entries its log has, and each has a phase")


class AllocationTracker(TorchDispatchMode):
    """Records live bytes per category after each new storage (frees are applied as they happen)."""

    def __init__(self, size_of: Callable[[torch.UntypedStorage], int] | None = None) -> None:
        super().__init__()
        self._size_of = size_of or (lambda storage: storage.nbytes())
        self._category: dict[int, int] = {}
        self._bytes: dict[int, int] = {}
        self._refs: dict[int, weakref.ref] = {}
        self.totals = np.zeros(len(CATEGORIES), dtype=np.int64)
        self.phase = 0
        self._rows: list[np.ndarray] = []
        self._phases: list[int] = []
        self._ops: list[int] = []
        self._sizes: list[int] = []
        # every allocation (its bytes) and free (-1 - the allocation's index), in order, for the allocator model
        # (`core.memory.replay.replay`); storages adopted before the step come first
        self.log: list[int] = []
        self.kept = 0  # entries of `log` made before the step (set on entering the mode)
        self.log_phase: list[int] = []
        self._logged: dict[int, int] = {}
        self._op = 0  # the op whose outputs are being tracked
        self.default_category = ACTIVATIONS
        # storages whose every element is known (an inf/nan check's False, the zero task ids), read by `.item()`
        self._known: dict[int, bool | int] = {}
        # whether the step went on from a value or size fake tensors do not hold (a stand-in or an upper bound):
        # a later failure may then be the trace's own, not the model's
        self.guessed = False

    # -- bookkeeping ---------------------------------------------------------------------------------------------
    def adopt(self, tensors: Iterable[torch.Tensor], category: int) -> None:
        """Count storages that exist already (parameters, optimizer state) or move live ones to `category`."""
        for tensor in tensors:
            storage = tensor.untyped_storage()
            key = storage._cdata
            if key not in self._category:
                self._track(storage, category, record=False)
            elif self._category[key] != category:
                old = self._category[key]
                self.totals[old] -= self._bytes[key]
                self.totals[category] += self._bytes[key]
                self._category[key] = category

    def _track(self, storage: torch.UntypedStorage, category: int, *, record: bool) -> None:
        key = storage._cdata
        if key in self._category:
            return
        size = int(self._size_of(storage))
        self._category[key] = category
        self._bytes[key] = size
        self._refs[key] = weakref.ref(storage, lambda _ref, key=key: self._free(key))
        self.totals[category] += size
        if size:
            self._logged[key] = len(self.log)
            self.log.append(size)
            self.log_phase.append(self.phase)
        if record and size:
            self._rows.append(self.totals.copy())
            self._phases.append(self.phase)
            self._ops.append((self.phase << 32) | self._op)
            self._sizes.append(size)

    def _free(self, key: int) -> None:
        self._known.pop(key, None)
        if (index := self._logged.pop(key, None)) is not None:
            self.log.append(-1 - index)
            self.log_phase.append(self.phase)
        category = self._category.pop(key, None)
        if category is not None:
            self.totals[category] -= self._bytes.pop(key)
            self._refs.pop(key, None)

    def mark(self) -> None:
        """Record the current totals as an event (phase boundaries, so each phase has at least one row)."""
        self._rows.append(self.totals.copy())
        self._phases.append(self.phase)
        self._ops.append(-1 - self.phase)
        self._sizes.append(0)

    def __enter__(self) -> AllocationTracker:
        self.kept = len(self.log)
        return super().__enter__()

    def timeline(self) -> Timeline:
        return Timeline(np.array(self._rows, dtype=np.int64), np.array(self._phases, dtype=np.int8),
                        np.array(self._ops, dtype=np.int64), np.array(self._sizes, dtype=np.int64),
                        np.array(self.log, dtype=np.int64), self.kept, np.array(self.log_phase, dtype=np.int8))

    # -- dispatch ------------------------------------------------------------------------------------------------
    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        if func is _DEVICE and isinstance(args[0], FakeTensor) and not args[0].fake_mode.in_kernel_invocation:
            # `.device`, two thirds of a step's dispatches: answered as the fake mode would, without its overhead
            return args[0].fake_device
        if func is torch.ops.aten._local_scalar_dense.default:
            known = self._known.get(args[0].untyped_storage()._cdata)
            self.guessed |= known is None
            return _scalar_stand_in(args[0]) if known is None else known
        if func is torch.ops.aten.nonzero.default:
            # data-dependent size (DeBERTa's relative positions, masks): the upper bound, every element selected
            source = args[0]
            out = torch.empty((source.numel(), source.dim()), dtype=torch.long, device=source.device)
            self.guessed = True
        elif func in _MASKED and any(_is_mask(i) for i in args[1]):
            # a boolean-mask index (WaveFT's in-bounds filter, CPT's norm projection) has a data-dependent size:
            # the same upper bound, every element selected, as long indices of that many rows
            out = func(args[0], [j for i in args[1] for j in _all_selected(i)], *args[2:], **(kwargs or {}))
            self.guessed = True
        elif func is torch.ops.aten._unique2.default:
            out = _one_distinct_value(*args, **(kwargs or {}))
            self.guessed = True
        elif func is torch.ops.aten.sparse_mask.default:
            out = _sparse_mask(*args)
        elif func is torch.ops.aten._grouped_mm.default and torch.bfloat16 not in {args[0].dtype, args[1].dtype}:
            out = _grouped_mm_fallback(*args, **(kwargs or {}))
        else:
            out = func(*args, **(kwargs or {}))
        if func in _FINITE_CHECKS:
            self._known[out.untyped_storage()._cdata] = False  # fake weights hold no inf or nan
        elif func in _RANDOM_INTEGERS:  # a random index reads its lowest value, always in range (BOFT's dropout)
            self._known[out.untyped_storage()._cdata] = args[0] if func is torch.ops.aten.randint.low else 0
        elif func in _KEEPS_VALUE and (value := self._value_of(args[0])) is not None:
            self._known[out.untyped_storage()._cdata] = value
        self._op = _op_code(func)
        for leaf in tree_leaves(out):
            # a sparse tensor has no storage of its own: its bytes are its indices and values, tracked when made
            if isinstance(leaf, torch.Tensor) and not leaf.is_sparse:
                self._track(leaf.untyped_storage(), self.default_category, record=True)
        return out

    def know(self, tensor: torch.Tensor, value: bool | int) -> None:
        """Every element of `tensor` is `value` (the step's zero task ids), so a value check on it reads true."""
        self._known[tensor.untyped_storage()._cdata] = value

    def _value_of(self, tensor: object) -> bool | int | None:
        return self._known.get(tensor.untyped_storage()._cdata) if isinstance(tensor, torch.Tensor) else None


_DEVICE = torch.ops.prim.device.default
_MASKED = {torch.ops.aten.index.Tensor, torch.ops.aten.index_put.default, torch.ops.aten.index_put_.default}
_FINITE_CHECKS = {torch.ops.aten.isinf.default, torch.ops.aten.isnan.default, torch.ops.aten.isposinf.default,
                  torch.ops.aten.isneginf.default}
_RANDOM_INTEGERS = {torch.ops.aten.randint.default, torch.ops.aten.randint.low}
# Reductions whose result holds the value every element of their input holds (any of all-False is False, the max
# of all zeros is 0).
_KEEPS_VALUE = {torch.ops.aten.any.default, torch.ops.aten.any.dim, torch.ops.aten.any.dims,
                torch.ops.aten.all.default, torch.ops.aten.all.dim, torch.ops.aten.max.default,
                torch.ops.aten.min.default, torch.ops.aten.amax.default, torch.ops.aten.amin.default}


@cache
def _op_code(func: object) -> int:
    """A stable number for an op (the same in every process, unlike `hash`)."""
    return zlib.crc32(str(func).encode())


def _is_mask(index: torch.Tensor | None) -> bool:
    return index is not None and index.dtype in (torch.bool, torch.uint8)


def _all_selected(index: torch.Tensor | None) -> list[torch.Tensor | None]:
    """A boolean mask as the long indices `nonzero` would give if every element were selected (one per masked
    dimension); other indices unchanged."""
    if not _is_mask(index):
        return [index]
    assert index is not None
    rows = torch.empty(index.numel(), dtype=torch.long, device=index.device)
    return [rows] * index.dim()


def _one_distinct_value(source: torch.Tensor, sorted: bool = True, return_inverse: bool = False,
                        return_counts: bool = False) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """`unique` has a data-dependent size; what it returns drives loops over the distinct values (CPT's label
    types), whose tensors are transient, so one distinct value stands in (aten's empty tensors where the inverse
    or the counts are not asked for)."""
    del sorted
    inverse = torch.empty(source.shape if return_inverse else (0,), dtype=torch.long, device=source.device)
    counts = torch.empty(1 if return_counts else 0, dtype=torch.long, device=source.device)
    return torch.empty(1, dtype=source.dtype, device=source.device), inverse, counts


def _sparse_mask(dense: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """`dense.sparse_mask(mask)`: the dense values at the mask's entries, as a sparse tensor with the mask's indices
    (the fake kernel leaves the values empty; SHiRA's backward reads them as its trained vector's gradient)."""
    values = torch.empty((mask._nnz(), *dense.shape[mask.sparse_dim():]), dtype=dense.dtype, device=dense.device)
    return torch.sparse_coo_tensor(mask._indices(), values, dense.shape, is_coalesced=mask.is_coalesced())


def _grouped_mm_fallback(mat_a: torch.Tensor, mat_b: torch.Tensor, offs: torch.Tensor | None = None,
                         bias: torch.Tensor | None = None, out_dtype: torch.dtype | None = None) -> torch.Tensor:
    """CUDA's grouped GEMM outside bf16 (an MoE's fp32 experts trained under AMP: transformers casts the tokens to
    the weights' dtype) takes `_grouped_mm_fallback`, a loop of `mm_out` into one output in the inputs' dtype
    (aten/src/ATen/native/cuda/GroupedBlas.cpp); the fake kernel checks only the bf16 fast path, so the output's
    shape is read from it on bf16 placeholders."""
    del bias  # added into the output in place
    placeholders = [torch.empty_strided(m.shape, m.stride(), dtype=torch.bfloat16, device=m.device)
                    for m in (mat_a, mat_b)]
    shape = torch.ops.aten._grouped_mm.default(*placeholders, offs).shape
    return torch.empty(shape, dtype=out_dtype or mat_a.dtype, device=mat_a.device)


def _scalar_stand_in(tensor: torch.Tensor) -> bool | int | float:
    """A fake tensor has no value: a Python read of one whose value the tracker does not know (peft's LoHa/LoKr
    draw `torch.rand(1) > p` to drop a module) gets True / 1 / 0.5, i.e. the module runs, which is the larger of
    the two memory paths. Known values (`AllocationTracker.know`, inf/nan checks: VB-LoRA's guard against resumed
    top-k logits reads False, as on healthy weights) are read as they are."""
    if tensor.dtype == torch.bool:
        return True
    return 0.5 if tensor.dtype.is_floating_point else 1
