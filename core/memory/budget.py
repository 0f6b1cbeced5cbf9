"""The per-GPU memory at the training step's peak, its fit on a GPU, and the time and cost: the engine's answer.

The traced profile (`core.memory.profile`) gives, for each phase of one single-GPU step, the bytes by category
at that phase's peak. Data parallelism and sharding then act on those categories per phase (ZeRO, Rajbhandari
et al. 2019, §5; PyTorch FSDP, Zhao et al. 2023): stage 1 partitions optimizer states and the optimizer
step's scratch across the N GPUs, stage 2 also gradients (plus one reduce bucket), stage 3 and FSDP also the
parameters, frozen ones included, gathering one block to compute it while prefetching the next and holding
one block's unsharded gradients until its reduce-scatter. Plain DDP keeps a bucket copy of every trained
gradient (`gradient_as_bucket_view=False`, its default). Offloading moves the optimizer states, its step and,
under mixed precision, the fp32 master copy (or with `params` also the partitioned parameters) to the CPU.
The peak is the largest phase after that; the device level adds the allocator and the CUDA context
(`core.memory.overhead`). Everything after the profile is arithmetic, so a re-estimate is cheap.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from core.counting import ParameterCount, model_shape
from core.errors import InputError, NotApplicableError
from core.memory import cache
from core.memory.gpus import Gpu, find_gpu
from core.memory.overhead import OVERHEAD
from core.memory.profile import StepProfile, step_profile
from core.memory.replay import ReplayPeaks
from core.memory.setup import PAGED_OPTIMIZERS, SHARDINGS, TrainingSetup
from core.memory.sharding import SHARDINGS as SHARDING_MODES
from core.memory.spec import ACTIVATIONS, CATEGORIES, GRADIENTS, OPTIMIZER, PHASES, TEMPORARIES, WEIGHTS, StepSpec
from core.memory.steplog import LogUnavailableError
from core.memory.throughput import TrainingTime, flops_per_token, recompute_flops_per_token, training_time
from core.registry import MethodChoice
from core.skeleton_key import SkeletonKey
from core.units import GIB

# The code whose outcome an untraceable step is (`_profile`): editing it traces such a step again.
TRACE_SOURCES: tuple[Path, ...] = tuple(Path(__file__).resolve().parents[1] / name for name in (
    "memory/step.py", "memory/trace.py", "memory/profile.py", "memory/standins.py", "apply.py", "skeleton.py"))
# The code a cached replay is the outcome of (beside its profile's): editing it replays again.
REPLAY_SOURCES: tuple[Path, ...] = tuple(Path(__file__).resolve().parent / name
                                         for name in ("allocator.py", "replay.py", "steplog.py"))
MAX_GPUS = 512  # the largest cluster a fine-tune is planned on: 64 eight-GPU nodes
SHARDING_NAMES = {mode.id: mode.name for mode in SHARDING_MODES.values()}
# A sharding mode suits a run when what it partitions is at least this share of the unsharded per-GPU peak;
# below it the mode adds communication for no memory (e.g. ZeRO-1/2 for a LoRA: only the adapter's states).
SUITED_SHARE = 0.10
MAX_BATCH = 1 << 20
REDUCE_BUCKET_ELEMENTS = 500_000_000  # DeepSpeed's default reduce_bucket_size
_FORWARD, _BACKWARD, _CLIP, _OPTIMIZER = (PHASES.index(p) for p in ("forward", "backward", "clip", "optimizer"))
_COMPUTE = [PHASES.index("forward"), _BACKWARD]


# How a breakdown's reserved peak was found, in words (`MemoryBreakdown.reserved_from`).
RESERVED_SOURCES = {
    "replay": "the step's every allocation and free replayed through PyTorch's caching allocator",
    "scaled": "the single-GPU step's replayed reserved/allocated ratio, applied to this per-GPU peak (sharding "
              "and offload are arithmetic over the single-GPU trace)",
    "prior": "no allocation log for this step (its allocations depend on the shape, or its blocks are of several "
             "kinds): reserved = allocated, the prior of core/memory/overhead.py",
}


@dataclass(frozen=True)
class MemoryBreakdown:
    """Bytes on one GPU at the step's peak (`phase`): the allocator's five categories, whose sum is `allocated`
    (what `torch.cuda.max_memory_allocated` shows); `cached`, what the caching allocator holds beyond them at its
    reserved peak (`reserved`, what `torch.cuda.max_memory_reserved` shows; found as `reserved_from` says); and
    `context`, the CUDA context and NCCL buffers outside the allocator. `device` (what nvidia-smi shows) is what
    must fit. `paged`: optimizer states a paged optimizer keeps in CUDA unified memory, outside the caching
    allocator (so outside `allocated`) and moved to CPU memory when the GPU is full (so not part of what must
    fit); 0 for every other optimizer."""

    weights: int
    gradients: int
    optimizer: int
    activations: int
    temporaries: int
    cached: int
    context: int
    phase: str
    reserved_from: str
    paged: int = 0

    def __post_init__(self) -> None:
        parts = (self.weights, self.gradients, self.optimizer, self.activations, self.temporaries, self.cached,
                 self.context, self.paged)
        if min(parts) < 0:
            raise ValueError(f"negative memory term in {parts}")
        if self.phase not in PHASES:
            raise ValueError(f"unknown phase {self.phase!r}")
        if self.reserved_from not in RESERVED_SOURCES:
            raise ValueError(f"unknown source of the reserved peak {self.reserved_from!r}")

    @property
    def allocated(self) -> int:
        return self.weights + self.gradients + self.optimizer + self.activations + self.temporaries

    @property
    def reserved(self) -> int:
        return self.allocated + self.cached

    @property
    def device(self) -> int:
        return self.reserved + self.context

    @property
    def overhead(self) -> int:
        """What the device holds beyond the allocated bytes: the allocator's cache and the CUDA context."""
        return self.cached + self.context

    @property
    def total(self) -> int:
        """The figure that must fit the GPU: the device-level peak."""
        return self.device

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "allocated": self.allocated, "reserved": self.reserved, "overhead": self.overhead,
                "device": self.device, "total": self.total}


@dataclass(frozen=True)
class Fit:
    """Whether the step fits the GPU at the device level, with what headroom; the largest micro-batch at this
    length (0 when not even one sequence fits: then `max_seq_len`, the longest sequence that fits at micro-batch
    1, 0 when none does); and the fewest GPUs per sharding mode that fits within MAX_GPUS, searched only over the
    modes that suit the run (`unsuited` says why each other mode was not searched, `gpus_note` why none fits)."""

    gpu: str
    gpu_memory: int
    fits: bool
    headroom: int
    max_batch_size: int
    min_gpus: dict[str, int]
    seq_len: int
    max_seq_len: int
    gpus_note: str = ""
    unsuited: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.fits != (self.headroom >= 0) or self.max_batch_size < 0 or not 0 <= self.max_seq_len <= self.seq_len:
            raise ValueError("inconsistent fit: fits means non-negative headroom; batch and length not negative")
        if any(n < 1 or n > MAX_GPUS for n in self.min_gpus.values()):
            raise ValueError(f"fewest GPUs must be within 1..{MAX_GPUS}")
        if not self.min_gpus and not self.gpus_note:
            raise ValueError("when no GPU count fits, the fit says why")
        if set(self.min_gpus) & set(self.unsuited):
            raise ValueError("a mode is either searched or said to be unsuited")

    @property
    def batch_text(self) -> str:
        """The largest micro-batch in words, or what would be needed when not even one sequence fits."""
        if self.max_batch_size > 0:
            return f"{self.max_batch_size} x {self.seq_len} tokens"
        if self.max_seq_len > 0:
            return (f"not even 1 sequence of {self.seq_len} tokens fits; the longest that fits at micro-batch 1 is "
                    f"{self.max_seq_len} tokens")
        return "not even 1 short sequence fits: shard the weights over more GPUs, or quantize the base (QLoRA)"

    @property
    def fewest_gpus(self) -> tuple[str, int] | None:
        """The sharding mode that fits on the fewest GPUs (ties: the order of SHARDINGS)."""
        if not self.min_gpus:
            return None
        mode = min(self.min_gpus, key=lambda m: (self.min_gpus[m], SHARDINGS.index(m)))
        return mode, self.min_gpus[mode]

    @property
    def fewest_text(self) -> str:
        fewest = self.fewest_gpus
        if fewest is None:
            return self.gpus_note
        mode, n = fewest
        return f"{n} x {self.gpu}" + ("" if not SHARDING_MODES[mode].shards else f" with {SHARDING_NAMES[mode]}")

    @property
    def unsuited_text(self) -> str:
        """Which sharding modes were not searched and why, in one line ('' when every mode was)."""
        return "" if not self.unsuited else "not searched: " + "; ".join(self.unsuited.values())

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"largest_micro_batch": self.batch_text, "fewest_gpus": self.fewest_text}


@dataclass(frozen=True)
class TrainingEstimate:
    """Memory, fit (with --gpu) and time/cost of one method under one training setup."""

    memory: MemoryBreakdown
    fit: Fit | None
    time: TrainingTime


def step_spec(setup: TrainingSetup, quantization: str) -> StepSpec:
    """The part of a training setup the traced step depends on."""
    return StepSpec(setup.precision, setup.optimizer, setup.attention, setup.gradient_checkpointing, quantization,
                    reentrant=setup.reentrant_checkpointing)


@dataclass(frozen=True)
class Sizer:
    """Per-GPU breakdowns for one (model, method, step) at any batch, GPU count and sharding."""

    profile: StepProfile
    master_bytes: int
    setup: TrainingSetup
    autocast_cache: int  # torch.autocast's half-precision copies of the trained weights, held through the forward
    root_bytes: int  # what no block holds, in the compute dtype: FSDP's root unit, gathered
    largest_root_bytes: int  # the largest module no block holds, in the compute dtype: gathered alone by ZeRO-3
    # phase peaks by (batch, length): the fit searches (largest batch, fewest GPUs per mode) reuse them
    _peaks: dict[tuple[int, int], np.ndarray] = field(default_factory=dict, init=False, repr=False, compare=False)

    def breakdown(self, *, batch_size: int | None = None, gpus: int | None = None,
                  setup: TrainingSetup | None = None, replayed: bool = True) -> MemoryBreakdown:
        """The per-GPU breakdown; `replayed=False` takes the reserved peak of a single-GPU step from the replay at
        the setup's own shape, scaled (the searches over batch and length, refined by replays at their end)."""
        setup = setup or self.setup
        n = gpus or setup.gpus
        shape = (batch_size or setup.batch_size, setup.seq_len)
        if shape not in self._peaks:
            self._peaks[shape] = self.profile.phase_peaks(*shape).bytes
        per_gpu = _distribute(self._peaks[shape], setup, n, self.profile.block_bytes, master=self.master_bytes,
                              root=self.root_bytes, largest_root=self.largest_root_bytes,
                              autocast_cache=self.autocast_cache)
        paged = 0
        if setup.optimizer in PAGED_OPTIMIZERS:  # its states live in unified memory (see MemoryBreakdown)
            paged = round(per_gpu[:, OPTIMIZER].max())
            per_gpu[:, OPTIMIZER] = 0
        phase = int(np.argmax(per_gpu.sum(axis=1)))
        row = [round(v) for v in per_gpu[phase]]
        allocated = sum(row)
        single = n == 1 and not SHARDING_MODES[setup.sharding].shards and setup.offload == "none"
        cached, source = self._cached(allocated, shape, exact=single and replayed)
        return MemoryBreakdown(**dict(zip(CATEGORIES, row, strict=True)), cached=cached,
                               context=OVERHEAD.context(gpus=n), phase=PHASES[phase], paged=paged,
                               reserved_from=source)

    def _cached(self, allocated: int, shape: tuple[int, int], *, exact: bool) -> tuple[int, str]:
        """What the allocator holds beyond `allocated` at its reserved peak, and how that was found: the replay
        of this shape's step (`exact`), or the reserved/allocated ratio of the replay at the setup's own shape."""
        own = (self.setup.batch_size, self.setup.seq_len)
        paged = self.setup.optimizer in PAGED_OPTIMIZERS
        peaks = replayed_peaks(self.profile, *(shape if exact else own), paged=paged)
        if peaks is None:
            return OVERHEAD.reserved(allocated) - allocated, "prior"
        if exact:
            return max(peaks.reserved - allocated, 0), "replay"
        return round(allocated * max(peaks.reserved / peaks.allocated - 1, 0)), "scaled"


@lru_cache(maxsize=4096)
def replayed_peaks(profile: StepProfile, batch: int, seq: int, *, paged: bool = False) -> ReplayPeaks | None:
    """The allocator's peaks over a run's first steps at this shape, the optimizer states outside it when
    `paged` (None when the step has no allocation log). A replay of a 70B model's log takes tens of
    milliseconds, so each is also kept in the disk cache beside the profile, for other processes and replicas."""
    log = profile.allocation_log(seq)
    if log is None:
        return None
    profile_name = cache.entry_key(profile.key, profile.choice, profile.spec)
    name = cache.record_name("replay", REPLAY_SOURCES, profile=profile_name, shape=[batch, seq], paged=paged)
    record = cache.load_record(name)
    if record is not None and isinstance(record.get("allocated"), int) and isinstance(record.get("reserved"), int):
        return ReplayPeaks(allocated=record["allocated"], reserved=record["reserved"])
    try:
        peaks = log.peaks(batch, seq, paged=paged)
    except LogUnavailableError:  # a step the two-step replay cannot chain: the reserved level falls back on the prior
        return None
    cache.store_record(name, {"allocated": peaks.allocated, "reserved": peaks.reserved})
    return peaks


def _distribute(peaks: np.ndarray, setup: TrainingSetup, gpus: int, block: np.ndarray, *, master: int,
                root: int, largest_root: int, autocast_cache: int = 0) -> np.ndarray:
    """Per-phase per-GPU bytes under the setup's data parallelism (see the module docstring)."""
    out = peaks.copy()
    mode = SHARDING_MODES[setup.sharding]
    grads = peaks[_CLIP, GRADIENTS]
    if not mode.shards:
        if gpus > 1:
            out[:, GRADIENTS] += grads  # DDP's bucket copies
        return out
    # Sharded engines run their own mixed precision, not torch.autocast (FSDP's MixedPrecisionPolicy casts each
    # unit as it gathers it; DeepSpeed holds bf16/fp16 weights and accelerate adds no autocast around it), so the
    # single-GPU trace's autocast cache, a half-precision copy of every trained weight held to the forward's end
    # (131 GiB for Llama-3.1-70B), is not there.
    out[_FORWARD, ACTIVATIONS] = max(out[_FORWARD, ACTIVATIONS] - autocast_cache, 0)
    out[:, OPTIMIZER] /= gpus
    out[_OPTIMIZER, TEMPORARIES] /= gpus
    if mode.shards_gradients:
        out[:, GRADIENTS] /= gpus
        out[_CLIP, TEMPORARIES] /= gpus
        bucket = min(grads, REDUCE_BUCKET_ELEMENTS * _grad_elem(peaks, block))
        out[_BACKWARD, GRADIENTS] += bucket if mode.buckets_gradients else block[GRADIENTS]
    # A block is gathered in the compute dtype (FSDP's MixedPrecision param_dtype, DeepSpeed's bf16/fp16 copy):
    # the fp32 master share of trained weights (the `master` bytes of the whole model) stays sharded.
    total = peaks[_CLIP, WEIGHTS]
    gathered = block[WEIGHTS] * (1 - master / total) if total else block[WEIGHTS]
    # the gathered block and the prefetched next one; ZeRO-3 gathers every module on use, so the embedding (or an
    # untied head) with its neighbouring block when that module outweighs a block
    in_flight = 2 * gathered if mode.gathers == "per-unit" else max(2 * gathered, largest_root + gathered)
    if mode.shards_weights:
        out[:, WEIGHTS] /= gpus
        out[_COMPUTE, WEIGHTS] += in_flight
    if setup.offload in ("optimizer", "params"):
        out[:, OPTIMIZER] = 0
        out[_OPTIMIZER, TEMPORARIES] = 0
        out[:, WEIGHTS] = np.maximum(out[:, WEIGHTS] - master / (gpus if mode.shards_weights else 1), 0)
    if setup.offload == "params":
        out[:, WEIGHTS] = 0
        out[_COMPUTE, WEIGHTS] = in_flight
    if mode.keeps_root_gathered:
        # FSDP (1 and 2) keeps its root unit (what no block holds: embeddings, final norm, head) unsharded from
        # the forward's start to the backward's end (reshard_after_forward is off for the root), beside its shard.
        out[_COMPUTE, WEIGHTS] += root
    return out


def _grad_elem(peaks: np.ndarray, block: np.ndarray) -> int:
    return 4 if block[GRADIENTS] and block[WEIGHTS] and block[GRADIENTS] >= block[WEIGHTS] else 2


def sizer(key: SkeletonKey, choice: MethodChoice, count: ParameterCount, setup: TrainingSetup,
          quantization: str) -> Sizer:
    """The cached-work part of an estimate: the traced profile."""
    check_positions(key, setup)
    profile = remembered_profile(key, choice, step_spec(setup, quantization))
    master = count.trainable_params * 2 if setup.mixed and not choice.spec.is_peft else 0
    # FSDP's root unit and ZeRO-3's largest gathered root module, in the trace's compute dtype (2 bytes unless fp32)
    shape, element = model_shape(key), 4 if setup.precision == "fp32" else 2
    # autocast caches a half-precision copy of each weight that requires grad on its first use in the forward
    # (torch/csrc/autograd/autocast_mode.cpp, `cached_cast`): the trained weights, in the compute dtype
    cache = count.trainable_params * element if setup.mixed else 0
    return Sizer(profile, master, setup, cache, shape.root_params * element, shape.largest_root_params * element)


def check_positions(key: SkeletonKey, setup: TrainingSetup) -> None:
    """Refuse a length past a learned position table before anything is traced (the model's shape is cached)."""
    positions = model_shape(key).learned_positions
    if 0 < positions < setup.seq_len:
        raise InputError(f"--seq-len {setup.seq_len} exceeds the {positions} positions of {key.model.name}'s "
                         "learned position table: a longer sequence indexes past it and the run fails; use "
                         f"--seq-len {positions} or less")


def remembered_profile(key: SkeletonKey, choice: MethodChoice, spec: StepSpec) -> StepProfile:
    """`step_profile`, with a step that cannot be traced remembered as such in the disk cache (beside the profiles,
    keyed by the profile's key, the model's name its message holds and the trace code's source), so that a warm
    estimate says so again without importing torch to fail once more."""
    name = _untraceable_name(key, choice, spec)
    record = cache.load_record(name)
    if record is not None and isinstance(record.get("message"), str):
        raise NotApplicableError(record["message"])
    try:
        return step_profile(key, choice, spec)
    except NotApplicableError as exc:
        if type(exc) is NotApplicableError:  # not a MissingPackageError: installing the package lifts that
            cache.store_record(name, {"message": str(exc)})
        raise


def profile_known(key: SkeletonKey, choice: MethodChoice, spec: StepSpec) -> bool:
    """Whether the disk cache already answers this step: its profile, or that it cannot be traced."""
    return (cache.has(cache.entry_key(key, choice, spec))
            or cache.load_record(_untraceable_name(key, choice, spec)) is not None)


def _untraceable_name(key: SkeletonKey, choice: MethodChoice, spec: StepSpec) -> str:
    return cache.record_name("untraceable", TRACE_SOURCES, profile=cache.entry_key(key, choice, spec),
                             model=key.model.name)


def estimate_training(key: SkeletonKey, choice: MethodChoice, count: ParameterCount, setup: TrainingSetup,
                      quantization: str) -> TrainingEstimate:
    """Breakdown, fit and time for `choice` (raises NotApplicableError when it cannot be estimated)."""
    parts = sizer(key, choice, count, setup, quantization)
    memory = parts.breakdown()
    gpu = find_gpu(setup.gpu, price=setup.gpu_price) if setup.gpu else None
    fit = _fit(parts, gpu, memory) if gpu else None
    return TrainingEstimate(memory, fit, _time(key, choice, count, setup, gpu=gpu, quantization=quantization,
                                                 fits=fit is None or fit.fits))


def _time(key: SkeletonKey, choice: MethodChoice, count: ParameterCount, setup: TrainingSetup, *, gpu: Gpu | None,
          quantization: str, fits: bool) -> TrainingTime:
    model = model_shape(key)
    shape = {"layers": model.layers, "width": model.width, "seq_len": setup.seq_len}
    per_token = flops_per_token(choice, count, **shape)
    recompute = recompute_flops_per_token(choice, count, **shape)
    return training_time(per_token, recompute, count, setup, gpu, quantization=quantization, fits=fits,
                         extra_tokens=choice.input_tokens)


def reference_hours(key: SkeletonKey, choice: MethodChoice, count: ParameterCount, setup: TrainingSetup,
                    quantization: str) -> float | None:
    """The hours `setup` would take if its step fit: only to compare a change that makes it fit against it
    (never shown as the run's own time); None without a GPU or a dataset size."""
    gpu = find_gpu(setup.gpu, price=setup.gpu_price) if setup.gpu else None
    return _time(key, choice, count, setup, gpu=gpu, quantization=quantization, fits=True).hours


def _fit(parts: Sizer, gpu: Gpu, memory: MemoryBreakdown) -> Fit:
    capacity = gpu.memory_bytes
    batch = largest_batch(parts, capacity)
    length = parts.setup.seq_len if batch > 0 else longest_sequence(parts, capacity)
    unsuited = unsuited_modes(parts.breakdown(setup=replace(parts.setup, gpus=1, sharding="none", offload="none")))
    searched = [mode for mode in SHARDINGS if mode not in unsuited]
    gpus = {mode: n for mode in searched if (n := _min_gpus(parts, mode, capacity)) is not None}
    return Fit(gpu.id, capacity, memory.device <= capacity, capacity - memory.device, batch, gpus,
               parts.setup.seq_len, length, "" if gpus else _why_no_gpus(parts, capacity), unsuited)


def unsuited_modes(single: MemoryBreakdown) -> dict[str, str]:
    """The sharding modes not worth searching for this run, each with why: those that partition less than
    SUITED_SHARE of its unsharded peak (`single`, one GPU). ZeRO-3 and FSDP always suit a run they could fit,
    since they partition the weights too, unless even those are a sliver of the peak."""
    out = {}
    for mode, terms in ((m.id, m.partitions) for m in SHARDING_MODES.values() if m.shards):
        shardable = sum(getattr(single, term) for term in terms)
        if shardable < SUITED_SHARE * single.device:
            names = " and ".join(t if t != "optimizer" else "optimizer states" for t in terms)
            out[mode] = (f"{SHARDING_NAMES[mode]} partitions only the {names}: {shardable / GIB:.2f} GiB of the "
                         f"{single.device / GIB:.1f} GiB peak")
    return out


def largest_batch(parts: Sizer, capacity: int) -> int:
    """The largest micro-batch whose device peak fits; 0 when not even one sequence fits. Memory grows with the
    batch: an exponential then binary search with the reserved peak scaled from the replay at the setup's shape,
    then the same search from there on the replayed peaks (a few replays)."""

    def fits(batch: int, replayed: bool) -> bool:
        return parts.breakdown(batch_size=batch, replayed=replayed).device <= capacity

    return _refined(lambda batch: fits(batch, False), lambda batch: fits(batch, True), 1, MAX_BATCH)


def _refined(scaled: Callable[[int], bool], replayed: Callable[[int], bool], low: int, high: int) -> int:
    """The largest value in [low, high] that `replayed` accepts (low - 1 when none), searched first on the cheap
    `scaled` and then, from its answer, on `replayed` (both grow false with the value)."""
    first = _largest(scaled, low, high, low)
    if first >= low and replayed(first):
        return _largest(replayed, first, high, first)
    below = max(first - 1, low)
    return _largest(replayed, low, below, below)


def _largest(fits: Callable[[int], bool], low: int, high: int, start: int) -> int:
    """The largest value in [low, high] that `fits` accepts, galloping from `start` (low - 1 when none)."""
    if not fits(start):
        step, top = 1, start
        while top > low:  # gallop down to a value that fits
            nxt = max(top - step, low)
            if fits(nxt):
                return _bisect(fits, nxt, top)
            top, step = nxt, step * 2
        return low - 1
    step, bottom = 1, start
    while bottom < high:  # gallop up to a value that does not fit
        nxt = min(bottom + step, high)
        if not fits(nxt):
            return _bisect(fits, bottom, nxt)
        bottom, step = nxt, step * 2
    return bottom


def _bisect(fits: Callable[[int], bool], good: int, bad: int) -> int:
    while bad - good > 1:
        mid = (good + bad) // 2
        good, bad = (mid, bad) if fits(mid) else (good, mid)
    return good


def longest_sequence(parts: Sizer, capacity: int) -> int:
    """The longest sequence (a multiple of 64 from 64 tokens, else exact) whose micro-batch-1 step fits; 0: none
    (searched as `largest_batch` searches the batch)."""

    def fits(length: int, replayed: bool) -> bool:
        setup = replace(parts.setup, seq_len=length)
        return parts.breakdown(batch_size=1, setup=setup, replayed=replayed).device <= capacity

    best = _refined(lambda n: fits(n, False), lambda n: fits(n, True), 1, parts.setup.seq_len)
    if best < 64:
        return best
    # the replayed peak is not monotone in the length: the multiple of 64 below may not fit where `best` does
    length = best - best % 64
    while length >= 64 and not fits(length, True):
        length -= 64
    return length


def _min_gpus(parts: Sizer, mode: str, capacity: int) -> int | None:
    """Fewest GPUs (up to MAX_GPUS) whose per-GPU device peak fits, at this micro-batch, under sharding `mode`
    (binary search); None when even MAX_GPUS do not. Plain data parallelism ('none') never lowers the per-GPU
    peak, so it fits on 1 GPU or not at all."""
    setup = parts.setup
    if not SHARDING_MODES[mode].shards:
        single = replace(setup, gpus=1, sharding="none", offload="none")
        return 1 if parts.breakdown(setup=single).device <= capacity else None
    trial = _sharded(setup, mode)

    def fits(n: int) -> bool:
        return parts.breakdown(setup=trial, gpus=n).device <= capacity

    if not fits(MAX_GPUS):
        return None
    low, high = 2, MAX_GPUS
    while low < high:
        mid = (low + high) // 2
        low, high = (low, mid) if fits(mid) else (mid + 1, high)
    return low


def _sharded(setup: TrainingSetup, mode: str) -> TrainingSetup:
    """The setup under sharding `mode`, keeping the user's offload where that mode supports it."""
    keep = setup.offload if setup.offload != "params" or SHARDING_MODES[mode].shards_weights else "optimizer"
    return replace(setup, gpus=2, sharding=mode, offload=keep if SHARDING_MODES[setup.sharding].shards else "none")


def _why_no_gpus(parts: Sizer, capacity: int) -> str:
    """Why no GPU count fits: what stays on each GPU at MAX_GPUS with ZeRO-3, and its largest part."""
    at_cap = parts.breakdown(setup=_sharded(parts.setup, "zero3"), gpus=MAX_GPUS)
    terms = {"weights": at_cap.weights, "gradients": at_cap.gradients, "optimizer states": at_cap.optimizer,
             "activations": at_cap.activations, "temporaries": at_cap.temporaries}
    largest = max(terms, key=lambda k: terms[k])
    shorter = "lower the micro-batch or the sequence length"
    fix = ((shorter if parts.setup.gradient_checkpointing else f"turn on gradient checkpointing or {shorter}")
           if largest in ("activations", "temporaries") else "quantize the base weights or offload to the CPU")
    return (f"even {MAX_GPUS} GPUs with ZeRO-3 leave {at_cap.device / GIB:.1f} GiB per GPU "
            f"({terms[largest] / GIB:.1f} GiB of {largest}) against {capacity / GIB:.1f} GiB: {fix}")
