"""The results warehouse: published evidence, user imports and TuneWise's own measurements in DuckDB.

Open it with `open_warehouse()` (created, migrated and seeded from `data/` on first use). Settings live in
`core.warehouse.paths`; the schema in `migrations/`; the dashboard's queries in `core.warehouse.queries`;
how many processes share one warehouse in `core.warehouse.store`. Code that only reads takes a
`WarehouseReader` (protocols.py).
"""

from core.warehouse.db import Warehouse, open_parquet, open_warehouse
from core.warehouse.importer import ImportRejectedError, ImportReport
from core.warehouse.normalise import NormalisationReport, NormalisedMethod, normalise_method
from core.warehouse.protocols import Readable, WarehouseReader
from core.warehouse.queries import (
    Filters,
    calibration_runs,
    claims,
    count_pairs,
    count_results,
    gap_summary,
    memory_measurements,
    method_counts,
    pairs,
    results,
    stats,
    task_types,
)
from core.warehouse.runs import CalibrationRun, IngestReport, MemoryMeasurement
from core.warehouse.store import WriteBusyError

__all__ = [
    "CalibrationRun",
    "Filters",
    "ImportRejectedError",
    "ImportReport",
    "IngestReport",
    "MemoryMeasurement",
    "NormalisationReport",
    "NormalisedMethod",
    "Readable",
    "Warehouse",
    "WarehouseReader",
    "WriteBusyError",
    "calibration_runs",
    "claims",
    "count_pairs",
    "count_results",
    "gap_summary",
    "memory_measurements",
    "method_counts",
    "normalise_method",
    "open_parquet",
    "open_warehouse",
    "pairs",
    "results",
    "stats",
    "task_types",
]
