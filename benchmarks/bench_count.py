"""Time to count every method for Llama-2-70B in one process, after imports (issue 2's goal: under 1.5 s).

Run: python benchmarks/bench_count.py
"""

from __future__ import annotations

import time

t0 = time.perf_counter()
import peft  # noqa: E402,F401  (imports are timed separately: they are paid once per process)
import transformers  # noqa: E402,F401

from core.counting import count_parameters  # noqa: E402
from core.errors import NotApplicableError  # noqa: E402
from core.models import resolve_model  # noqa: E402
from core.registry import MethodChoice, method_ids  # noqa: E402
from core.skeleton import SkeletonKey, skeleton  # noqa: E402

IMPORTS = time.perf_counter() - t0


def count_all(key: SkeletonKey) -> int:
    counted = 0
    for method in method_ids():
        try:
            count_parameters(key, MethodChoice(method))
            counted += 1
        except NotApplicableError:
            pass
    return counted


def main() -> None:
    t = time.perf_counter()
    key = SkeletonKey(resolve_model("meta-llama/Llama-2-70b-hf"), "causal-lm", 2)
    skeleton(key)
    build = time.perf_counter() - t
    t = time.perf_counter()
    counted = count_all(key)
    cold = time.perf_counter() - t
    t = time.perf_counter()
    count_all(key)
    warm = time.perf_counter() - t
    print("| step (Llama-2-70B) | seconds |")
    print("|---|---|")
    print(f"| imports (torch, transformers, peft) | {IMPORTS:.2f} |")
    print(f"| resolve + meta skeleton | {build:.2f} |")
    print(f"| count {counted} methods, first time | {cold:.2f} |")
    print(f"| count {counted} methods again | {warm:.2f} |")
    print(f"| total after imports | {build + cold:.2f} |")


if __name__ == "__main__":
    main()
