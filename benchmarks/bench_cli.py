"""Wall time of the CLI as a user meets it: each a fresh `python -m core ...` process, imports included.

Prints `--help` and every sub-command's `--help`; one `estimate` with an empty trace cache (cold) and again
with it filled (warm); and a batch `estimate --input` of N rows in one process, per row. CPU seconds (user +
system of the child) are printed beside wall seconds, since other work on a shared machine stretches wall time.
Goals (issue 13): `--help` under 1 s, one warm estimate under 3 s.

    python benchmarks/bench_cli.py [--repeat 3] [--rows 20] [--model llama-2-7b] [--method lora]
"""

from __future__ import annotations

import argparse
import csv
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = ("calibrate", "estimate", "gap", "models", "recommend", "warehouse")
GPUS = ("A100-80GB", "H100", "RTX-4090", "L40S", "A10G")


def timed(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall, CPU) seconds of one `python -m core ARGV` process; a failure stops the benchmark with its stderr."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "core", *argv], cwd=ROOT, env=env, capture_output=True, text=True,
                          check=False)  # fmt: skip
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"python -m core {' '.join(argv)} exited {done.returncode}: {done.stderr.strip()[-500:]}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def median_of(argv: list[str], env: dict[str, str], repeat: int) -> tuple[float, float]:
    runs = [timed(argv, env) for _ in range(repeat)]
    return statistics.median(w for w, _ in runs), statistics.median(c for _, c in runs)


def line(label: str, wall: float, cpu: float) -> None:
    print(f"{label:<58} {wall:>8.2f} {cpu:>8.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per fast command (the median is printed)")
    parser.add_argument("--rows", type=int, default=20, help="rows of the batch estimate")
    parser.add_argument("--model", default="llama-2-7b")
    parser.add_argument("--method", default="lora")
    args = parser.parse_args()
    print(f"python -m core, a new process each; {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.1f} at start")
    print(f"{'command':<58} {'wall s':>8} {'CPU s':>8}")
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "TUNEWISE_CACHE_DIR": str(Path(tmp) / "traces")}
        line("--help (median)", *median_of(["--help"], env, args.repeat))
        for command in COMMANDS:
            line(f"{command} --help (median)", *median_of([command, "--help"], env, args.repeat))
        one = ["estimate", "--model", args.model, "--method", args.method]
        line(f"{' '.join(one[1:])}, cold (empty trace cache)", *timed(one, env))
        line(f"{' '.join(one[1:])}, warm (median)", *median_of(one, env, args.repeat))
        scenarios = Path(tmp) / "scenarios.csv"
        with scenarios.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["model", "method", "batch_size", "seq_len", "gpu"])
            for i in range(args.rows):  # one traced profile serves every row: batch, length and GPU are arithmetic
                writer.writerow([args.model, args.method, 1 + i % 8, 256 * (1 + i % 8), GPUS[i % len(GPUS)]])
        wall, cpu = timed(["estimate", "--input", str(scenarios)], env)
        line(f"estimate --input ({args.rows} rows), warm", wall, cpu)
        line("  per row", wall / args.rows, cpu / args.rows)


if __name__ == "__main__":
    main()
