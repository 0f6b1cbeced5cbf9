"""Wall time of the CPU calibration probe the Calibrate page offers without a GPU (goal: under two minutes on 2
cores), with each method's measured against predicted activations.

Run: python benchmarks/bench_calibrate.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODEL = "data/calibrate/smollm2-mini"
STEPS = 2  # the page's CPU default


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        env = {**os.environ, "TUNEWISE_WAREHOUSE": str(Path(folder) / "w.duckdb"), "TUNEWISE_RUNS_DIR": folder}
        command = [sys.executable, "-m", "core", "calibrate", "--probe", "--model", MODEL, "--device", "cpu",
                   "--steps", str(STEPS), "--json"]
        start = time.perf_counter()
        out = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=True)
        wall = time.perf_counter() - start
    runs = json.loads(out.stdout)["runs"]
    print(f"CPU probe of {MODEL}, {STEPS} steps per method, {len(runs)} methods: {wall:.1f} s wall (process start "
          "and imports included)")
    print()
    print("| method | status | predicted activations (B) | measured (B) | tokens/s |")
    print("|---|---|---:|---:|---:|")
    for r in runs:
        print(f"| {r['method']} | {r['status']} | {r.get('predicted_activations')} | {r.get('measured_activations')} "
              f"| {r.get('tokens_per_s') or 0:.0f} |")


if __name__ == "__main__":
    main()
