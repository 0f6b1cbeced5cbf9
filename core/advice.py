"""Make it fit: for a method whose training step does not fit its GPU, the cheapest changes that do.

Every candidate change is re-estimated by the engine (`core.memory.budget.estimate_training` on the changed
setup or method): nothing here is a formula of its own, and a change is offered only when its re-estimated
device peak fits. Re-estimates are cheap: profiles are cached, and a batch, length, GPU or sharding change is
arithmetic on them (a new precision, optimizer, checkpointing or method traces once, then is cached too).
Changes that keep the method come first (a different method changes the expected accuracy too), each group
ranked by dollars, then hours, then peak; each says its new peak, time and cost, and how its time compares
with the unchanged run's (had that fit: the compute, optimizer and communication it would take).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

from core.errors import InputError, NotApplicableError
from core.estimate import cached_count
from core.memory.budget import SHARDING_NAMES, TrainingEstimate, estimate_training, reference_hours
from core.memory.gpus import catalogue, find_gpu
from core.memory.optimizers import EIGHT_BIT, OPTIMIZERS
from core.memory.quantization import check_quantization
from core.memory.setup import TrainingSetup
from core.memory.sharding import SHARDINGS
from core.registry import ALL_LINEAR, MethodChoice
from core.skeleton_key import SkeletonKey
from core.units import GIB

# What to try instead of a method that does not fit: LoRA on every linear layer (practice's default, LoRA Without
# Regret, Thinking Machines 2025) and QLoRA's 4-bit base (Dettmers et al. 2023), each at its registry defaults.
ALTERNATIVES: tuple[MethodChoice, ...] = (MethodChoice("lora", targets=ALL_LINEAR), MethodChoice("qlora"))


@dataclass(frozen=True)
class Change:
    """One change that makes the step fit, with its re-estimated device peak, hours and dollars (absent without
    a dataset size) and its hours relative to the unchanged run's (`time_ratio`)."""

    what: str
    choice: MethodChoice
    setup: TrainingSetup
    peak_bytes: int
    gpu_memory: int
    hours: float | None = None
    usd: float | None = None
    time_ratio: float | None = None
    changes_method: bool = False

    def __post_init__(self) -> None:
        if not 0 < self.peak_bytes <= self.gpu_memory:
            raise ValueError(f"{self.what}: a change is offered only when its peak fits the GPU")
        if (self.hours is None) != (self.usd is None) or (self.time_ratio is not None and self.time_ratio <= 0):
            raise ValueError(f"{self.what}: hours and dollars come together; a time ratio is positive")

    @property
    def label(self) -> str:
        return self.choice.label()

    @property
    def gpus(self) -> int:
        return self.setup.gpus

    def text(self) -> str:
        """E.g. 'turn on gradient checkpointing: 21.3 GiB per GPU of 79.1 GiB, 3.2 h (+33% time), $8'."""
        out = f"{self.what}: {self.peak_bytes / GIB:.1f} GiB per GPU of {self.gpu_memory / GIB:.1f} GiB"
        if self.hours is not None and self.usd is not None:
            ratio = "" if self.time_ratio is None else f" ({100 * (self.time_ratio - 1):+.0f}% time)"
            out += f", {duration(self.hours)}{ratio}, {dollars(self.usd)}"
        return out + (" (a different method: its expected accuracy differs)" if self.changes_method else "")


@dataclass(frozen=True)
class Advice:
    """What would make `label` fit `gpus` x `gpu`: ranked changes, or `note` saying why none does (or that it
    fits already)."""

    label: str
    gpu: str
    gpus: int
    peak_bytes: int
    gpu_memory: int
    changes: tuple[Change, ...] = ()
    note: str = ""

    def __post_init__(self) -> None:
        if not self.changes and not self.note:
            raise ValueError("advice without a change says why")
        order = [_rank(c) for c in self.changes]
        if order != sorted(order):
            raise ValueError("changes are ranked cheapest first")

    @property
    def fits(self) -> bool:
        return self.peak_bytes <= self.gpu_memory

    def lines(self) -> list[str]:
        """One line per change, cheapest first, or the reason there is none."""
        return [c.text() for c in self.changes] or [self.note]


def dollars(usd: float) -> str:
    """Dollars with cents below $10, whole dollars above."""
    return f"${usd:,.2f}" if usd < 10 else f"${usd:,.0f}"


def duration(hours: float) -> str:
    """Hours in words with the unit: '3.2 h', '12 min', 'under 1 min'."""
    if hours >= 1:
        return f"{hours:,.1f} h"
    minutes = hours * 60
    return f"{minutes:.0f} min" if minutes >= 1 else "under 1 min"


def _rank(change: Change) -> tuple[bool, float, float, int]:
    return (change.changes_method, math.inf if change.usd is None else change.usd,
            math.inf if change.hours is None else change.hours, change.peak_bytes)


def _estimate(key: SkeletonKey, choice: MethodChoice, setup: TrainingSetup) -> TrainingEstimate | None:
    """The engine's estimate, or None when the method cannot be estimated under this setup."""
    try:
        return estimate_training(key, choice, cached_count(key, choice), setup, check_quantization(choice, setup))
    except (NotApplicableError, InputError):
        return None


def make_it_fit(key: SkeletonKey, choice: MethodChoice, setup: TrainingSetup, *,
                alternatives: Sequence[MethodChoice] = ALTERNATIVES, limit: int = 6) -> Advice:
    """The cheapest changes (at most `limit`) that make `choice` fit `setup.gpu`, ranked; see the module docstring."""
    if setup.gpu is None:
        raise InputError("pick a GPU: what fits depends on its memory")
    gpu = find_gpu(setup.gpu, price=setup.gpu_price)
    base = _estimate(key, choice, setup)
    if base is None or base.fit is None:
        raise InputError(f"{choice.label()} cannot be estimated on {key.model.name}")
    advice = Advice(choice.label(), gpu.id, setup.gpus, base.memory.device, gpu.memory_bytes, note="fits as it is")
    if base.fit.fits:
        return advice
    count = cached_count(key, choice)
    reference = reference_hours(key, choice, count, setup, check_quantization(choice, setup))
    changes: dict[str, Change] = {}
    for what, new_choice, new_setup in _candidates(key, choice, setup, base, alternatives):
        if what in changes:
            continue
        est = _estimate(key, new_choice, new_setup)
        if est is None or est.fit is None or not est.fit.fits:
            continue
        hours, usd = est.time.hours, est.time.usd
        ratio = hours / reference if hours is not None and reference else None
        changes[what] = Change(what, new_choice, new_setup, est.memory.device, est.fit.gpu_memory, hours, usd,
                               ratio, new_choice.method != choice.method)
    ranked = tuple(sorted(changes.values(), key=_rank)[:limit])
    note = "" if ranked else _nothing_fits(base, setup)
    return replace(advice, changes=ranked, note=note)


def _nothing_fits(base: TrainingEstimate, setup: TrainingSetup) -> str:
    assert base.fit is not None
    return (f"no single change tried makes it fit {setup.gpus} x {base.fit.gpu}: {base.fit.gpus_note or 'see below'}; "
            f"{base.fit.batch_text}")


def _candidates(key: SkeletonKey, choice: MethodChoice, setup: TrainingSetup, base: TrainingEstimate,
                alternatives: Sequence[MethodChoice]) -> list[tuple[str, MethodChoice, TrainingSetup]]:
    """Every change worth re-estimating, in no particular order (ranking comes from the re-estimates)."""
    out: list[tuple[str, MethodChoice, TrainingSetup]] = []
    checkpointed = replace(setup, gradient_checkpointing=True)
    if not setup.gradient_checkpointing:
        out.append(("turn on gradient checkpointing", choice, checkpointed))
    for trial, extra in ((setup, ""), (checkpointed, " and gradient checkpointing")):
        if trial is checkpointed and setup.gradient_checkpointing:
            continue
        est = base if trial is setup else _estimate(key, choice, trial)
        largest = est.fit.max_batch_size if est is not None and est.fit is not None else 0
        effective = setup.batch_size * setup.accumulation
        # the largest micro-batch that fits and divides the effective batch, which accumulation then keeps
        smaller = max((b for b in range(1, min(largest, setup.batch_size - 1) + 1) if effective % b == 0), default=0)
        if smaller:
            steps = effective // smaller
            out.append((f"micro-batch {smaller} with {steps} accumulation steps (the same {effective} sequences "
                        f"per optimizer step){extra}", choice, replace(trial, batch_size=smaller, accumulation=steps)))
    if base.fit is not None and base.fit.max_batch_size == 0 and base.fit.max_seq_len > 0:
        length, effective = base.fit.max_seq_len, setup.batch_size * setup.accumulation
        out.append((f"cut sequences to {length} tokens at micro-batch 1 with {effective} accumulation steps", choice,
                    replace(setup, seq_len=length, batch_size=1, accumulation=effective)))
    if OPTIMIZERS[setup.optimizer].full_precision_adam and base.memory.optimizer > 0.05 * base.memory.device:
        out.append(("8-bit AdamW (bitsandbytes) instead of fp32 states", choice, replace(setup, optimizer=EIGHT_BIT)))
    if SHARDINGS[setup.sharding].shards and setup.offload == "none":
        out.append(("offload the optimizer states to CPU memory", choice, replace(setup, offload="optimizer")))
    if SHARDINGS[setup.sharding].shards_weights and setup.offload != "params":
        out.append(("offload the parameters and optimizer states to CPU memory", choice,
                    replace(setup, offload="params")))
    out += _more_gpus(key, choice, setup, base)
    out += _larger_gpu(choice, setup, base)
    out += [(f"switch to {alt.label()}", alt, setup) for alt in alternatives if alt.method != choice.method]
    return out


def _more_gpus(key: SkeletonKey, choice: MethodChoice, setup: TrainingSetup,
               base: TrainingEstimate) -> list[tuple[str, MethodChoice, TrainingSetup]]:
    """Sharding over the budget's GPUs where a mode fits that many, else the fewest GPUs of each mode that fits
    (with checkpointing too when the setup has it off and no mode fits without)."""
    out: list[tuple[str, MethodChoice, TrainingSetup]] = []
    for trial, extra in ((setup, ""), (replace(setup, gradient_checkpointing=True), " and gradient checkpointing")):
        if extra and setup.gradient_checkpointing:
            break
        est = base if not extra else _estimate(key, choice, trial)
        if est is None or est.fit is None:
            continue
        sharded = {m: n for m, n in est.fit.min_gpus.items() if SHARDINGS[m].shards}
        on_budget = [m for m in sharded if sharded[m] <= setup.gpus]  # lightest stage first (SHARDINGS order)
        fewest = min(sharded, key=lambda m: sharded[m], default=None)
        for mode in dict.fromkeys([*on_budget[:1], *([fewest] if fewest is not None else [])]):
            gpus = max(sharded[mode], setup.gpus)
            offload = setup.offload if SHARDINGS[mode].shards_weights or setup.offload != "params" else "optimizer"
            where = f"over the budget's {gpus} GPUs" if gpus == setup.gpus else f"on {gpus} x {est.fit.gpu}"
            out.append((f"shard with {SHARDING_NAMES[mode]} {where}{extra}", choice,
                        replace(trial, gpus=gpus, sharding=mode, offload=offload if SHARDINGS[setup.sharding].shards
                                else "none")))
        if out:
            break
    return out


def _larger_gpu(choice: MethodChoice, setup: TrainingSetup,
                base: TrainingEstimate) -> list[tuple[str, MethodChoice, TrainingSetup]]:
    """The smallest catalogue GPU with room for the unchanged step (its price from the catalogue)."""
    need = base.memory.device
    roomy = sorted((g for g in catalogue().values() if g.memory_bytes >= need),
                   key=lambda g: (g.memory_gib, g.usd_per_hour))
    return [] if not roomy else [(f"a larger GPU: {setup.gpus} x {roomy[0].id}", choice,
                                  replace(setup, gpu=roomy[0].id, gpu_price=None))]
