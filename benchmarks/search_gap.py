"""The nested leave-one-source-out search behind the gap predictor's settings, printed fold by fold.

For each held-out paper the predictor is fitted on the other papers, and inside that fit every setting (mean
basis: source-balanced median, family x task cells or the mixed model; shrinkage towards 0; spread: the mixed
model's or the cells') is scored by an inner leave-one-source-out on the training papers only, by the
per-source mean 80% interval score. This prints, per outer fold, the three best settings the inner search
found, the one chosen, and how that choice then did on the paper it never saw, next to "gap = 0".
`benchmarks/bench_gap.py` prints the resulting table; this script shows the search itself.

    python benchmarks/search_gap.py
"""

from __future__ import annotations

import os
import sys

# The model's matrices are small: threaded BLAS only contends for shared cores, so run it single-threaded.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the project's `core`, run from anywhere

from core.gap.features import FeatureTable
from core.gap.model import fit_gap_model, interval_score, warehouse_pairs
from core.gap.pairs import prepare_pairs
from core.warehouse import open_warehouse


def main() -> None:
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp, open_warehouse(Path(tmp) / "search.duckdb", read_only=False) as wh:
        view, extra = warehouse_pairs(wh)
    prepared = prepare_pairs(view, extra)
    types = tuple(sorted(prepared["task_type"].unique()))
    for source in sorted(prepared["source"].unique()):
        held = (prepared["source"] == source).to_numpy()
        train, test = prepared.loc[~held].reset_index(drop=True), prepared.loc[held].reset_index(drop=True)
        model = fit_gap_model(train, task_types=types)
        top = model.calibration.candidates.sort_values("score", kind="stable").head(3)
        mean, low, high, _ = model.interval(FeatureTable.from_pairs(test))
        y = test["y"].to_numpy(dtype=float)
        print(f"held out: {source} ({len(test)} pairs)")
        for row in top.itertuples(index=False):
            print(f"  inner: {row.shrink:g} x {row.basis}, {row.spread} spread x {row.scale:.2f}: "
                  f"interval score {row.score:.2f}")  # fmt: skip
        covered = ((low <= y) & (y <= high)).mean()
        print(f"  chosen: {model.calibration.describe()}; on the held-out paper MAE {np.abs(y - mean).mean():.2f} "
              f"(gap = 0: {np.abs(y).mean():.2f}), interval score {interval_score(y, low, high, 0.8).mean():.1f}, "
              f"coverage {covered:.0%}")  # fmt: skip
    print(f"({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
