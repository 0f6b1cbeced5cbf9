"""The recommender: rank FFT and PEFT methods for a task, a model, a GPU budget and the user's priorities.

Every method is scored on five criteria, each in [0, 1] against the best candidate (fitting or not):
- accuracy: the pessimistic end (low bound) of the 80% interval of the in-domain gap to FFT (FFT = 0), so a
  method cannot win on a wide guess; a candidate `ACCURACY_SPAN` points behind the best scores 0;
- robustness: the worse of the out-of-distribution and adversarial estimates (`robustness`), same span;
- cost: dollars for all tasks; a candidate `COST_SPAN` decades dearer than the cheapest scores 0;
- time: training hours for all tasks on the budget (time to deploy), `TIME_SPAN` decades;
- storage: bytes kept for all tasks (one base plus an adapter per task, or a full copy per task),
  `STORAGE_SPAN` decades.
The score is the priority-weighted mean of the criteria (priorities default to 1; 0 ignores a criterion).
Methods that do not fit the budget rank after every method that does, and methods no pair reports on the
task type (their gap is then the prior, "indistinguishable from FFT", not evidence) after those with evidence.
The research's selection guide (limited resources, complex tasks, rapid deployment, many tasks, edge
deployment, large datasets) is reported as numbers from these estimates, never applied as a fixed rule.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Any

from core.counting import ParameterCount
from core.errors import InputError
from core.estimate import MethodEstimate
from core.gap.features import RANKED_METHODS, GapScenario
from core.gap.model import GapModel, GapPrediction, gap_model
from core.gap.resources import Budget, Plan, gpus_by_memory, plan_methods, plan_one
from core.gap.robustness import robustness
from core.gap.theory import crossover_note, data_note
from core.memory.gpus import find_gpu
from core.models import ResolvedModel, resolve_model
from core.registry import METHODS, MethodChoice, get_method, method_ids
from core.units import GIB, human_bytes

PRIORITIES: tuple[str, ...] = ("accuracy", "cost", "robustness", "storage", "time")
ACCURACY_SPAN = 10.0  # points of gap
ROBUSTNESS_SPAN = 10.0  # points of gap
COST_SPAN = 1.0  # decades of dollars
TIME_SPAN = 1.0  # decades of hours
STORAGE_SPAN = 2.0  # decades of bytes


@dataclass(frozen=True)
class RecommendRequest:
    """What the recommender needs; `methods` empty means every method TuneWise can estimate."""

    task_type: str
    train_examples: int
    model: str
    gpu: str
    gpus: int = 1
    tasks: int = 1
    priorities: Mapping[str, float] = field(default_factory=lambda: MappingProxyType(dict.fromkeys(PRIORITIES, 1.0)))
    methods: tuple[str, ...] = ()
    tokens_per_example: int = 512
    epochs: float = 3.0
    micro_batch: int = 4
    usd_per_hour: float | None = None
    gradient_checkpointing: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "gpu", find_gpu(self.gpu).id)
        for name in ("train_examples", "gpus", "tasks"):
            if getattr(self, name) < 1:
                raise InputError(f"{name.replace('_', ' ')} must be at least 1, got {getattr(self, name)}")
        unknown = sorted(set(self.priorities) - set(PRIORITIES))
        if unknown:
            raise InputError(f"unknown priorities {', '.join(unknown)}: choose from {', '.join(PRIORITIES)}")
        weights = {p: float(self.priorities.get(p, 1.0)) for p in PRIORITIES}
        if any(not (math.isfinite(w) and w >= 0) for w in weights.values()) or not sum(weights.values()) > 0:
            raise InputError("priorities must be non-negative numbers, at least one positive, e.g. accuracy=2")
        object.__setattr__(self, "priorities", MappingProxyType(weights))
        ids = tuple(dict.fromkeys(["fft", *(get_method(m).id for m in self.methods or method_ids())]))
        not_estimable = [m for m in ids if not METHODS[m].estimable]
        if not_estimable:
            raise InputError(
                f"methods {', '.join(not_estimable)} exist only as evidence; choose from {', '.join(method_ids())}"
            )
        object.__setattr__(self, "methods", ids)
        if self.usd_per_hour is not None and not self.usd_per_hour > 0:
            raise InputError(f"price per GPU-hour must be positive, got {self.usd_per_hour}")
        self.budget.setup()  # the engine validates micro-batch, tokens per example and epochs

    @property
    def budget(self) -> Budget:
        return Budget(self.gpu, self.gpus, self.micro_batch, self.tokens_per_example, self.train_examples,
                      self.epochs, self.usd_per_hour, self.gradient_checkpointing)  # fmt: skip


@dataclass(frozen=True)
class MethodOption:
    """One ranked method: its plan on the budget, expected gaps, totals for all tasks, score and reason."""

    method: str
    label: str
    fits: bool
    plan: Plan | None
    gap: GapPrediction | None
    robust_gap: float
    storage_bytes: float
    full_copies_bytes: float
    criteria: Mapping[str, float]
    score: float
    reason: str
    error: str = ""
    untested: bool = False  # no pair reports this method on this task type: its gap is the prior, not evidence

    def __post_init__(self) -> None:
        if self.fits and self.plan is None:
            raise ValueError(f"{self.method}: a method that fits needs its plan")
        if self.plan is not None and not 0 <= self.score <= 1:
            raise ValueError(f"{self.method}: score {self.score} outside [0, 1]")

    @property
    def gap_mean(self) -> float:
        return 0.0 if self.gap is None else self.gap.mean

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "method": self.method,
            "label": self.label,
            "fits": self.fits,
            "score": round(self.score, 4),
            "criteria": {k: round(v, 4) for k, v in self.criteria.items()},
            "reason": self.reason,
            "robust_gap": None if math.isnan(self.robust_gap) else round(self.robust_gap, 3),
            "storage_bytes": None if math.isnan(self.storage_bytes) else self.storage_bytes,
            "full_copies_bytes": None if math.isnan(self.full_copies_bytes) else self.full_copies_bytes,
        }
        if self.error:
            out["error"] = self.error
        if self.plan is not None:
            p = self.plan
            out["plan"] = {
                "gpu": p.gpu.id, "gpus": p.gpus, "sharding": p.sharding, "per_gpu_gib": round(p.per_gpu_bytes / GIB, 2),
                "headroom_gib": round(p.headroom_gib, 2), "largest_micro_batch": p.largest_micro_batch,
                "hours_per_task": round(p.hours, 3), "dollars_per_task": round(p.dollars, 2),
            }  # fmt: skip
        if self.gap is not None:
            out["gap"] = {k: v for k, v in self.gap.to_dict(evidence_limit=5).items() if k != "scenario"}
        return out


@dataclass(frozen=True)
class Recommendation:
    """Ranked options, the choice with its rationale, what would make FFT fit, and the selection guide."""

    request: RecommendRequest
    model: str
    options: list[MethodOption]
    choice: MethodOption | None
    rationale: list[str]
    make_fft_fit: list[str]
    guide: list[str]
    notes: list[str]

    def __post_init__(self) -> None:
        if self.choice is not None and not self.choice.fits:
            raise ValueError("the recommended method must fit the budget")

    def to_dict(self) -> dict[str, Any]:
        req = {f.name: getattr(self.request, f.name) for f in fields(self.request)}
        req |= {"priorities": dict(self.request.priorities), "methods": list(self.request.methods)}
        return {
            "request": req,
            "model": self.model,
            "recommended": None if self.choice is None else self.choice.method,
            "rationale": self.rationale,
            "options": [o.to_dict() for o in self.options],
            "make_fft_fit": self.make_fft_fit,
            "selection_guide": self.guide,
            "notes": self.notes,
        }


def _scenario(request: RecommendRequest, choice: MethodChoice, count: ParameterCount) -> GapScenario:
    targets = choice.targets
    return GapScenario(
        task_type=request.task_type,
        method=choice.method,
        base_params_b=count.total_params / 1e9,
        train_examples=request.train_examples,
        rank=choice.rank if choice.method in RANKED_METHODS else None,
        trainable_pct=100 * count.trainable_share if count.trainable_share > 0 else None,
        targets=",".join(targets) if isinstance(targets, tuple) else targets,
    )


def _ratio_score(value: float, best: float, span: float) -> float:
    """1 at the best value, 0 at `span` decades worse (log scale: costs and sizes span orders of magnitude)."""
    if best <= 0 or value <= 0:
        return 1.0
    return 1.0 - min(max(math.log10(value / best) / span, 0.0), 1.0)


def _gap_score(value: float, best: float, span: float) -> float:
    return 1.0 - min(max((best - value) / span, 0.0), 1.0)


def _tasks(n: int) -> str:
    return f"{n} task{'s' if n != 1 else ''}"


def _gib(nbytes: float) -> str:
    return f"{nbytes / GIB:.1f} GiB"


def _reason(option: dict[str, Any], request: RecommendRequest) -> str:
    p: Plan = option["plan"]
    fit = (
        f"fits {p.gpus} x {p.gpu.id} ({'data parallel' if p.sharding == 'none' else p.sharding}) with "
        f"{p.headroom_gib:+.1f} GiB headroom per GPU, "
        f"largest micro-batch {p.largest_micro_batch}"
        if p.fits
        else f"does not fit {p.gpus} x {p.gpu.id}: needs {_gib(p.per_gpu_bytes)} per GPU of {p.gpu.memory_gib:.1f} GiB"
    )
    gap: GapPrediction | None = option["gap"]
    if gap is None:
        accuracy = "the reference (gap 0 points)"
    elif option["untested"]:
        accuracy = (
            f"gap {gap.mean:+.1f} points (80% interval {gap.low:+.1f} to {gap.high:+.1f}): no pair reports this "
            f"method on {request.task_type}, so this is the prior, not evidence"
        )
    elif gap.n_evidence == 0:
        accuracy = (
            f"gap {gap.mean:+.1f} points (80% interval {gap.low:+.1f} to {gap.high:+.1f}, {gap.verdict}): "
            f"{option['reported']} pairs report this method on {request.task_type}, none at a close model or data size"
        )
    else:
        accuracy = (
            f"gap {gap.mean:+.1f} points (80% interval {gap.low:+.1f} to {gap.high:+.1f}, {gap.verdict}; "
            f"{gap.n_evidence} warehouse pairs from {gap.n_sources} source{'s' if gap.n_sources != 1 else ''})"
        )
    tasks = request.tasks
    return (
        f"{option['label']}: {fit}; {accuracy}; {tasks * p.hours:.1f} h wall-clock on the budget and "
        f"${tasks * p.dollars:,.0f} for {_tasks(tasks)}; storage {human_bytes(option['storage'])} "
        f"(full copies: {human_bytes(option['full'])})"
    )


def recommend(
    request: RecommendRequest,
    *,
    wh: Any | None = None,
    model: GapModel | None = None,
    resolved: ResolvedModel | None = None,
) -> Recommendation:
    """Rank the request's methods (see the module docstring); `model`/`resolved` skip the warehouse or Hub."""
    gm = model if model is not None else gap_model(wh)
    gm.check(GapScenario(request.task_type, "lora"))
    resolved = resolved if resolved is not None else resolve_model(request.model)
    planned = plan_methods(resolved, [MethodChoice(m) for m in request.methods], request.budget)
    fft_count = next(est.count for est, _ in planned if est.method == "fft")
    if fft_count is None:
        raise InputError(f"{resolved.name}: full fine-tuning cannot be counted, so there is nothing to compare against")
    raw = _raw_options(resolved, planned, request, gm=gm, full_copy=float(fft_count.adapter_bytes))
    skipped = [r["skipped"] for r in raw if "skipped" in r]
    options = _score([r for r in raw if "skipped" not in r], request) + skipped
    fitting = [o for o in options if o.fits]
    choice_opt = fitting[0] if fitting else None
    fft = next(o for o in options if o.method == "fft")
    return Recommendation(
        request=request,
        model=resolved.name,
        options=options,
        choice=choice_opt,
        rationale=_rationale(choice_opt, options, request),
        make_fft_fit=[] if fft.fits else _make_fft_fit(resolved, fft_count, request, options=options, gm=gm),
        guide=_guide(options, request, gm),
        notes=[
            "gap = PEFT minus FFT in points of a 0-100 metric (positive = PEFT better), predicted from the warehouse "
            "pairs; memory, hours and dollars from core.memory (bf16 mixed precision, AdamW, gradient checkpointing "
            "as requested, its default model-FLOPs utilisation and the GPU catalogue's editable prices)",
        ],
    )


def _raw_options(
    resolved: ResolvedModel,
    planned: list[tuple[MethodEstimate, Plan | None]],
    request: RecommendRequest,
    *,
    gm: GapModel,
    full_copy: float,
) -> list[dict[str, Any]]:
    """Per method: its count, plan on the budget, gap prediction, robustness and storage for all tasks (or,
    under "skipped", why it cannot be planned on this model). `full_copy` is one full checkpoint, in bytes."""
    raw: list[dict[str, Any]] = []
    for est, plan in planned:
        choice = MethodChoice(est.method)  # registry defaults: methods are compared as published
        count = est.count
        if count is None or plan is None:
            why = est.error or est.memory_error or "its memory could not be estimated"
            option = MethodOption(
                choice.method, choice.label(), False, None, None, math.nan, math.nan, math.nan, {}, -1.0,
                f"{choice.label()}: not applicable to {resolved.name}: {why}", why,
            )  # fmt: skip
            raw.append({"choice": choice, "skipped": option})
            continue
        reported = gm.reported(choice.method, request.task_type)
        if choice.method == "fft":
            gap, robust, storage = None, 0.0, request.tasks * full_copy
        else:
            scenario = _scenario(request, choice, count)
            gap = gm.predict(scenario)
            rob = robustness(gm.pairs, list(gm.claims), scenario)
            known = [e.mean for e in (rob.ood, rob.adversarial) if e.mean is not None]
            robust = min(known) if known else gap.mean
            storage = full_copy + request.tasks * count.adapter_bytes
        raw.append({"choice": choice, "count": count, "label": choice.label(), "plan": plan, "gap": gap,
                    "robust": robust, "storage": storage, "full": request.tasks * full_copy, "reported": reported,
                    "untested": gap is not None and reported == 0})  # fmt: skip
    return raw


def _score(raw: list[dict[str, Any]], request: RecommendRequest) -> list[MethodOption]:
    if not raw:
        return []
    tasks = request.tasks
    best_gap = max(0.0 if r["gap"] is None else r["gap"].low for r in raw)
    best_robust = max(r["robust"] for r in raw)
    cheapest = min(tasks * r["plan"].dollars for r in raw)
    fastest = min(tasks * r["plan"].hours for r in raw)
    smallest = min(r["storage"] for r in raw)
    weights = request.priorities
    options = []
    for r in raw:
        p: Plan = r["plan"]
        gap_low = 0.0 if r["gap"] is None else r["gap"].low
        criteria = {
            "accuracy": _gap_score(gap_low, best_gap, ACCURACY_SPAN),
            "robustness": _gap_score(r["robust"], best_robust, ROBUSTNESS_SPAN),
            "cost": _ratio_score(tasks * p.dollars, cheapest, COST_SPAN),
            "time": _ratio_score(tasks * p.hours, fastest, TIME_SPAN),
            "storage": _ratio_score(r["storage"], smallest, STORAGE_SPAN),
        }
        score = sum(weights[k] * v for k, v in criteria.items()) / sum(weights.values())
        options.append(
            MethodOption(r["choice"].method, r["label"], p.fits, p, r["gap"], r["robust"], r["storage"], r["full"],
                         MappingProxyType(criteria), score, _reason(r, request), untested=r["untested"])
        )  # fmt: skip
    return sorted(options, key=lambda o: (not o.fits, o.untested, -o.score, o.method))


def _rationale(choice: MethodOption | None, options: list[MethodOption], request: RecommendRequest) -> list[str]:
    if choice is None:
        return ["no method fits this GPU budget: see what would make FFT fit, or add GPUs"]
    weights = request.priorities
    parts = ", ".join(f"{k} {choice.criteria[k]:.2f} (x{weights[k]:g})" for k in PRIORITIES)
    lines = [f"recommended: {choice.label}, score {choice.score:.2f} of 1 ({parts})", choice.reason]
    others = [o for o in options if o is not choice and o.plan is not None]
    if others:
        runner = others[0]
        why = " (does not fit)" if not runner.fits else " (no evidence on this task)" if runner.untested else ""
        lines.append(f"next: {runner.label}, score {runner.score:.2f}{why}")
    fft = next(o for o in options if o.method == "fft")
    if fft is not choice and fft.plan is not None:
        if not fft.fits:
            lines.append("full fine-tuning does not fit the budget, so a PEFT method is recommended")
        elif choice.gap is not None:
            lines.append(
                f"against FFT: {choice.gap.summary()}; FFT would cost "
                f"${request.tasks * fft.plan.dollars:,.0f} and store {human_bytes(fft.storage_bytes)}"
            )
    return lines


def _make_fft_fit(
    resolved: ResolvedModel,
    count: ParameterCount,
    request: RecommendRequest,
    *,
    options: list[MethodOption],
    gm: GapModel,
) -> list[str]:
    """Concrete ways to fit FFT: more GPUs with ZeRO-3, CPU offload, a larger GPU type, or QLoRA instead."""
    fft, budget, tasks = MethodChoice("fft"), request.budget, request.tasks
    out = []
    for offload, what in (("none", "ZeRO-3 (states sharded over GPUs)"), ("optimizer", "ZeRO-3 with CPU offload")):
        probe = plan_one(resolved, fft, budget, gpus=max(request.gpus, 2), sharding="zero3", offload=offload)
        n = None if probe is None else probe.min_gpus.get("zero3")
        p = None if n is None else plan_one(resolved, fft, budget, gpus=n, sharding="zero3", offload=offload)
        if p is None:
            out.append(
                f"{what}: no number of {request.gpu} GPUs fits FFT at micro-batch {request.micro_batch}; lower the "
                "micro-batch or the tokens per example"
            )
            continue
        moved = (
            f", the optimizer states ({_gib(_unsharded_optimizer(options))}) in CPU memory" if offload != "none" else ""
        )
        more = f"{n - request.gpus} more than the budget" if n > request.gpus else "fits the budget's count"
        out.append(
            f"{what}: {n} x {p.gpu.id} ({more}), {_gib(p.per_gpu_bytes)} per GPU{moved}; "
            f"{tasks * p.hours:.1f} h and ${tasks * p.dollars:,.0f} for {_tasks(tasks)}"
        )
    sharding = "zero3" if request.gpus > 1 else "none"
    for gpu in gpus_by_memory():
        p = plan_one(resolved, fft, budget, gpus=request.gpus, sharding=sharding, gpu=gpu.id)
        if p is not None and p.fits:
            out.append(f"a larger GPU: {request.gpus} x {gpu.id} ({gpu.memory_gib:.0f} GiB each) fits FFT")
            break
    qlora = next((o for o in options if o.method == "qlora"), None)
    if qlora is None:  # not among the ranked methods: plan it here, since it is the usual way out
        planned = plan_methods(resolved, [MethodChoice("qlora")], budget)
        raw = [r for r in _raw_options(resolved, planned, request, gm=gm, full_copy=float(count.adapter_bytes))
               if "plan" in r]  # fmt: skip
        qlora = _score(raw, request)[0] if raw else None
    if qlora is not None and qlora.plan is not None and qlora.gap is not None:
        status = "fits" if qlora.fits else "does not fit either"
        out.append(
            f"QLoRA instead: {status} ({_gib(qlora.plan.per_gpu_bytes)} per GPU, 4-bit base); expected gap "
            f"{qlora.gap.mean:+.1f} points (80% interval {qlora.gap.low:+.1f} to {qlora.gap.high:+.1f})"
        )
    return out


def _unsharded_optimizer(options: list[MethodOption]) -> float:
    """FFT's optimizer states on one GPU without sharding: what offloading moves to CPU memory."""
    fft = next(o for o in options if o.method == "fft")
    assert fft.plan is not None
    return fft.plan.optimizer_bytes * (fft.plan.gpus if fft.plan.sharding != "none" else 1)


def _guide(options: list[MethodOption], request: RecommendRequest, gm: GapModel) -> list[str]:
    """The research's selection guide, each item quantified from this request's estimates."""
    planned = [o for o in options if o.plan is not None]
    fft = next(o for o in planned if o.method == "fft")
    peft = [o for o in planned if o.method != "fft"]
    lines = []
    assert fft.plan is not None
    lines.append(
        f"limited resources: FFT needs {_gib(fft.plan.per_gpu_bytes)} per GPU; the budget has "
        f"{request.gpus} x {fft.plan.gpu.memory_gib:.1f} GiB ({'fits' if fft.fits else 'does not fit'})"
    )
    if peft:
        tested = [o for o in peft if not o.untested] or peft
        best = max(tested, key=lambda o: o.gap_mean)
        assert best.gap is not None
        lines.append(
            f"accuracy on {request.task_type}: the best PEFT option ({best.label}) is expected at {best.gap.mean:+.1f} "
            f"points (80% interval {best.gap.low:+.1f} to {best.gap.high:+.1f}): {best.gap.verdict}"
        )
        fastest = min(peft, key=lambda o: o.plan.hours if o.plan else math.inf)
        assert fastest.plan is not None
        lines.append(
            f"rapid deployment: {fastest.label} trains in {fastest.plan.hours:.1f} h per task vs FFT "
            f"{fft.plan.hours:.1f} h on this budget"
        )
        smallest = min(peft, key=lambda o: o.storage_bytes)
        lines.append(
            f"{_tasks(request.tasks)}: {smallest.label} keeps {human_bytes(smallest.storage_bytes)} "
            f"(one base + adapters) vs {human_bytes(fft.storage_bytes)} of full copies"
        )
        one_adapter = (smallest.storage_bytes - fft.storage_bytes / request.tasks) / request.tasks
        lines.append(
            f"edge deployment: one {smallest.label} adapter is {human_bytes(one_adapter)} vs a full copy of "
            f"{human_bytes(fft.storage_bytes / request.tasks)} to ship"
        )
        lines.append(f"large datasets ({request.train_examples:,} examples): {data_note(gm.linear)}")
        cross = crossover_note(gm.linear, best.gap.mean, math.log10(request.train_examples), gm.examples_range())
        if cross is not None:
            lines.append(cross)
    return lines
