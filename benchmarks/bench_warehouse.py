"""Time the dashboard's warehouse queries on a synthetic warehouse of 1,000,000 results.

Builds a seeded warehouse in a temporary folder, tops it up to 1,000,000 results with DuckDB SQL over
`range()` (setups of 8 rows: one full fine-tuning row and 7 PEFT rows, so pairs exist), then runs each
dashboard query warm and prints the median of several runs in milliseconds. The dashboard shows a page of
rows plus the total count, and summaries; the two '(reference)' lines time materialising every matching
row as a DataFrame, for comparison.

    python benchmarks/bench_warehouse.py [--runs 7]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the project's `core`, run from anywhere

from core.registry import METHODS, method_ids
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
from core.warehouse.importer import refresh_pairs

TOTAL_RESULTS = 1_000_000
SOURCES, MODELS, TASKS = 500, 200, 600


def build(wh: Warehouse, total: int) -> None:
    """Add synthetic sources, models, tasks, setups and results until the warehouse holds `total` results."""
    ((existing,),) = wh.cursor().execute("SELECT count(*) FROM results").fetchall()
    missing = total - existing
    setups = -(-missing // 8)
    peft = [m for m in method_ids() if METHODS[m].family != "full"]
    with wh.transaction("build the benchmark warehouse") as w:
        w.execute(
            "INSERT INTO sources (citation, table_ref) "
            f"SELECT 'Synthetic source ' || i, 'Table ' || (i % 9) FROM range({SOURCES}) t(i)"
        )
        # model sizes log-uniform between 0.06B and 175B
        w.execute(
            "INSERT INTO models (name, params_b, family) "
            f"SELECT 'synthetic-model-' || i, round(exp(ln(0.06) + (ln(175) - ln(0.06)) * i / {MODELS - 1}), 3), "
            f"'synthetic' FROM range({MODELS}) t(i)"
        )
        w.execute(
            "INSERT INTO tasks (name, task_type, metric, metric_kind, higher_is_better, distribution) "
            "SELECT 'synthetic task ' || i, tt.task_type, 'accuracy', 'target', true, "
            "['in-domain', 'ood', 'adversarial'][1 + i % 3] "
            f"FROM range({TASKS}) t(i) JOIN (SELECT task_type, row_number() OVER (ORDER BY task_type) - 1 AS k "
            "FROM task_types) tt ON tt.k = i % 6"
        )
        ((source0, model0, task0, setup0),) = w.execute(
            "SELECT (SELECT min(source_id) FROM sources WHERE citation LIKE 'Synthetic source %'), "
            "(SELECT min(model_id) FROM models WHERE name LIKE 'synthetic-model-%'), "
            "(SELECT min(task_id) FROM tasks WHERE name LIKE 'synthetic task %'), "
            "(SELECT coalesce(max(setup_id), 0) + 1 FROM setups)"
        ).fetchall()
        # Setup g: source g % 500, model (g // 500) % 200, a task, and a training size that changes every
        # 100,000 setups, so no two setups share a pair key.
        w.execute(
            f"""
            INSERT INTO setups (setup_id, source_id, model_id, task_id, train_examples)
            SELECT {setup0} + g, {source0} + g % {SOURCES}, {model0} + (g // {SOURCES}) % {MODELS},
                {task0} + (g * 37) % {TASKS},
                CASE g // {SOURCES * MODELS} WHEN 0 THEN NULL ELSE (g // {SOURCES * MODELS}) * 1000 END
            FROM range({setups}) t(g)
            """
        )
        ((import_id,),) = w.execute(
            "INSERT INTO imports (file_name, origin, row_count, other_methods) "
            f"VALUES ('synthetic benchmark', 'user', {missing}, 0) RETURNING import_id"
        ).fetchall()
        # Row i is on setup i // 8: the first of each 8 is full fine-tuning, the others PEFT methods.
        w.execute(
            f"""
            INSERT INTO results (import_id, source_id, model_id, task_id, setup_id, method_id, method_raw,
                quoted_from_prior_work, restricted_setup, metric_value, value_scale, value_100, origin)
            SELECT ?, su.source_id, su.model_id, su.task_id, su.setup_id, r.method, r.method, false, false,
                r.v, '0-100', r.v, 'user'
            FROM (
                SELECT {setup0} + i // 8 AS setup_id,
                    CASE WHEN i % 8 = 0 THEN 'fft' ELSE list_extract(?, 1 + (i * 7919) % {len(peft)}) END AS method,
                    round(40 + 55 * random(), 1) AS v
                FROM range({missing}) t(i)
            ) r
            JOIN setups su ON su.setup_id = r.setup_id
            ORDER BY r.setup_id
            """,
            [import_id, peft],
        )
        refresh_pairs(w, import_id)
    ((done,),) = wh.cursor().execute("SELECT count(*) FROM results").fetchall()  # the newly published version
    if done != total:
        raise RuntimeError(f"built {done} results, wanted {total}")


def time_query(run: Callable[[], object], runs: int) -> tuple[float, int]:
    """(median ms over `runs` warm runs, rows of the first DataFrame the query returns)."""
    answer = run()  # warm-up
    frame = answer[0] if isinstance(answer, tuple) else answer
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"a dashboard query returned {type(frame).__name__}, not a DataFrame")
    timings = []
    for _ in range(runs):
        start = time.perf_counter()
        run()
        timings.append((time.perf_counter() - start) * 1000)
    return statistics.median(timings), len(frame)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="timed runs per query (median reported)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        wh = open_warehouse(Path(tmp) / "bench.duckdb", read_only=False)
        build(wh, TOTAL_RESULTS)
        print(f"built a warehouse of {TOTAL_RESULTS:,} results in {time.perf_counter() - started:.1f} s")
        classification = Filters(task_types=["classification"])
        mid_size = Filters(min_params_b=1, max_params_b=10)
        lora = Filters(methods=["lora"])
        page = 1000  # rows the dashboard's evidence table shows at once; the total comes from a count
        queries: dict[str, Callable[[], object]] = {
            "results: task type (page + count)": lambda: (
                results(wh, classification, limit=page), count_results(wh, classification)),
            "results: model size 1-10B (page + count)": lambda: (
                results(wh, mid_size, limit=page), count_results(wh, mid_size)),
            "results: method lora (page + count)": lambda: (results(wh, lora, limit=page), count_results(wh, lora)),
            "results: code, 1-10B, lora/qlora (all rows)": lambda: results(
                wh, Filters(task_types=["code"], min_params_b=1, max_params_b=10, methods=["lora", "qlora"])),
            "pairs: task type (page + count)": lambda: (
                pairs(wh, classification, limit=page), count_pairs(wh, classification)),
            "pairs: task type, gap summary per method": lambda: gap_summary(wh, classification),
            "pairs: task type + lora (all rows)": lambda: pairs(
                wh, Filters(task_types=["reasoning-math"], methods=["lora"])),
            "(reference) results: task type, all rows": lambda: results(wh, classification),
            "(reference) pairs: task type, all rows": lambda: pairs(wh, classification),
        }  # fmt: skip
        print(f"{'query':<46} {'rows':>9} {'median ms':>10}")
        for name, run in queries.items():
            ms, rows = time_query(run, args.runs)
            print(f"{name:<46} {rows:>9,} {ms:>10.1f}")
        wh.close()


if __name__ == "__main__":
    main()
