"""The `Warehouse` façade: reads on published snapshots, writes in turns, for any number of processes at once.

Layers, bottom up (nothing below imports anything above):
- `store.py`: snapshots of the DuckDB file for readers, the cross-process write lock and copy-on-write
  publishing for writers (why, from DuckDB's concurrency model, is in its docstring); `remote.py`: the same
  reading interface over Parquet exports.
- `importer.py`, `runs.py`, `seed.py`, `migrate.py`: validate and write rows, given a DuckDB connection.
- this module: opens a warehouse and runs each write as one turn of the store (all or nothing).

No process holds the file open for writing between operations, so app replicas, CLI commands and calibration
runs never see "file in use": a read never waits, a write waits at most `TUNEWISE_WRITE_WAIT_S` seconds.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

import duckdb
import pandas as pd

from core.errors import InputError, ReadOnlyError
from core.registry import METHODS
from core.warehouse import export, importer, migrate, paths, queries, runs, seed
from core.warehouse.importer import ImportReport
from core.warehouse.remote import ParquetSnapshots, publish
from core.warehouse.runs import CalibrationRun, IngestReport, MemoryMeasurement
from core.warehouse.store import FileSnapshots, write_session


class _Snapshots(Protocol):
    def cursor(self) -> duckdb.DuckDBPyConnection: ...

    def close(self) -> None: ...


class Warehouse:
    """An open results warehouse. Build it with `open_warehouse` (file) or `open_parquet` (Parquet folder)."""

    def __init__(
        self,
        snapshots: _Snapshots,
        *,
        location: str,
        file: Path | None = None,
        read_only_reason: str | None = None,
        wait_s: float | None = None,
    ) -> None:
        if read_only_reason is None and file is None:
            raise ValueError("a writable warehouse needs its file")
        self._snapshots = snapshots
        self._file = file
        self._location = location
        self.read_only_reason = read_only_reason
        self.wait_s = paths.write_wait_s(wait_s)

    @property
    def location(self) -> str:
        return self._location

    @property
    def read_only(self) -> bool:
        return self.read_only_reason is not None

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A fresh cursor on the newest published version (each query may see a newer one than the last)."""
        return self._snapshots.cursor()

    def require_writable(self, action: str) -> None:
        """Raise `ReadOnlyError` naming the action before any work starts."""
        if self.read_only_reason is not None:
            raise ReadOnlyError(
                f"cannot {action}: the warehouse {self.location} is read-only ({self.read_only_reason}); "
                "writes happen only where it is opened writable"
            )

    @contextmanager
    def transaction(self, action: str = "write to the warehouse") -> Iterator[duckdb.DuckDBPyConnection]:
        """One write turn: wait for the lock, write a private copy in one transaction, publish it or nothing."""
        self.require_writable(action)
        assert self._file is not None  # writable warehouses have a file (checked in __init__)
        with write_session(self._file, action, self.wait_s) as con:
            con.execute("BEGIN TRANSACTION")
            yield con
            con.execute("COMMIT")

    def schema_version(self) -> int:
        return migrate.current_version(self.cursor())

    def task_types(self) -> tuple[str, ...]:
        return queries.task_types(self)

    # -- writes -------------------------------------------------------------------------------------------

    def import_file(self, path: str | os.PathLike[str], *, max_mb: float | None = None) -> ImportReport:
        """Import a CSV, Parquet or JSON file in the published-results format; all rows or none."""
        name = Path(path).name
        self.require_writable(f"import {name}")
        prepared = importer.prepare_file(Path(path), self.task_types(), max_mb=max_mb)
        with self.transaction(f"import {name}") as cur:
            return importer.write_prepared(cur, prepared, origin="user")

    def add_results(self, frame: pd.DataFrame, origin: str = "user") -> ImportReport:
        """Add rows in the published-results format (plus an optional `seed` column); all rows or none."""
        self.require_writable("add results")
        prepared = importer.prepare_frame(frame, self.task_types())
        with self.transaction("add results") as cur:
            return importer.write_prepared(cur, prepared, origin=origin)

    def add_calibration_run(self, run: CalibrationRun) -> None:
        """Record one calibration run (measured vs predicted, or why it failed)."""
        with self.transaction("add a calibration run") as cur:
            runs.insert_calibration_run(cur, run)

    def add_memory_measurement(self, measurement: MemoryMeasurement) -> int:
        """Record one memory measurement; returns its id."""
        with self.transaction("add a memory measurement") as cur:
            return runs.insert_memory_measurement(cur, measurement)

    def ingest_run_folder(self, path: str | os.PathLike[str]) -> IngestReport:
        """Ingest a finished run folder written by the calibration runner; idempotent."""
        self.require_writable(f"ingest run folder {path}")
        content = runs.read_run_folder(Path(path), self.task_types())
        with self.transaction(f"ingest run folder {path}") as cur:
            return runs.write_run_folder(cur, content)

    def ingest_pending(self, root: str | os.PathLike[str]) -> list[IngestReport]:
        """Ingest every finished run folder under `root` not ingested yet (the app calls this); [] when none."""
        self.require_writable(f"ingest the run folders under {root}")
        pending = runs.pending_run_folders(Path(root), runs.ingested_digests(self.cursor()))
        return [self.ingest_run_folder(folder) for folder in pending]

    # -- reads --------------------------------------------------------------------------------------------

    def export(self, table_or_view: str, path: str | os.PathLike[str]) -> Path:
        """Write one table or view (e.g. `results`, `pairs`) as CSV or Parquet, by the file's suffix."""
        return export.export_relation(self.cursor(), table_or_view, Path(path))

    def export_folder(self, folder: str | os.PathLike[str]) -> list[Path]:
        """Write every table as `<folder>/<table>/data.parquet`: a plain export `TUNEWISE_PARQUET_ROOT` reads."""
        return export.export_folder(self.cursor(), Path(folder))

    def publish_parquet(self, root: str | os.PathLike[str]) -> str:
        """Publish every table as a new version under `root` and switch its pointer (see remote.py)."""
        return publish(self.cursor(), Path(root), wait_s=self.wait_s)

    def stats(self) -> dict[str, Any]:
        """Row counts per table and view, schema version, location and mode."""
        return queries.stats(self)

    # -- lifetime -----------------------------------------------------------------------------------------

    def close(self) -> None:
        self._snapshots.close()

    def __enter__(self) -> Warehouse:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _registry_rows() -> list[tuple[str, str, str, bool]]:
    return [(m.id, m.name, m.family, m.estimable) for m in METHODS.values()]


def _sync_methods(cur: duckdb.DuckDBPyConnection) -> None:
    """Mirror the registry into `methods`: insert new ids, refresh changed ones, never delete referenced ids."""
    cur.executemany(
        "INSERT INTO methods VALUES (?, ?, ?, ?) ON CONFLICT (method_id) DO UPDATE SET "
        "name = excluded.name, family = excluded.family, estimable = excluded.estimable",
        [list(row) for row in _registry_rows()],
    )


def _ready(cur: duckdb.DuckDBPyConnection, location: str) -> bool:
    """Migrated to the latest schema, methods mirrored and seeded (refuses a file from a newer TuneWise)."""
    version = migrate.current_version(cur)
    migrate.check_not_newer(version, location)
    if version != migrate.latest_version():
        return False
    stored = set(cur.execute("SELECT method_id, name, family, estimable FROM methods").fetchall())
    ((published,),) = cur.execute("SELECT count(*) FROM imports WHERE origin = 'published'").fetchall()
    return set(_registry_rows()) <= stored and published > 0


def _prepare(file: Path, wait_s: float) -> None:
    """Create, migrate, mirror the registry and seed in one write turn, unless the published file is ready."""
    if file.is_file():
        snapshots = FileSnapshots(file)
        try:
            if _ready(snapshots.cursor(), str(file)):
                return
        finally:
            snapshots.close()
    with write_session(file, f"create or upgrade the warehouse {file}", wait_s) as con:
        if _ready(con, str(file)):
            return  # another process prepared it while this one waited
        migrate.migrate(con)
        _sync_methods(con)
        seed.seed_if_empty(con)


def open_warehouse(
    path: str | os.PathLike[str] | None = None, read_only: bool | None = None, *, wait_s: float | None = None
) -> Warehouse:
    """Open the warehouse; on first writable use create it, migrate it and seed it from `data/`.

    Without `path`, `TUNEWISE_PARQUET_ROOT` (when set) opens Parquet files read-only, else `TUNEWISE_WAREHOUSE`
    or the user's data directory is used. `read_only=None` follows `TUNEWISE_READ_ONLY`; `wait_s=None`
    follows `TUNEWISE_WRITE_WAIT_S`.
    """
    root = paths.parquet_root()
    if path is None and root is not None:
        return open_parquet(root)
    file = paths.warehouse_path(path).resolve()
    wait = paths.write_wait_s(wait_s)
    if paths.read_only_requested(read_only):
        return _open_read_only(file, env=read_only is None)
    try:
        _prepare(file, wait)
    except duckdb.IOException as exc:
        raise InputError(f"cannot open warehouse {file}: {str(exc).splitlines()[0]}") from None
    return Warehouse(FileSnapshots(file), location=str(file), file=file, wait_s=wait)


def _open_read_only(file: Path, *, env: bool) -> Warehouse:
    if not file.is_file():
        raise InputError(
            f"no warehouse at {file}: create it once where it can be written (`python -m core warehouse init`)"
        )
    wh = Warehouse(
        FileSnapshots(file),
        location=str(file),
        read_only_reason=f"{paths.ENV_READ_ONLY}=1, a read-only deployment" if env else "opened with read_only=True",
    )
    version = wh.schema_version()
    if version != migrate.latest_version():
        wh.close()
        migrate.check_not_newer(version, str(file))
        raise InputError(
            f"warehouse {file} has schema version {version}, this TuneWise needs {migrate.latest_version()}: "
            "open it once writable to upgrade it in place"
        )
    return wh


def open_parquet(root: str) -> Warehouse:
    """A read-only Warehouse over a Parquet root: published versions or a plain export (see remote.py)."""
    snapshots = ParquetSnapshots(root)
    try:
        snapshots.cursor().close()  # resolve the pointer and check the files now, not on the first page
    except BaseException:
        snapshots.close()
        raise
    return Warehouse(
        snapshots, location=root, read_only_reason=f"queries run over Parquet files ({paths.ENV_PARQUET_ROOT})"
    )
