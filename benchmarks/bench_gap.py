"""Leave-one-source-out evaluation of the gap predictor on the shipped evidence, as Markdown tables.

Builds a warehouse from `data/` in a temporary folder (never the user's), then holds out each source in turn:
by paper (the pairs view's `source`, the README's table) and, for comparison, by the warehouse's finer source
unit (paper + table). Prints, per grouping, MAE, median absolute error, 80% interval coverage, mean interval
width and pairs for the predictor and the two baselines (gap = 0; the task type's median gap), then the
per-source breakdown and what the evidence says about the theory.

    python benchmarks/bench_gap.py [--group source|table|both]
"""

from __future__ import annotations

import os

# The model's matrices are small: threaded BLAS only contends for shared cores, so run it single-threaded.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import tempfile
import time
from pathlib import Path

from core.gap.evaluate import leave_one_source_out
from core.gap.model import gap_model
from core.warehouse import open_warehouse, pairs


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--group", choices=("source", "table", "both"), default="both", help="what a source is")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, open_warehouse(Path(tmp) / "bench.duckdb", read_only=False) as wh:
        frame = pairs(wh)
        frame["source_and_table"] = frame["source"] + " / " + frame["source_table"]
        model = gap_model(wh)
        groups = {"source": "source", "table": "source_and_table"}
        for name in ("source", "table") if args.group == "both" else (args.group,):
            started = time.perf_counter()
            report = leave_one_source_out(frame, group=groups[name])
            print(report.to_markdown())
            print(f"\n({time.perf_counter() - started:.1f} s; intervals calibrated inside each fold on the training "
                  "sources only)\n")  # fmt: skip
            if name == "source":
                by_source = report.by_source()
                print("| held-out source | pairs | MAE | coverage | MAE of gap = 0 |\n|---|---:|---:|---:|---:|")
                for row in by_source.itertuples(index=False):
                    print(f"| {row.held_out} | {row.pairs} | {row.mae:.2f} | {100 * row.coverage:.0f}% | "
                          f"{row.mae_gap0:.2f} |")  # fmt: skip
                print()
        print(f"Fitted on {len(model.pairs)} pairs from {model.pairs['source'].nunique()} sources; "
              f"interval scale {model.scale:.2f} sd. What the evidence says about the theory:")  # fmt: skip
        for note in model.theory_notes():
            print(f"- {note}")


if __name__ == "__main__":
    main()
