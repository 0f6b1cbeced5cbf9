"""The traced step's activations against the CPU probe (what autograd really saved in a real forward).

Cases are method x family x (dtype, attention, dropout): `--cases covering` (default) meets every method with
every family once, the variants rotating so each family sees all eight and each method both of each; `--cases
full` runs the whole cube (about half an hour on two cores). Prints Markdown: a summary, the worst |error| per
method and family, and (without `--summary-only`) every case.

    python benchmarks/bench_probe_accuracy.py [--cases covering|full] [--summary-only]
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.registry import method_ids
from tests.support.accuracy import Result, covering_matrix, full_matrix, run_case
from tests.support.tiny import FAMILIES


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--summary-only", action="store_true", help="print only the method x family summary")
    parser.add_argument("--cases", choices=("covering", "full"), default="covering", help="which cases to run")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    import transformers

    transformers.logging.set_verbosity_error()
    cases = covering_matrix(per_pair=1) if args.cases == "covering" else full_matrix()
    results = [run_case(case) for case in cases]
    measured = [r for r in results if not r.skipped]
    worst: dict[tuple[str, str], float] = defaultdict(float)
    for r in measured:
        key = (r.case.method, r.case.family)
        worst[key] = max(worst[key], abs(r.error))
    errors = sorted(abs(r.error) for r in measured)
    print(f"{len(measured)} cases measured, {len(results) - len(measured)} not applicable; "
          f"median |error| {errors[len(errors) // 2]:.1f}%, worst {errors[-1]:.1f}%, "
          f"{sum(e <= 3 for e in errors)} within 3%, {sum(e <= 10 for e in errors)} within 10%\n")
    print("Worst |error| per method and family over the cases run (n/a: the method does not apply, or peft or "
          "the real forward refuses it there):\n")
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
