"""Benchmark: all methods for Llama-2-70B with the memory breakdown, cold (after imports), then re-estimates
after a change of batch, sequence or GPU (warm caches). Prints figures only."""

from __future__ import annotations

import sys
import time
import warnings
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.estimate import estimate
from core.memory.setup import TrainingSetup
from core.models import resolve_model
from core.registry import MethodChoice, method_ids
from core.scenario import Scenario


def main() -> None:
    warnings.simplefilter("ignore")
    import peft  # noqa: F401  (imports are not part of the cold figure)
    import transformers.models.llama.modeling_llama  # noqa: F401

    model = resolve_model("llama-2-70b")
    setup = TrainingSetup(batch_size=1, seq_len=2048, gpu="H100-80GB", dataset_tokens=10**8)
    scenario = Scenario(model, tuple(MethodChoice(m) for m in method_ids()), training=setup)
    start = time.perf_counter()
    report = estimate(scenario, skip_inapplicable=True)
    cold = time.perf_counter() - start
    sized = sum(m.training is not None for m in report.methods)
    print(f"cold: all {len(report.methods)} methods of Llama-2-70B ({sized} with a breakdown): {cold * 1000:.0f} ms")
    for label, change in (
        ("batch 1 -> 8", {"batch_size": 8}),
        ("sequence 2048 -> 4096", {"seq_len": 4096}),
        ("GPU H100-80GB -> A100-40GB", {"gpu": "A100-40GB"}),
    ):
        changed = replace(scenario, training=replace(setup, **change))
        start = time.perf_counter()
        estimate(changed, skip_inapplicable=True)
        print(f"re-estimate after {label}: {(time.perf_counter() - start) * 1000:.1f} ms")


if __name__ == "__main__":
    main()
