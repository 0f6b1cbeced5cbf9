"""Page latency for 1 vs 4 concurrent reader processes while another process writes 1,000,000 results.

Each reader is a separate process that opens the warehouse as the app does and loads the Evidence page's
queries uncached (the data version from `stats`, a 1,000-row results page and its count, a pairs page and
its count, the gap summary per method) in a loop. A writer process adds 1,000,000 results and their pairs
in one write turn (bench_warehouse.build: copy the file, insert, publish; SQL, not the row-by-row import
validation, which would take minutes). Latency is reported before the write, while it runs and after its
version is published (then the pages read 1M more rows), with the counts each reader saw: a reader must only
ever see the whole old or the whole new version, and no query may fail.

    python benchmarks/bench_warehouse_concurrency.py [--readers 1,4] [--settle 4]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import shutil
import statistics
import sys
import tempfile
import time
from multiprocessing.synchronize import Event
from pathlib import Path

from bench_warehouse import build

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the project's `core`, run from anywhere

from core.warehouse import (
    Filters,
    Warehouse,
    count_pairs,
    count_results,
    gap_summary,
    open_warehouse,
    pairs,
    results,
)

ADDED = 1_000_000
PAGE = 1000


def page(wh: Warehouse) -> int:
    """The Evidence page's warehouse queries, uncached; returns the result count it saw."""
    seen = int(wh.stats()["results"])
    classification = Filters(task_types=["classification"])
    results(wh, classification, limit=PAGE)
    count_results(wh, classification)
    pairs(wh, classification, limit=PAGE)
    count_pairs(wh, classification)
    gap_summary(wh, Filters(metric_kinds=["target"]))
    return seen


def reader(location: str, stop: Event, out: mp.Queue) -> None:
    """Load the page until `stop`; report its loads (finished at, latency s, results seen) and any failures."""
    loads: list[tuple[float, float, int]] = []
    failures: list[str] = []
    with open_warehouse(location) as wh:  # one handle per process, as the app's cache_resource keeps it
        while not stop.is_set():
            started = time.perf_counter()
            try:
                seen = page(wh)
            except Exception as exc:  # reported below: the benchmark counts failures, it does not hide them
                failures.append(f"{type(exc).__name__}: {exc}")
                continue
            loads.append((time.time(), time.perf_counter() - started, seen))
    out.put((loads, failures))


def writer(location: str, target: int, out: mp.Queue) -> None:
    """One write turn of `target - existing` results; reports (started, published) wall-clock times."""
    with open_warehouse(location) as wh:
        started = time.time()
        build(wh, target)
        out.put((started, time.time()))


def _row(label: str, latencies: list[float]) -> str:
    if not latencies:
        return f"{label:<34} {0:>6}"
    ms = sorted(x * 1000 for x in latencies)
    p95 = ms[min(len(ms) - 1, int(0.95 * len(ms)))]
    return f"{label:<34} {len(ms):>6} {statistics.median(ms):>10.0f} {p95:>8.0f} {ms[-1]:>8.0f}"


def run(seeded: Path, readers: int, settle_s: float, tmp: Path) -> None:
    location = tmp / f"bench-{readers}.duckdb"
    shutil.copyfile(seeded, location)
    with open_warehouse(location) as wh:
        before = int(wh.stats()["results"])
    ctx = mp.get_context("spawn")
    stop, out, done = ctx.Event(), ctx.Queue(), ctx.Queue()
    procs = [ctx.Process(target=reader, args=(str(location), stop, out)) for _ in range(readers)]
    for proc in procs:
        proc.start()
    time.sleep(settle_s)  # imports, first loads, then a baseline
    write = ctx.Process(target=writer, args=(str(location), before + ADDED, done))
    write.start()
    started, published = done.get(timeout=600)
    write.join()
    time.sleep(settle_s)
    stop.set()
    reports = [out.get(timeout=120) for _ in procs]
    for proc in procs:
        proc.join()
    loads = [load for report in reports for load in report[0]]
    failures = [failure for report in reports for failure in report[1]]
    seen = sorted({load[2] for load in loads})
    print(f"\n{readers} reader process{'es' if readers > 1 else ''}: write of {ADDED:,} results took "
          f"{published - started:.1f} s; counts seen {seen} (before {before:,}, after {before + ADDED:,}); "
          f"{len(failures)} failed page loads")
    for failure in failures[:3]:
        print(f"  failure: {failure}")
    print(f"{'phase':<34} {'pages':>6} {'median ms':>10} {'p95 ms':>8} {'max ms':>8}")
    print(_row("before the write", [lat for end, lat, _ in loads if end < started]))
    print(_row("during the write", [lat for end, lat, _ in loads if started <= end - lat and end <= published]))
    print(_row("after publishing (+1M rows)", [lat for end, lat, _ in loads if end - lat > published]))


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--readers", default="1,4", help="reader process counts to compare, e.g. 1,4")
    parser.add_argument("--settle", type=float, default=3.0, help="seconds of reading before and after the write")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        seeded = Path(tmp) / "seeded.duckdb"
        open_warehouse(seeded).close()
        for count in (int(n) for n in args.readers.split(",")):
            run(seeded, count, args.settle, Path(tmp))


if __name__ == "__main__":
    main()
