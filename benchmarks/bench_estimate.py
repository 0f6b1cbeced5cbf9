"""Benchmark: the memory breakdown of Llama-2-70B for the recommendation's candidate methods, cold (empty trace
cache, after imports: every method's step is traced), from the disk cache in a fresh process's state, and
re-estimates after a change of batch, sequence or GPU (warm), and last what one trace costs. Prints figures only.

    python benchmarks/bench_estimate.py
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
import warnings
from dataclasses import replace
from pathlib import Path

from torch.utils._python_dispatch import TorchDispatchMode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core import counting
from core import estimate as estimate_module
from core.estimate import estimate
from core.memory import profile
from core.memory.setup import TrainingSetup
from core.memory.spec import StepSpec
from core.memory.step import TracedModel
from core.models import ResolvedModel, resolve_model
from core.registry import MethodChoice, candidate_ids
from core.scenario import Scenario


def _timed(scenario: Scenario) -> tuple[float, int, int]:
    start = time.perf_counter()
    report = estimate(scenario, skip_inapplicable=True)
    sized = sum(m.training is not None for m in report.methods)
    return time.perf_counter() - start, len(report.methods), sized


class _Dispatches(TorchDispatchMode):
    """Counts the aten calls the tracker hands on to the fake mode (entered below it; untimed)."""

    def __init__(self) -> None:
        super().__init__()
        self.ops = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        self.ops += 1
        return func(*args, **(kwargs or {}))


def _one_trace(model: ResolvedModel) -> None:
    """What a cold estimate is made of: one steady-state trace of a 3-block copy (LoRA), timed, then counted."""
    key = Scenario(model, (MethodChoice("lora"),)).skeleton_key
    spec = StepSpec("bf16-mixed", "adamw", "sdpa", False, "none")
    traced = TracedModel(key, MethodChoice("lora"), spec, {"model.layers": 3})
    traced.trace(2, 64)  # the first trace fills FakeTensorMode's dispatch cache
    runs = 5
    start = time.perf_counter()
    for _ in range(runs):
        traced.trace(2, 64)
    elapsed = (time.perf_counter() - start) / runs
    counter = _Dispatches()
    with counter:
        traced.trace(2, 64)
    print(f"one steady-state trace (3-block LoRA copy, batch 2 x 64): {elapsed:.3f} s, {counter.ops} aten calls; "
          "a profile takes 12 traces (2 copies x 6 shapes)")


def main() -> None:
    warnings.simplefilter("ignore")
    import peft  # noqa: F401  (imports are not part of the figures)
    import transformers.models.llama.modeling_llama  # noqa: F401

    os.environ["TUNEWISE_CACHE_DIR"] = tempfile.mkdtemp(prefix="tunewise-bench-")
    model = resolve_model("llama-2-70b")
    setup = TrainingSetup(batch_size=1, seq_len=2048, gpu="H100-80GB", dataset_tokens=10**8)
    scenario = Scenario(model, tuple(MethodChoice(m) for m in candidate_ids()), training=setup)
    cold, methods, sized = _timed(scenario)
    print(f"cold (empty trace cache): {methods} methods of Llama-2-70B ({sized} with a breakdown): {cold:.1f} s "
          f"({cold / max(sized, 1):.2f} s per traced method)")
    profile.step_profile.cache_clear()
    estimate_module.cached_count.cache_clear()
    counting.count_parameters.cache_clear()
    counting.model_shape.cache_clear()
    from_disk, _, _ = _timed(scenario)
    print(f"from the disk cache (a new process's state: counts, shapes and profiles read from disk): "
          f"{from_disk * 1000:.0f} ms")
    for label, change in (
        ("batch 1 -> 8", {"batch_size": 8}),
        ("sequence 2048 -> 4096", {"seq_len": 4096}),
        ("GPU H100-80GB -> A100-40GB", {"gpu": "A100-40GB"}),
    ):
        elapsed, _, _ = _timed(replace(scenario, training=replace(setup, **change)))
        print(f"re-estimate after {label}: {elapsed * 1000:.1f} ms")
    _one_trace(model)


if __name__ == "__main__":
    main()
