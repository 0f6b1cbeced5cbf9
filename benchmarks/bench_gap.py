"""Nested leave-one-source-out evaluation of the gap predictor on the shipped evidence, as Markdown tables.

Builds a warehouse from `data/` in a temporary folder (never the user's), then holds out each paper in turn;
the predictor is fitted on the others with every setting chosen inside that fit by an inner
leave-one-source-out (`benchmarks/search_gap.py` prints that search). Prints MAE, the 80% interval score,
coverage (overall and of the worst paper), mean interval width and the Brier score of P(FFT ahead by more
than 1 point) for the predictor and two baselines ("gap = 0" with its own calibrated interval; the task
type's median gap), then the per-paper breakdown, the settings each fold chose and what the evidence says
about the theory.

    python benchmarks/bench_gap.py [--group source|table]
"""

from __future__ import annotations

import os
import sys

# The model's matrices are small: threaded BLAS only contends for shared cores, so run it single-threaded.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the project's `core`, run from anywhere

from core.gap.evaluate import leave_one_source_out
from core.gap.model import gap_model, warehouse_pairs
from core.warehouse import open_warehouse


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--group", choices=("source", "table"), default="source", help="what a source is")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, open_warehouse(Path(tmp) / "bench.duckdb", read_only=False) as wh:
        view, extra = warehouse_pairs(wh)
        model = gap_model(wh)
    for frame in (view, extra):
        frame["source_and_table"] = frame["source"] + " / " + frame["source_table"]
    group = {"source": "source", "table": "source_and_table"}[args.group]
    started = time.perf_counter()
    report = leave_one_source_out(view, extra=extra, group=group)
    print(report.to_markdown())
    print(f"\n({time.perf_counter() - started:.0f} s; every setting chosen inside each fold on the training papers)\n")
    print("| held-out paper | pairs | MAE | MAE of gap = 0 | interval score | of gap = 0 | coverage | of gap = 0 |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for row in report.by_source().itertuples(index=False):
        print(f"| {row.held_out[:70]} | {row.pairs} | {row.mae_model:.2f} | {row.mae_zero:.2f} | {row.is_model:.1f} | "
              f"{row.is_zero:.1f} | {100 * row.coverage_model:.0f}% | {100 * row.coverage_zero:.0f}% |")  # fmt: skip
    chosen = Counter(c.split(",")[0] for c in report.chosen_per_fold)
    print(f"\nSettings chosen per fold (mean basis): {', '.join(f'{k} x{n}' for k, n in chosen.most_common())}")
    print(f"Fitted on all {len(model.pairs)} pairs from {model.pairs['source'].nunique()} papers: "
          f"{model.calibration.describe()}. What the evidence says about the theory:")  # fmt: skip
    for note in model.theory_notes():
        print(f"- {note}")


if __name__ == "__main__":
    main()
