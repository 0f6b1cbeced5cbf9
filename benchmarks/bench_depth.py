"""Depth extrapolation at real widths and depths: the profile fitted on 2- and 3-block copies against a direct trace.

Section 1 (direct-trace comparison). For one catalogue model per decoder family, at its real width and depth,
x methods {fft, lora, qlora, dora, prefix_tuning} x checkpointing {off, on}, at one random real shape per case
(a numpy RNG seeded from --seed and the case's name: batch 1-16, length 256-32768, capped at the positions of
a learned absolute position table where the model has one), the extrapolated per-phase peaks
(`StepProfile.phase_peaks`) are compared with a direct trace of the whole model (`trace_step(...,
keep_blocks=None)`): total peak (max over phases of the row sum) in GiB, its relative error, and whether every
category of the direct trace's peak phase agrees to 0.1% (or 1 KiB for a near-empty category). A (model, method)
that raises NotApplicableError is printed as refused and counted apart; any other exception is printed as an
error.

Section 2 (property sweep, extrapolated profiles only) on every case of section 1 that has a profile, at
batch in (1, 2, 4, 8, 16) x length in (512, 1024, 2048, 4096, 8192) (lengths capped as above):
(a) the total peak never falls when the batch or the length grows; (b) no phase's peak row has a negative
category (checked on the unclipped full-depth timeline, since `phase_peaks` clips at 0); (c) gradients never
exceed the clip phase's weights (FFT), or 2 x the trainable parameters in fp32 (PEFT, from `core.counting`);
(d) LoRA's total peak never falls when the rank grows (8, 16, 64) at batch 4 x 2048.

Every step is bf16-mixed, AdamW, SDPA; QLoRA on an NF4 + double-quantized base. The trace cache
(TUNEWISE_CACHE_DIR) is a fresh temporary folder, so nothing comes from stale entries.

Run: python benchmarks/bench_depth.py [--quick] [--models a,b] [--seed 0]
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

# fake tensors compute nothing: threaded BLAS only contends for shared cores
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import logging
import tempfile
import time
import zlib
from dataclasses import dataclass, field

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the project's `core`, run from anywhere

from core.counting import count_parameters, model_shape
from core.errors import NotApplicableError
from core.memory.profile import StepProfile, timeline_peaks
from core.memory.spec import CATEGORIES, PHASES, StepSpec
from core.models import resolve_model
from core.registry import MethodChoice
from core.skeleton_key import SkeletonKey

MODELS = ("llama-3.1-8b", "mistral-7b", "qwen2.5-7b", "qwen3-8b", "gemma-2-9b", "gemma-3-12b", "phi-3-mini",
          "olmo-2-7b", "pythia-1b", "opt-1.3b", "smollm3-3b", "falcon-7b", "gpt2", "qwen1.5-moe-a2.7b",
          "qwen3-30b-a3b")
QUICK = ("llama-3.1-8b", "gemma-2-9b", "opt-1.3b")
METHODS = ("fft", "lora", "qlora", "dora", "prefix_tuning")
CHECKPOINTING = (False, True)
BATCHES = (1, 2, 4, 8, 16)
LENGTHS = (512, 1024, 2048, 4096, 8192)
RANKS = (8, 16, 64)
RANK_SHAPE = (4, 2048)
TOLERANCE = 1e-3  # 0.1%
FLOOR = 1024  # bytes: a category this close agrees whatever its size
GIB = 2**30
WEIGHTS, GRADIENTS = CATEGORIES.index("weights"), CATEGORIES.index("gradients")
CLIP = PHASES.index("clip")


@dataclass
class Case:
    model: str
    method: str
    checkpointing: bool
    key: SkeletonKey
    limit: int  # the longest sequence the model can take (its learned positions), 0: none
    profile: StepProfile | None = None
    error: float | None = None
    difference: float = 0.0  # extrapolated minus direct total peak, bytes
    categories_ok: bool = False
    outcome: str = ""  # "", "refused", "error"
    message: str = ""
    shape: tuple[int, int] = (0, 0)
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"{self.model} {self.method} ckpt={'on' if self.checkpointing else 'off'}"


def step_spec(method: str, checkpointing: bool) -> StepSpec:
    return StepSpec("bf16-mixed", "adamw", "sdpa", checkpointing, "nf4-dq" if method == "qlora" else "none")


def random_shape(seed: int, name: str, limit: int) -> tuple[int, int]:
    """One (batch, length) per case, the same whichever subset of cases runs."""
    rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
    longest = min(32768, limit) if limit else 32768
    return int(rng.integers(1, 17)), int(rng.integers(256, longest + 1))


def total(rows: np.ndarray) -> float:
    return float(rows.sum(axis=1).max())


def method_choice(method: str, **knobs: object) -> MethodChoice:
    """LoRA and DoRA on every linear layer: peft has no default targets for several families (Gemma 3, Phi-3,
    OLMo 2, SmolLM3, the MoEs), and all-linear is what practitioners pass. QLoRA without dropout: peft's adapter
    for fused MoE experts refuses any."""
    if method in ("lora", "dora"):
        knobs = {"targets": "all-linear", **knobs}
    if method == "qlora":
        knobs = {"dropout": 0.0, **knobs}
    return MethodChoice(method, **knobs)


def first(text: object, chars: int = 80) -> str:
    lines = str(text).strip().splitlines()
    return lines[0][:chars] if lines else ""


def compare(case: Case, seed: int) -> None:
    """Section 1 for one case: fills `case` and prints its row."""
    from core.memory.step import trace_step

    began = time.perf_counter()
    choice, spec = method_choice(case.method), step_spec(case.method, case.checkpointing)
    batch, seq = case.shape = random_shape(seed, case.name, case.limit)
    head = f"{case.model:<18} {case.method:<14} {'on' if case.checkpointing else 'off':<4} {batch:>2} x {seq:<6}"
    try:
        case.profile = StepProfile(case.key, choice, spec)
        extrapolated = case.profile.phase_peaks(batch, seq).bytes
        direct = timeline_peaks(trace_step(case.key, choice, spec, batch_size=batch, seq_len=seq,
                                           keep_blocks=None)).bytes
    except NotApplicableError as exc:
        case.outcome, case.message = "refused", str(exc)
        print(f"{head} refused: {first(exc)}", flush=True)
        return
    except Exception as exc:  # a bug in core: reported, not fatal to the other cases
        case.outcome, case.message = "error", f"{type(exc).__name__}: {first(exc, 300)}"
        print(f"{head} ERROR {case.message}", flush=True)
        return
    finally:
        case.seconds = time.perf_counter() - began
    ext_total, dir_total = total(extrapolated), total(direct)
    case.error, case.difference = (ext_total - dir_total) / dir_total, ext_total - dir_total
    peak = int(np.argmax(direct.sum(axis=1)))
    off = [f"{CATEGORIES[c]} {extrapolated[peak, c] / GIB:.4f}/{direct[peak, c] / GIB:.4f} GiB"
           for c in range(len(CATEGORIES))
           if abs(extrapolated[peak, c] - direct[peak, c]) > max(TOLERANCE * abs(direct[peak, c]), FLOOR)]
    case.categories_ok = not off
    ext_phase = PHASES[int(np.argmax(extrapolated.sum(axis=1)))]
    phase = PHASES[peak] if ext_phase == PHASES[peak] else f"{ext_phase}/{PHASES[peak]}"
    if case.profile.full is None:
        case.notes.append("profile traced per shape (op sequence depends on the shape)")
    print(f"{head} {ext_total / GIB:>9.3f} {dir_total / GIB:>9.3f} {100 * case.error:>+9.4f}% "
          f"{'yes' if not off else 'no: ' + '; '.join(off):<4} {phase:<10} {case.seconds:>6.1f}s"
          f"{'  (' + '; '.join(case.notes) + ')' if case.notes else ''}", flush=True)


def section_one(models: tuple[str, ...], seed: int) -> list[Case]:
    print("== 1. extrapolated full-depth peak against a direct trace of the whole model ==")
    print(f"{'model':<18} {'method':<14} {'ckpt':<4} {'b x s':<11} {'extrap':>9} {'direct':>9} {'error':>10} "
          f"{'cats':<4} {'peak phase':<10} {'time':>7}   (GiB; cats: every category of the peak phase within 0.1%)",
          flush=True)
    cases: list[Case] = []
    for model in models:
        try:
            key = SkeletonKey(resolve_model(model), "causal-lm", 2)
            limit = model_shape(key).learned_positions
        except Exception as exc:
            print(f"{model:<18} ERROR building the model: {type(exc).__name__}: {first(exc, 200)}", flush=True)
            continue
        for method in METHODS:
            for checkpointing in CHECKPOINTING:
                case = Case(model, method, checkpointing, key, limit)
                compare(case, seed)
                cases.append(case)
    compared = [c for c in cases if c.error is not None]
    within = [c for c in compared if abs(c.error) <= TOLERANCE]
    print(f"\nsummary: {len(cases)} cases; {len(compared)} compared, {len(within)} within 0.1% of the direct trace, "
          f"{sum(c.categories_ok for c in compared)} with every category of the peak phase within 0.1%; "
          f"{sum(c.outcome == 'refused' for c in cases)} refused; {sum(c.outcome == 'error' for c in cases)} errors")
    if compared:
        worst = max(compared, key=lambda c: abs(c.error or 0.0))
        print(f"worst: {worst.name} at {worst.shape[0]} x {worst.shape[1]}: {100 * (worst.error or 0.0):+.6f}% "
              f"({worst.difference:+,.0f} bytes)")
    for case in cases:
        if case.outcome == "error":
            print(f"error: {case.name}: {case.message}")
    print(flush=True)
    return cases


def lengths_for(case: Case) -> tuple[int, ...]:
    return tuple(s for s in LENGTHS if not case.limit or s <= case.limit)


def monotone(case: Case, totals: np.ndarray, lengths: tuple[int, ...]) -> list[str]:
    """(a): totals[b, s] never falls along either axis (1 byte of float noise allowed)."""
    found = []
    for j, seq in enumerate(lengths):
        for i in range(len(BATCHES) - 1):
            if totals[i + 1, j] < totals[i, j] - 1:
                found.append(f"(a) {case.name}: at length {seq} batch {BATCHES[i]} -> {BATCHES[i + 1]}: "
                             f"{totals[i, j] / GIB:.4f} -> {totals[i + 1, j] / GIB:.4f} GiB")
    for i, batch in enumerate(BATCHES):
        for j in range(len(lengths) - 1):
            if totals[i, j + 1] < totals[i, j] - 1:
                found.append(f"(a) {case.name}: at batch {batch} length {lengths[j]} -> {lengths[j + 1]}: "
                             f"{totals[i, j] / GIB:.4f} -> {totals[i, j + 1] / GIB:.4f} GiB")
    return found


def negatives(case: Case, batch: int, seq: int, rows: np.ndarray) -> list[str]:
    """(b): each phase's peak row, before `phase_peaks` clips it at 0 (the clipped rows where there is no fit)."""
    assert case.profile is not None
    full = case.profile.full
    if full is not None:
        live = full.live(batch, seq)
        totals = live.sum(axis=1)
        rows = np.zeros_like(rows)
        for index, where in enumerate(full.by_phase):
            if len(where):
                rows[index] = live[where[np.argmax(totals[where])]]
    return [f"(b) {case.name} at {batch} x {seq}: {PHASES[p]} peak has {CATEGORIES[c]} = {rows[p, c]:.0f} bytes"
            for p, c in zip(*np.nonzero(rows < -1), strict=True)]


def gradient_bound(case: Case) -> tuple[str, float | None]:
    """(c)'s bound's kind, and for PEFT the bytes of 2 x the trainable parameters in fp32 (None: no count)."""
    if case.method == "fft":
        return "weights", None
    try:
        trainable = count_parameters(case.key, method_choice(case.method)).trainable_params
    except Exception as exc:
        case.notes.append(f"(c) skipped, no parameter count: {first(exc)}")
        return "skip", None
    return "trainable", 2.0 * 4 * trainable


def sweep(case: Case) -> tuple[list[str], int]:
    """Properties (a)-(c) of one case: the violations, and how many checks ran."""
    assert case.profile is not None
    lengths = lengths_for(case)
    totals = np.zeros((len(BATCHES), len(lengths)))
    found: list[str] = []
    kind, bound = gradient_bound(case)
    checks = 0
    for i, batch in enumerate(BATCHES):
        for j, seq in enumerate(lengths):
            rows = case.profile.phase_peaks(batch, seq).bytes
            totals[i, j] = total(rows)
            found += negatives(case, batch, seq, rows)
            grads = float(rows[:, GRADIENTS].max())
            limit = float(rows[CLIP, WEIGHTS]) if kind == "weights" else bound
            checks += 1 + (limit is not None)
            if limit is not None and grads > limit + 1:
                what = "the clip phase's weights" if kind == "weights" else "2 x trainable fp32 bytes"
                found.append(f"(c) {case.name} at {batch} x {seq}: gradients {grads / GIB:.4f} GiB > {what} "
                             f"{limit / GIB:.4f} GiB")
    checks += 2 * len(lengths) * (len(BATCHES) - 1)
    found += monotone(case, totals, lengths)
    return found, checks


def rank_sweep(cases: list[Case]) -> tuple[list[str], int]:
    """(d): LoRA's total peak at `RANK_SHAPE` over `RANKS`, per (model, checkpointing) where LoRA has a profile."""
    found: list[str] = []
    checks = 0
    for case in cases:
        if case.method != "lora" or case.profile is None:
            continue
        batch, seq = RANK_SHAPE[0], min(RANK_SHAPE[1], case.limit) if case.limit else RANK_SHAPE[1]
        values: list[float] = []
        try:
            for rank in RANKS:
                profile = StepProfile(case.key, method_choice("lora", rank=rank), step_spec("lora", case.checkpointing))
                values.append(total(profile.phase_peaks(batch, seq).bytes))
        except Exception as exc:
            print(f"(d) {case.name}: rank {RANKS[len(values)]}: {type(exc).__name__}: {first(exc, 200)}", flush=True)
            continue
        print(f"(d) {case.name} at {batch} x {seq}: rank " + " / ".join(map(str, RANKS)) + ": "
              + " / ".join(f"{v / GIB:.4f}" for v in values) + " GiB", flush=True)
        for rank, low, high in zip(RANKS[1:], values, values[1:], strict=False):
            checks += 1
            if high < low - 1:
                found.append(f"(d) {case.name} at {batch} x {seq}: rank {rank} peak {high / GIB:.4f} GiB < "
                             f"{low / GIB:.4f} GiB at the rank below")
    return found, checks


def section_two(cases: list[Case]) -> None:
    print("== 2. properties of the extrapolated profiles ==")
    print(f"batch {BATCHES} x length {LENGTHS} (capped at a learned position table's size: "
          + (", ".join(sorted({f'{c.model} {c.limit}' for c in cases if c.limit})) or "none") + ")", flush=True)
    counts = dict.fromkeys("abcd", 0)
    checks = dict.fromkeys("abcd", 0)
    swept = 0
    skipped = []
    for case in cases:
        if case.profile is None:
            continue
        try:
            found, ran = sweep(case)
        except Exception as exc:
            print(f"sweep error: {case.name}: {type(exc).__name__}: {first(exc, 300)}", flush=True)
            continue
        swept += 1
        checks["a"] += ran  # (a)-(c) together; split below
        if case.profile.full is None:
            case.notes.append("(b) on clipped rows only: no fitted timeline")
        for line in found:
            counts[line[1]] += 1
            print(line, flush=True)
        skipped += [f"{case.name}: {note}" for note in case.notes if note.startswith(("(b)", "(c)"))]
    rank_found, checks["d"] = rank_sweep(cases)
    for line in rank_found:
        counts["d"] += 1
        print(line, flush=True)
    print(f"\nsummary: {swept} profiles swept ({len(BATCHES)} batches x up to {len(LENGTHS)} lengths), "
          f"{checks['a']} checks of (a)-(c) and {checks['d']} of (d); violations: "
          f"(a) monotone in batch/length {counts['a']}, (b) negative category {counts['b']}, "
          f"(c) gradients over bound {counts['c']}, (d) monotone in LoRA rank {counts['d']}; "
          f"total {sum(counts.values())}")
    for line in skipped:
        print(f"note: {line}")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"only {', '.join(QUICK)}")
    parser.add_argument("--models", help="comma-separated catalogue names (overrides --quick)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random shapes")
    args = parser.parse_args()
    # a refused step's fake-tensor failure is logged with its traceback before it is raised: the row says it all
    # (torch sets its loggers' levels when imported, so import it first)
    import torch  # noqa: F401

    logging.getLogger("torch._subclasses.fake_tensor").setLevel(logging.CRITICAL)
    models = tuple(args.models.split(",")) if args.models else QUICK if args.quick else MODELS
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="tunewise-bench-depth-") as folder:
        os.environ["TUNEWISE_CACHE_DIR"] = folder  # a fresh trace cache: nothing read from earlier runs
        cases = section_one(models, args.seed)
        section_two(cases)
    print(f"\n({time.perf_counter() - began:.0f} s in all)")


if __name__ == "__main__":
    main()
