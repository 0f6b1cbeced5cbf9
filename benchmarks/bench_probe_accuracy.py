"""The activation model against the CPU probe on every method x family x dtype x attention x dropout.

Prints Markdown: a summary (worst |error| per method and family) and the full table (estimator vs probe bytes
and % error). Takes several minutes on two cores: `python benchmarks/bench_probe_accuracy.py [--summary-only]`.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.memory.accuracy import Result, full_matrix, run_case
from core.memory.tiny import FAMILIES
from core.registry import method_ids


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--summary-only", action="store_true", help="print only the method x family summary")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    import transformers

    transformers.logging.set_verbosity_error()
    results = [run_case(case) for case in full_matrix()]
    measured = [r for r in results if not r.skipped]
    worst: dict[tuple[str, str], float] = defaultdict(float)
    for r in measured:
        key = (r.case.method, r.case.family)
        worst[key] = max(worst[key], abs(r.error))
    errors = sorted(abs(r.error) for r in measured)
    print(f"{len(measured)} cases measured, {len(results) - len(measured)} not applicable; "
          f"median |error| {errors[len(errors) // 2]:.1f}%, worst {errors[-1]:.1f}%, "
          f"{sum(e <= 3 for e in errors)} within 3%, {sum(e <= 10 for e in errors)} within 10%\n")
    print("Worst |error| over fp32/bf16 x sdpa/eager x dropout 0/0.1 (n/a: the method does not apply):\n")
    print("| method | " + " | ".join(FAMILIES) + " |")
    print("|---|" + "---|" * len(FAMILIES))
    for method in method_ids():
        cells = [f"{worst[(method, f)]:.1f}%" if (method, f) in worst else "n/a" for f in FAMILIES]
        print(f"| {method} | " + " | ".join(cells) + " |")
    if not args.summary_only:
        print("\n| method | family | dtype | attention | dropout | estimate (B) | probe (B) | error |")
        print("|---|---|---|---|---|---|---|---|")
        for r in measured:
            print(_row(r))


def _row(r: Result) -> str:
    c = r.case
    return (f"| {c.method} | {c.family} | {c.dtype} | {c.attention} | {c.dropout:g} | {r.estimate} | {r.probe} | "
            f"{r.error:+.1f}% |")


if __name__ == "__main__":
    main()
