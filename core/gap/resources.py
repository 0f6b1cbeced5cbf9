"""Memory fit, hours and dollars per method for the recommender, read from the engine (`core.memory`).

The recommender trains every method the same way: the request's precision, AdamW, micro-batch, tokens per
example, gradient checkpointing and MFU, plain data parallelism when the method fits, else ZeRO-3 over the
budget's GPUs (also when it fits neither way: the lowest per-GPU peak on the budget). Other changes are
`core.advice`'s, to say what would make a method fit. A plan that does not fit has no hours or dollars.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from core.estimate import MethodEstimate, estimate
from core.memory.gpus import Gpu, catalogue, find_gpu
from core.memory.setup import DEFAULT_MFU, TrainingSetup
from core.models import ResolvedModel
from core.registry import MethodChoice
from core.scenario import Scenario
from core.units import GIB


@dataclass(frozen=True)
class Budget:
    """How each fine-tune runs: GPU type and count, micro-batch, tokens per example, examples and epochs."""

    gpu: str
    gpus: int
    micro_batch: int
    tokens_per_example: int
    train_examples: int
    epochs: float
    usd_per_hour: float | None = None
    gradient_checkpointing: bool = True
    precision: str = "bf16-mixed"
    mfu: float = DEFAULT_MFU

    def setup(
        self, *, gpus: int | None = None, sharding: str = "none", offload: str = "none", gpu: str | None = None
    ) -> TrainingSetup:
        """The engine's training setup (validated there: every bad value is one InputError line)."""
        return TrainingSetup(
            batch_size=self.micro_batch,
            seq_len=self.tokens_per_example,
            gradient_checkpointing=self.gradient_checkpointing,
            gpus=self.gpus if gpus is None else gpus,
            sharding=sharding,
            offload=offload,
            gpu=gpu or self.gpu,
            gpu_price=self.usd_per_hour,
            dataset_tokens=self.train_examples * self.tokens_per_example,
            epochs=self.epochs,
            precision=self.precision,
            mfu=self.mfu,
        )


@dataclass(frozen=True)
class Plan:
    """One method on a GPU budget: per-GPU peak memory, fit and headroom, largest micro-batch (in words: `batch`),
    hours and dollars of one fine-tune (only when it fits; `time_note` says why not), and the fewest GPUs per
    sharding mode at this micro-batch (`fewest` in words)."""

    method: str
    gpu: Gpu
    gpus: int
    sharding: str
    offload: str
    per_gpu_bytes: int
    fits: bool
    headroom_bytes: int
    largest_micro_batch: int
    hours: float | None
    dollars: float | None
    optimizer_bytes: int
    min_gpus: dict[str, int]
    batch: str
    fewest: str
    time_note: str = ""

    def __post_init__(self) -> None:
        if self.gpus < 1 or self.per_gpu_bytes < 0 or min(self.hours or 0, self.dollars or 0) < 0:
            raise ValueError(f"{self.method}: a plan needs at least one GPU and non-negative memory, hours, dollars")
        if (self.hours is None) != bool(self.time_note):
            raise ValueError(f"{self.method}: a plan has hours or says why it has none")

    @property
    def headroom_gib(self) -> float:
        return self.headroom_bytes / GIB


def _plan(est: MethodEstimate, setup: TrainingSetup) -> Plan | None:
    training = est.training
    if training is None or training.fit is None:
        return None
    fit = training.fit
    return Plan(
        method=est.method,
        gpu=find_gpu(fit.gpu, price=setup.gpu_price),
        gpus=setup.gpus,
        sharding=setup.sharding,
        offload=setup.offload,
        per_gpu_bytes=training.memory.total,
        fits=fit.fits,
        headroom_bytes=fit.headroom,
        largest_micro_batch=fit.max_batch_size,
        hours=training.time.hours,
        dollars=training.time.usd,
        optimizer_bytes=training.memory.optimizer,
        min_gpus=dict(fit.min_gpus),
        batch=fit.batch_text,
        fewest=fit.fewest_text,
        time_note=training.time.note,
    )


def plan_methods(
    resolved: ResolvedModel, choices: Sequence[MethodChoice], budget: Budget
) -> list[tuple[MethodEstimate, Plan | None]]:
    """Each method's count and plan: data parallel when it fits, else ZeRO-3 over the budget's GPUs (kept when
    it lowers the per-GPU peak, so a plan that fits neither way shows the budget's lowest figure)."""
    setup = budget.setup()
    report = estimate(Scenario(resolved, tuple(choices), training=setup), skip_inapplicable=True)
    out = [(est, _plan(est, setup)) for est in report.methods]
    if budget.gpus > 1:
        zero3 = budget.setup(sharding="zero3")
        for i, (est, plan) in enumerate(out):
            if plan is not None and not plan.fits:
                choice = next(c for c in choices if c.method == est.method)
                sharded = estimate(Scenario(resolved, (choice,), training=zero3), skip_inapplicable=True).methods[0]
                better = _plan(sharded, zero3)
                if better is not None and (better.fits or better.per_gpu_bytes < plan.per_gpu_bytes):
                    out[i] = (sharded, better)
    return out


def plan_one(
    resolved: ResolvedModel,
    choice: MethodChoice,
    budget: Budget,
    *,
    gpus: int,
    sharding: str,
    offload: str = "none",
    gpu: str | None = None,
) -> Plan | None:
    """One method under an explicit setup (for the 'what would make FFT fit' options)."""
    setup = budget.setup(gpus=gpus, sharding=sharding, offload=offload, gpu=gpu)
    return _plan(estimate(Scenario(resolved, (choice,), training=setup), skip_inapplicable=True).methods[0], setup)


def gpus_by_memory() -> list[Gpu]:
    """The engine's GPU catalogue, smallest memory first."""
    return sorted(catalogue().values(), key=lambda g: (g.memory_gib, g.usd_per_hour))
