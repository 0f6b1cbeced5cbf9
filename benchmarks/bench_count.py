"""Time to count every method for Llama-2-70B in one process, after imports (goal: under 1.5 s), with the
slowest methods named. peft's first call in a process makes transformers build its checkpoint-conversion table
(about a thousand regexes) once; a LoRA count on a tiny config pays that first, on its own row.

Run: python benchmarks/bench_count.py
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

# counts are cached on disk (core.counting): an empty cache folder, so every count here is peft's own
os.environ["TUNEWISE_CACHE_DIR"] = tempfile.mkdtemp(prefix="tunewise-bench-")
t0 = time.perf_counter()
import peft  # noqa: E402,F401  (imports are timed separately: they are paid once per process)
import transformers  # noqa: E402,F401

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the project's `core`, run from anywhere

from core.counting import count_parameters  # noqa: E402
from core.errors import NotApplicableError  # noqa: E402
from core.models import resolve_model  # noqa: E402
from core.registry import MethodChoice, method_ids  # noqa: E402
from core.skeleton import SkeletonKey, skeleton  # noqa: E402
from tests.support.tiny import tiny_model  # noqa: E402

IMPORTS = time.perf_counter() - t0
SLOWEST = 5


def count_all(key: SkeletonKey) -> dict[str, float]:
    """Seconds per method; methods peft refuses on this model are timed too (they cost their attempt)."""
    seconds = {}
    for method in method_ids():
        t = time.perf_counter()
        with contextlib.suppress(NotApplicableError):
            count_parameters(key, MethodChoice(method))
        seconds[method] = time.perf_counter() - t
    return seconds


def main() -> None:
    warnings.simplefilter("ignore")
    t = time.perf_counter()
    count_parameters(SkeletonKey(tiny_model("llama"), "causal-lm", 2), MethodChoice("lora"))
    first_peft = time.perf_counter() - t
    t = time.perf_counter()
    key = SkeletonKey(resolve_model("meta-llama/Llama-2-70b-hf"), "causal-lm", 2)
    skeleton(key)
    build = time.perf_counter() - t
    cold = count_all(key)
    warm = count_all(key)
    slowest = sorted(cold, key=cold.__getitem__, reverse=True)[:SLOWEST]
    print("| step (Llama-2-70B) | seconds |")
    print("|---|---|")
    print(f"| imports (torch, transformers, peft) | {IMPORTS:.2f} |")
    print(f"| first peft call in the process (tiny LoRA) | {first_peft:.2f} |")
    print(f"| resolve + meta skeleton | {build:.2f} |")
    print(f"| count {len(cold)} methods, first time | {sum(cold.values()):.2f} |")
    for method in slowest:
        print(f"| of which {method} | {cold[method]:.2f} |")
    rest = sum(cold.values()) - cold[slowest[0]]
    print(f"| count {len(cold) - 1} methods without {slowest[0]}, first time | {rest:.2f} |")
    print(f"| count {len(warm)} methods again (cached) | {sum(warm.values()):.2f} |")
    print(f"| total after imports | {first_peft + build + sum(cold.values()):.2f} |")


if __name__ == "__main__":
    main()
