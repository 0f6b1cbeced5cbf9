"""The recommender: rank FFT and PEFT methods for a task, a model, a GPU budget and the user's priorities.

Every method is scored on five criteria, each in [0, 1] against the best candidate (fitting or not):
- accuracy: the pessimistic end (low bound) of the 80% interval of the in-domain gap to FFT (FFT = 0), so a
  method cannot win on a wide guess; a candidate `accuracy_span` points behind the best scores 0;
- robustness: the low bound of that method's (or family's) out-of-distribution evidence; no evidence scores
  as the worst known, and the reason says so;
- cost: dollars for all tasks; a candidate `cost_span` decades dearer than the cheapest scores 0;
- time: training hours for all tasks on the budget (time to deploy), `time_span` decades;
- storage: bytes kept for all tasks (one base plus an adapter per task, or a full copy per task).
The score is the priority-weighted mean of the criteria (priorities default to 1; 0 ignores a criterion).

Ranking follows one stated rule, `RANKING` (the rationale prints it, a test checks it is the applied order):
methods that fit first; among them, the contenders (their gap interval overlaps that of the most accurate option
that fits: indistinguishable on accuracy at 80%) first; within each group, the well evidenced first (FFT, the
reference, or a method with `min_evidence` pairs of its own on the task type); then the score. So a method with
one pair never outranks one with forty because it is a little faster, and a method whose interval lies wholly
below the best is never chosen for its price. The research's selection guide is reported as numbers from these
estimates, never applied as a fixed rule.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Any

from core.advice import Advice, dollars, duration, make_it_fit
from core.counting import ParameterCount
from core.errors import InputError
from core.gap.features import RANKED_METHODS, GapScenario
from core.gap.model import GapModel, GapPrediction, gap_model
from core.gap.resources import Budget, Plan, plan_methods
from core.gap.robustness import ConditionEstimate, robustness
from core.gap.settings import PRIORITIES
from core.gap.theory import data_note
from core.memory.budget import SHARDING_NAMES
from core.memory.gpus import find_gpu
from core.memory.setup import DEFAULT_MFU, PRECISIONS
from core.models import ResolvedModel, resolve_model
from core.registry import METHODS, PEFT_DEFAULT, REFERENCE, MethodChoice, candidate_ids, get_method, method_ids
from core.skeleton_key import SkeletonKey, default_task
from core.units import GIB, human_bytes

PRACTICE_DEFAULTS: tuple[str, ...] = ("lora", "qlora")  # what practitioners reach for first (LoRA Without Regret)
# The adapter settings LoRA-style methods share for an equal comparison start at the registry's LoRA defaults,
# the same ones the Memory page and `estimate` start at.
SHARED_KNOBS: tuple[str, ...] = ("rank", "targets", "dropout")
DEFAULT_RANK: int = METHODS["lora"].defaults["rank"]
DEFAULT_TARGETS: str = METHODS["lora"].defaults["targets"]


@dataclass(frozen=True)
class RecommendSettings:
    """The recommender's constants in one place: the criteria's spans and the evidence rule."""

    accuracy_span: float = 10.0  # points of gap
    robustness_span: float = 10.0  # points of gap
    cost_span: float = 1.0  # decades of dollars
    time_span: float = 1.0  # decades of hours
    storage_span: float = 2.0  # decades of bytes
    min_evidence: int = 10  # a method's own pairs on the task type to count as well evidenced

    def __post_init__(self) -> None:
        spans = (self.accuracy_span, self.robustness_span, self.cost_span, self.time_span, self.storage_span)
        if any(not s > 0 for s in spans) or self.min_evidence < 1:
            raise ValueError("spans must be positive and min_evidence at least 1")


SETTINGS = RecommendSettings()


@dataclass(frozen=True)
class RecommendRequest:
    """What the recommender needs; `methods` empty means the registry's declared candidates (`candidate_ids`)."""

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
    precision: str = "bf16-mixed"
    mfu: float = DEFAULT_MFU
    rank: int = DEFAULT_RANK
    targets: str = DEFAULT_TARGETS
    equal_settings: bool = True  # LoRA-style methods share rank, targets and dropout; False: each its own defaults

    def __post_init__(self) -> None:
        object.__setattr__(self, "gpu", find_gpu(self.gpu).id)
        if self.precision not in PRECISIONS:
            raise InputError(f"precision {self.precision!r} is not one of {', '.join(PRECISIONS)}")
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
        ids = tuple(dict.fromkeys([REFERENCE, *(get_method(m).id for m in self.methods or candidate_ids())]))
        not_estimable = [m for m in ids if not METHODS[m].estimable]
        if not_estimable:
            raise InputError(
                f"methods {', '.join(not_estimable)} exist only as evidence; choose from {', '.join(method_ids())}"
            )
        object.__setattr__(self, "methods", ids)
        if self.usd_per_hour is not None and not self.usd_per_hour > 0:
            raise InputError(f"price per GPU-hour must be positive, got {self.usd_per_hour}")
        self.budget.setup()  # the engine validates micro-batch, tokens per example, epochs and MFU
        self.choice("lora")  # the registry validates the shared rank and targets

    @property
    def budget(self) -> Budget:
        return Budget(self.gpu, self.gpus, self.micro_batch, self.tokens_per_example, self.train_examples,
                      self.epochs, self.usd_per_hour, self.gradient_checkpointing, self.precision,
                      self.mfu)  # fmt: skip

    def choice(self, method: str) -> MethodChoice:
        """The method as compared: with `equal_settings`, a LoRA-style method (one that takes exactly LoRA's knobs)
        takes the shared rank, targets and LoRA's dropout; every other method keeps its registry defaults."""
        spec = get_method(method)
        if not self.equal_settings or set(spec.defaults) != set(METHODS["lora"].defaults):
            return MethodChoice(spec.id)
        lora = METHODS["lora"].defaults
        return MethodChoice(spec.id, rank=self.rank, targets=self.targets, dropout=lora["dropout"])

    def settings_text(self) -> str:
        """Every assumption behind the numbers, in one line (what the page and the CLI print under them)."""
        on = "peft's default modules" if self.targets == PEFT_DEFAULT else self.targets
        adapters = (f"LoRA-style methods at r={self.rank} on {on} with LoRA's dropout (equal settings)"
                    if self.equal_settings else "each method at its own registry defaults (settings differ)")
        return (f"micro-batch {self.micro_batch} x {self.tokens_per_example} tokens per GPU, {self.epochs:g} epochs "
                f"of {self.train_examples:,} examples, gradient checkpointing "
                f"{'on' if self.gradient_checkpointing else 'off'}, {self.precision}, AdamW, "
                f"MFU {self.mfu:.0%}; {adapters}")


@dataclass(frozen=True)
class Candidate:
    """One method planned on the budget, before scoring: count, plan, gaps and storage for all tasks."""

    choice: MethodChoice
    count: ParameterCount
    plan: Plan
    gap: GapPrediction | None  # None for FFT, the reference
    robust: ConditionEstimate | None  # None for FFT; `known` is False when the method has no ood evidence
    storage_bytes: float
    full_copies_bytes: float
    reported: int  # pairs of this very method on the task type

    @property
    def label(self) -> str:
        return self.choice.label()

    @property
    def evidenced(self) -> bool:
        """FFT (the reference) or a method with `min_evidence` pairs of its own on the task type."""
        return self.gap is None or self.reported >= SETTINGS.min_evidence

    @property
    def low(self) -> float:
        return 0.0 if self.gap is None else self.gap.low

    @property
    def high(self) -> float:
        return 0.0 if self.gap is None else self.gap.high


@dataclass(frozen=True)
class MethodOption:
    """One ranked method: its plan on the budget (None: it cannot be planned on this model, see `error`),
    expected gaps, totals for all tasks, criteria, score and reason."""

    method: str
    label: str
    reason: str
    candidate: Candidate | None = None
    criteria: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))
    score: float = 0.0
    indistinguishable: bool = False  # its gap interval overlaps the most accurate fitting option's
    error: str = ""

    def __post_init__(self) -> None:
        if self.candidate is None and not self.error:
            raise ValueError(f"{self.method}: an option without a plan needs the reason it has none")
        if not 0 <= self.score <= 1:
            raise ValueError(f"{self.method}: score {self.score} outside [0, 1]")

    @property
    def plan(self) -> Plan | None:
        return None if self.candidate is None else self.candidate.plan

    @property
    def fits(self) -> bool:
        return self.candidate is not None and self.candidate.plan.fits

    @property
    def gap(self) -> GapPrediction | None:
        return None if self.candidate is None else self.candidate.gap

    @property
    def robust(self) -> ConditionEstimate | None:
        return None if self.candidate is None else self.candidate.robust

    @property
    def storage_bytes(self) -> float | None:
        return None if self.candidate is None else self.candidate.storage_bytes

    @property
    def reported(self) -> int:
        return 0 if self.candidate is None else self.candidate.reported

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "method": self.method, "label": self.label, "fits": self.fits, "score": round(self.score, 4),
            "criteria": {k: round(v, 4) for k, v in self.criteria.items()}, "reason": self.reason,
            "indistinguishable": self.indistinguishable, "reported_pairs": self.reported,
        }  # fmt: skip
        if self.error:
            out["error"] = self.error
        c = self.candidate
        if c is not None:
            p = c.plan
            out["plan"] = {
                "gpu": p.gpu.id, "gpus": p.gpus, "sharding": p.sharding, "per_gpu_gib": round(p.per_gpu_bytes / GIB, 2),
                "headroom_gib": round(p.headroom_gib, 2), "largest_micro_batch": p.batch, "fewest_gpus": p.fewest,
            }  # fmt: skip
            if p.hours is not None and p.dollars is not None:
                out["plan"] |= {"hours_per_task": round(p.hours, 3), "dollars_per_task": round(p.dollars, 2)}
            else:
                out["plan"]["time"] = p.time_note
            out["storage_bytes"], out["full_copies_bytes"] = c.storage_bytes, c.full_copies_bytes
            out["robustness"] = None if c.robust is None else c.robust.to_dict()
        if self.gap is not None:
            out["gap"] = {k: v for k, v in self.gap.to_dict(evidence_limit=5).items() if k != "scenario"}
        return out


@dataclass(frozen=True)
class Recommendation:
    """Ranked options, the choice with its rationale, what would make FFT fit (and, when nothing fits, the best
    PEFT option: `make_peft_fit`), from `core.advice`, and the selection guide."""

    request: RecommendRequest
    model: str
    options: list[MethodOption]
    choice: MethodOption | None
    best_peft: MethodOption | None  # the highest-ranked PEFT option: the one "best PEFT option" everywhere
    rationale: list[str]
    make_fft_fit: list[str]
    guide: list[str]
    notes: list[str]
    fft_advice: Advice | None = None
    peft_advice: Advice | None = None

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
            "best_peft": None if self.best_peft is None else self.best_peft.method,
            "rationale": self.rationale,
            "options": [o.to_dict() for o in self.options],
            "make_fft_fit": self.make_fft_fit,
            "make_peft_fit": [] if self.peft_advice is None else self.peft_advice.lines(),
            "assumptions": self.request.settings_text(),
            "selection_guide": self.guide,
            "notes": self.notes,
        }


def _scenario(request: RecommendRequest, choice: MethodChoice, count: ParameterCount) -> GapScenario:
    # peft's default modules are named by the counter, so the evidence sees attention-only or all-linear.
    targets = count.targeted_modules if choice.targets == PEFT_DEFAULT else choice.targets
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


def _accuracy_text(c: Candidate, request: RecommendRequest) -> str:
    gap = c.gap
    if gap is None:
        return "the reference (gap 0 points)"
    interval = (
        f"gap {gap.mean:+.1f} points (80% interval {gap.low:+.1f} to {gap.high:+.1f}, {gap.verdict}; "
        f"P(FFT ahead by > {gap.margin:g}) {gap.p_fft_better:.0%})"
    )
    if c.reported == 0:
        return f"{interval}: no pair reports this method on {request.task_type}; evidence: {gap.evidence_basis}"
    return (
        f"{interval}; {c.reported} pairs of its own on {request.task_type}; evidence shown: {gap.n_evidence} "
        f"{gap.evidence_basis} from {gap.n_sources} source{'s' if gap.n_sources != 1 else ''}"
    )


def _robust_text(c: Candidate) -> str:
    if c.robust is None:
        return "robustness: the reference"
    return f"robustness: {c.robust.summary()}"


def _mode(sharding: str) -> str:
    return SHARDING_NAMES[sharding]


def _reason(c: Candidate, request: RecommendRequest) -> str:
    p = c.plan
    tasks = request.tasks
    if p.fits and p.hours is not None and p.dollars is not None:
        fit = (f"fits {p.gpus} x {p.gpu.id} ({_mode(p.sharding)}) with {p.headroom_gib:+.1f} GiB headroom per GPU, "
               f"largest micro-batch {p.batch}")
        time = (f"{duration(tasks * p.hours)} wall-clock on the budget and {dollars(tasks * p.dollars)} for "
                f"{_tasks(tasks)}")
    else:
        fit = (f"does not fit {p.gpus} x {p.gpu.id}: needs {_gib(p.per_gpu_bytes)} per GPU ({_mode(p.sharding)}) of "
               f"{p.gpu.memory_gib:.1f} GiB; fewest GPUs that fit: {p.fewest}")
        time = "no time or cost for a run that does not fit"
    return (
        f"{c.label}: {fit}; {_accuracy_text(c, request)}; {_robust_text(c)}; {time}; storage "
        f"{human_bytes(c.storage_bytes)} (full copies: {human_bytes(c.full_copies_bytes)})"
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
    resolved = resolved if resolved is not None else resolve_model(request.model)
    planned = plan_methods(resolved, [request.choice(m) for m in request.methods], request.budget)
    fft_count = next(est.count for est, _ in planned if est.method == REFERENCE)
    if fft_count is None:
        raise InputError(f"{resolved.name}: full fine-tuning cannot be counted, so there is nothing to compare against")
    full_copy = float(fft_count.adapter_bytes)
    candidates, skipped = [], []
    for est, plan in planned:
        choice = request.choice(est.method)
        if est.count is None or plan is None:
            why = est.error or est.memory_error or "its memory could not be estimated"
            skipped.append(MethodOption(choice.method, choice.label(),
                                        f"{choice.label()}: not applicable to {resolved.name}: {why}", error=why))
            continue  # fmt: skip
        candidates.append(_candidate(choice, est.count, plan, request, gm=gm, full_copy=full_copy))
    options = _rank(candidates, request) + skipped
    choice_opt = next((o for o in options if o.fits), None)
    best_peft = next((o for o in options if o.candidate is not None and o.method != REFERENCE), None)
    fft = next(o for o in options if o.method == REFERENCE)
    key = SkeletonKey(resolved, default_task(resolved), 2)
    fft_advice = None if fft.fits or fft.plan is None else _advice(key, request, fft)
    peft_advice = (_advice(key, request, best_peft) if choice_opt is None and best_peft is not None
                   and best_peft.plan is not None else None)  # fmt: skip
    return Recommendation(
        request=request,
        model=resolved.name,
        options=options,
        choice=choice_opt,
        best_peft=best_peft,
        rationale=_rationale(choice_opt, options, request),
        make_fft_fit=[] if fft_advice is None else fft_advice.lines(),
        guide=_guide(options, best_peft, request, gm, fft_advice),
        notes=[
            "gap = PEFT minus FFT in points of a 0-100 metric (positive = PEFT better), predicted for a new paper "
            f"from the warehouse pairs ({gm.heldout_summary()}); memory, hours and dollars from core.memory at "
            f"{request.settings_text()}, with the GPU catalogue's editable prices",
        ],
        fft_advice=fft_advice,
        peft_advice=peft_advice,
    )


def _advice(key: SkeletonKey, request: RecommendRequest, option: MethodOption) -> Advice:
    """`core.advice` for an option that does not fit, from the setup its plan was made at (so its figures match
    the plan's: ZeRO-3 over the budget's GPUs where the budget has several)."""
    plan, candidate = option.plan, option.candidate
    assert plan is not None and candidate is not None
    setup = request.budget.setup(sharding=plan.sharding)
    alternatives = [request.choice(m) for m in PRACTICE_DEFAULTS if m != option.method]
    return make_it_fit(key, candidate.choice, setup, alternatives=alternatives)


def _candidate(
    choice: MethodChoice, count: ParameterCount, plan: Plan, request: RecommendRequest, *, gm: GapModel,
    full_copy: float,
) -> Candidate:  # fmt: skip
    """One planned method with its gap prediction, its own robustness evidence and storage for all tasks."""
    if choice.method == REFERENCE:
        return Candidate(choice, count, plan, None, None, request.tasks * full_copy, request.tasks * full_copy, 0)
    scenario = _scenario(request, choice, count)
    gap = gm.predict(scenario)
    rob = robustness(gm.pairs, list(gm.claims), scenario).ood
    storage = full_copy + request.tasks * count.adapter_bytes
    return Candidate(choice, count, plan, gap, rob, storage, request.tasks * full_copy,
                     gm.reported(choice.method, request.task_type))  # fmt: skip


def _rank(candidates: list[Candidate], request: RecommendRequest) -> list[MethodOption]:
    """Score every candidate, then order: fits; indistinguishable from the most accurate fitting option;
    well evidenced (practice's defaults first among equals); score."""
    if not candidates:
        return []
    s, tasks, weights = SETTINGS, request.tasks, request.priorities
    best_gap = max(c.low for c in candidates)
    robust_lows = [c.robust.low for c in candidates if c.robust is not None and c.robust.low is not None]
    worst_robust = min([0.0, *robust_lows])
    robust = [0.0 if c.robust is None else (c.robust.low if c.robust.low is not None else worst_robust)
              for c in candidates]  # fmt: skip
    best_robust = max(robust)
    cheapest = min((tasks * c.plan.dollars for c in candidates if c.plan.dollars is not None), default=0.0)
    fastest = min((tasks * c.plan.hours for c in candidates if c.plan.hours is not None), default=0.0)
    smallest = min(c.storage_bytes for c in candidates)
    fitting = [c for c in candidates if c.plan.fits]
    top_low = max((c.low for c in fitting), default=best_gap)
    top = next((c for c in fitting if c.low == top_low), None)
    options = []
    for c, rob in zip(candidates, robust, strict=True):
        criteria = {
            "accuracy": _gap_score(c.low, best_gap, s.accuracy_span),
            "robustness": _gap_score(rob, best_robust, s.robustness_span),
            # a plan that does not fit has no time or cost: it scores 0 on both (it ranks after those that fit anyway)
            "cost": 0.0 if c.plan.dollars is None else _ratio_score(tasks * c.plan.dollars, cheapest, s.cost_span),
            "time": 0.0 if c.plan.hours is None else _ratio_score(tasks * c.plan.hours, fastest, s.time_span),
            "storage": _ratio_score(c.storage_bytes, smallest, s.storage_span),
        }
        score = sum(weights[k] * v for k, v in criteria.items()) / sum(weights.values())
        tied = top is not None and c.plan.fits and c.low <= top.high and top.low <= c.high
        options.append(MethodOption(c.choice.method, c.label, _reason(c, request), c, MappingProxyType(criteria),
                                    score, tied))  # fmt: skip

    return sorted(options, key=ranking_key)


# The ranking rule in the words the rationale prints, in the order `ranking_key` applies it.
RANKING: tuple[str, ...] = (
    "fits the GPU budget",
    "indistinguishable on accuracy at 80% from the most accurate option that fits",
    f"well evidenced (FFT, or at least {SETTINGS.min_evidence} published pairs of its own on the task type)",
    "the priority-weighted score (accuracy at the interval's low end, robustness, cost, time, storage)",
)


def ranking_key(option: MethodOption) -> tuple[bool, bool, bool, float, str]:
    """`RANKING` as a sort key (the method id last, so equal scores order the same way every run)."""
    evidenced = option.candidate is not None and option.candidate.evidenced
    return (not option.fits, not option.indistinguishable, not evidenced, -option.score, option.method)


def _rationale(choice: MethodOption | None, options: list[MethodOption], request: RecommendRequest) -> list[str]:
    """Why the choice: the indistinguishable set in one line, then the three numbers that decided it."""
    if choice is None or choice.candidate is None:
        return ["no method fits this GPU budget: see what would make it fit"]
    c = choice.candidate
    tied = [o for o in options if o.indistinguishable]
    lines = []
    if len(tied) > 1:
        lines.append(
            f"{len(tied)} methods that fit are indistinguishable on accuracy at 80% "
            f"({', '.join(o.label for o in tied)}): the choice goes to evidence, then to the score; ranked by: "
            + "; ".join(f"{i}. {rule}" for i, rule in enumerate(RANKING, start=1))
        )
    runner = next((o for o in options if o is not choice and o.candidate is not None and o.fits), None)
    evidence = "the reference" if c.gap is None else f"{c.reported} pairs of its own on {request.task_type}"
    if runner is not None and runner.candidate is not None and runner.gap is not None:
        evidence += f" (next, {runner.label}: {runner.reported})"
    assert c.plan.hours is not None and c.plan.dollars is not None  # the choice fits
    lines.append(
        f"recommended: {choice.label}: evidence {evidence}; {c.plan.headroom_gib:+.1f} GiB headroom per GPU; "
        f"{duration(request.tasks * c.plan.hours)} and {dollars(request.tasks * c.plan.dollars)} for "
        f"{_tasks(request.tasks)}"
    )
    lines.append(_evidence_sentence(choice, tied, request))
    lines.append(choice.reason)
    fft = next(o for o in options if o.method == REFERENCE)
    if fft is not choice and fft.candidate is not None:
        if not fft.fits:
            lines.append("full fine-tuning does not fit the budget, so a PEFT method is recommended")
        elif choice.gap is not None and fft.candidate.plan.dollars is not None:
            lines.append(
                f"against FFT: {choice.gap.summary()}; FFT would cost "
                f"{dollars(request.tasks * fft.candidate.plan.dollars)} and store "
                f"{human_bytes(fft.candidate.storage_bytes)}"
            )
    return lines


def _evidence_sentence(choice: MethodOption, tied: list[MethodOption], request: RecommendRequest) -> str:
    """The evidence that drove the choice, in one sentence a manager can read, with its closest comparisons."""
    gap = choice.gap
    if gap is None:
        return (f"why: full fine-tuning is the reference every published comparison is made against, and no method "
                f"that fits is ahead of it on {request.task_type} at 80%")
    evidenced = [o for o in tied if o.candidate is not None and o.candidate.evidenced]
    pairs = f"at least {SETTINGS.min_evidence} published pairs of its own"
    if not evidenced:
        standing = f"not backed by {pairs}, nor is any of them, so the best score decides"
    elif len(evidenced) == 1:
        standing = f"the only one of them with {pairs}"
    else:
        standing = f"one of the {len(evidenced)} of them with {pairs}"
    closest = "; ".join(f"{r.method_raw} {r.gap:+.1f} on {r.task} ({r.model}, {r.source.split(' (')[0]})"
                        for r in gap.evidence[:2])
    return (f"why: {choice.label} is expected at {gap.mean:+.1f} points against full fine-tuning "
            f"({gap.low:+.1f} to {gap.high:+.1f}); it is {standing} on {request.task_type}, and scores best on your "
            f"priorities among those; closest published comparisons: {closest or 'none'}")


def _guide(
    options: list[MethodOption], best: MethodOption | None, request: RecommendRequest, gm: GapModel,
    fft_advice: Advice | None,
) -> list[str]:
    """The research's selection guide, each item quantified from this request's estimates; "the best PEFT
    option" is `best` (the highest-ranked PEFT option), the same one the page and the CLI show."""
    planned = [o.candidate for o in options if o.candidate is not None]
    fft = next((c for c in planned if c.choice.method == REFERENCE), None)
    if fft is None:  # its memory could not be estimated: the option's reason says why
        why = next(o.error for o in options if o.method == REFERENCE)
        return [f"limited resources: full fine-tuning's memory could not be estimated ({why})"]
    peft = [c for c in planned if c.choice.method != REFERENCE]
    p = fft.plan
    fix = "" if fft_advice is None else f"; to make it fit: {fft_advice.lines()[0]}"
    lines = [
        f"limited resources: FFT needs {_gib(p.per_gpu_bytes)} per GPU with {_mode(p.sharding)} over {p.gpus} GPU"
        f"{'s' if p.gpus != 1 else ''}; the budget has {request.gpus} x {p.gpu.memory_gib:.1f} GiB "
        f"({'fits' if p.fits else 'does not fit'}){fix}"
    ]
    if not peft or best is None or best.candidate is None or best.gap is None:
        return lines
    lines.append(
        f"accuracy on {request.task_type}: the best PEFT option ({best.label}) is expected at {best.gap.mean:+.1f} "
        f"points (80% interval {best.gap.low:+.1f} to {best.gap.high:+.1f}): {best.gap.verdict}"
    )
    timed = [c for c in peft if c.plan.hours is not None]
    if timed:
        fastest = min(timed, key=lambda c: c.plan.hours or 0.0)
        versus = ("FFT does not fit it" if fft.plan.hours is None else
                  f"FFT {duration(fft.plan.hours)}")  # fmt: skip
        lines.append(f"rapid deployment: {fastest.label} trains in {duration(fastest.plan.hours or 0.0)} per task "
                     f"vs {versus} on this budget")
    smallest = min(peft, key=lambda c: c.storage_bytes)
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
    cross = best.gap.crossover
    lines.append(cross.summary() if cross is not None else
                 "data-size crossover: none within the evidence's sizes for the best PEFT option")  # fmt: skip
    return lines
