"""Fixtures: one seeded warehouse per session, copied into each test's own folder.

Every test runs with TUNEWISE_WAREHOUSE pointing into its tmp_path, so the user's real data directory is
never touched, and with the other TUNEWISE_* settings cleared.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from core.warehouse import Warehouse, open_warehouse
from core.warehouse.conventions import PUBLISHED_COLUMNS


@pytest.fixture(scope="session")
def ro(seeded_file: Path) -> Iterator[Warehouse]:
    """The session's seeded warehouse, open read-only: for tests that only read."""
    warehouse = open_warehouse(seeded_file, read_only=True)
    yield warehouse
    warehouse.close()


def good_row(**changes: str) -> dict[str, str]:
    """One valid row in the published-results format (a user's own LoRA run), with `changes` applied."""
    row = {
        "source": "My lab notebook",
        "table": "Run 1",
        "base_model": "Qwen2.5-0.5B",
        "base_params_b": "0.494",
        "task": "GLUE SST-2",
        "task_type": "classification",
        "train_examples": "67000",
        "method": "LoRA r=8",
        "trainable_pct": "0.3",
        "metric": "accuracy",
        "value": "91.5",
        "adversarial": "no",
        "notes": "",
    }
    row.update(changes)
    return row


def write_csv(path: Path, rows: Sequence[dict[str, str]], columns: Sequence[str] = PUBLISHED_COLUMNS) -> Path:
    """Write rows under a header of `columns` (default: the published-results columns)."""
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def count(wh: Warehouse, table: str) -> int:
    ((n,),) = wh.cursor().execute(f"SELECT count(*) FROM {table}").fetchall()
    return int(n)


def table_counts(wh: Warehouse) -> dict[str, int]:
    """Row counts of every table that an import may write."""
    names = ("results", "sources", "models", "tasks", "setups", "imports", "pair_rows")
    return {name: count(wh, name) for name in names}
