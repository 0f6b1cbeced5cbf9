"""The `Warehouse`: one DuckDB database, one writer, a cursor per reading thread.

DuckDB lets one process write a file. The app process is that writer; inside it, writes take a per-file
lock and run in one transaction each (all or nothing), while readers use a cursor per thread and see
committed snapshots. Long jobs (the calibration runner) never open the file: they write run folders that
the app ingests (`ingest_run_folder`). A second process asking to write gets a clear error, not a hang.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import duckdb
import pandas as pd

from core.errors import InputError, ReadOnlyError
from core.registry import METHODS
from core.warehouse import migrate, paths

if TYPE_CHECKING:
    from core.warehouse.importer import ImportReport
    from core.warehouse.runs import CalibrationRun, IngestReport, MemoryMeasurement

_LOCKS: dict[str, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


def _write_lock(location: str) -> threading.Lock:
    """One lock per database file in this process, shared by every `Warehouse` opened on it."""
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(location, threading.Lock())


class Warehouse:
    """An open results warehouse. Build it with `open_warehouse` (file) or `open_parquet` (Parquet folder)."""

    def __init__(self, con: duckdb.DuckDBPyConnection, *, location: str, read_only_reason: str | None = None) -> None:
        self._con = con
        self.location = location
        self.read_only_reason = read_only_reason
        self._lock = _write_lock(location)
        self._local = threading.local()
        self._cursors: list[duckdb.DuckDBPyConnection] = []
        self._cursors_guard = threading.Lock()

    @property
    def read_only(self) -> bool:
        return self.read_only_reason is not None

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """This thread's read cursor (DuckDB connections are not shared between threads)."""
        cur = getattr(self._local, "cursor", None)
        if cur is None:
            cur = self._con.cursor()
            self._local.cursor = cur
            with self._cursors_guard:
                self._cursors.append(cur)
        return cur

    def require_writable(self, action: str) -> None:
        """Raise `ReadOnlyError` naming the action before any work starts."""
        if self.read_only_reason is not None:
            raise ReadOnlyError(
                f"cannot {action}: the warehouse {self.location} is read-only ({self.read_only_reason}); "
                "writes happen only where it is opened writable"
            )

    @contextmanager
    def transaction(self, action: str = "write to the warehouse") -> Iterator[duckdb.DuckDBPyConnection]:
        """The single writer: hold this file's lock, run one transaction, commit, or roll back on any error."""
        self.require_writable(action)
        with self._lock:
            cur = self._con.cursor()
            try:
                cur.execute("BEGIN TRANSACTION")
                try:
                    yield cur
                except BaseException:
                    cur.execute("ROLLBACK")
                    raise
                cur.execute("COMMIT")
            finally:
                cur.close()

    def schema_version(self) -> int:
        return migrate.current_version(self.cursor())

    # -- writes -------------------------------------------------------------------------------------------

    def import_file(self, path: str | os.PathLike[str], *, max_mb: float | None = None) -> ImportReport:
        """Import a CSV, Parquet or JSON file in the published-results format; all rows or none."""
        from core.warehouse.importer import import_file

        return import_file(self, Path(path), origin="user", max_mb=max_mb)

    def add_results(self, frame: pd.DataFrame, origin: str = "user") -> ImportReport:
        """Add rows in the published-results format (plus an optional `seed` column); all rows or none."""
        from core.warehouse.importer import import_frame

        return import_frame(self, frame, origin=origin)

    def add_calibration_run(self, run: CalibrationRun) -> None:
        """Record one calibration run (measured vs predicted, or why it failed)."""
        from core.warehouse.runs import insert_calibration_run

        with self.transaction("add a calibration run") as cur:
            insert_calibration_run(cur, run)

    def add_memory_measurement(self, measurement: MemoryMeasurement) -> int:
        """Record one memory measurement; returns its id."""
        from core.warehouse.runs import insert_memory_measurement

        with self.transaction("add a memory measurement") as cur:
            return insert_memory_measurement(cur, measurement)

    def ingest_run_folder(self, path: str | os.PathLike[str]) -> IngestReport:
        """Ingest a finished run folder written by the calibration runner; idempotent."""
        from core.warehouse.runs import ingest_run_folder

        return ingest_run_folder(self, Path(path))

    # -- reads --------------------------------------------------------------------------------------------

    def export(self, table_or_view: str, path: str | os.PathLike[str]) -> Path:
        """Write one table or view (e.g. `results`, `pairs`) as CSV or Parquet, by the file's suffix."""
        from core.warehouse.export import export_relation

        return export_relation(self.cursor(), table_or_view, Path(path))

    def export_folder(self, folder: str | os.PathLike[str]) -> list[Path]:
        """Write every table as `<folder>/<table>/data.parquet`: the layout `TUNEWISE_PARQUET_ROOT` reads."""
        from core.warehouse.export import export_folder

        return export_folder(self.cursor(), Path(folder))

    def stats(self) -> dict[str, Any]:
        """Row counts per table and view, schema version, location and mode."""
        from core.warehouse.queries import stats

        return stats(self)

    # -- lifetime -----------------------------------------------------------------------------------------

    def close(self) -> None:
        with self._cursors_guard:
            for cur in self._cursors:
                cur.close()
            self._cursors.clear()
        self._con.close()

    def __enter__(self) -> Warehouse:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _connect(file: Path, *, read_only: bool) -> duckdb.DuckDBPyConnection:
    try:
        return duckdb.connect(str(file), read_only=read_only)
    except duckdb.IOException as exc:
        if "lock" in str(exc).lower():
            raise InputError(
                f"warehouse {file} is in use by another process (DuckDB allows one writer per file, and the app "
                "is the writer): stop it, or let the app import the file"
            ) from None
        raise InputError(f"cannot open warehouse {file}: {str(exc).splitlines()[0]}") from None
    except duckdb.ConnectionException as exc:
        raise InputError(
            f"warehouse {file} is already open in this process in another mode: {str(exc).splitlines()[0]}"
        ) from None


def _registry_rows() -> list[tuple[str, str, str, bool]]:
    return [(m.id, m.name, m.family, m.estimable) for m in METHODS.values()]


def _sync_methods(cur: duckdb.DuckDBPyConnection) -> None:
    """Mirror the registry into `methods`: insert new ids, refresh changed ones, never delete referenced ids."""
    cur.executemany(
        "INSERT INTO methods VALUES (?, ?, ?, ?) ON CONFLICT (method_id) DO UPDATE SET "
        "name = excluded.name, family = excluded.family, estimable = excluded.estimable",
        [list(row) for row in _registry_rows()],
    )


def _methods_in_sync(cur: duckdb.DuckDBPyConnection) -> bool:
    stored = set(cur.execute("SELECT method_id, name, family, estimable FROM methods").fetchall())
    return set(_registry_rows()) <= stored


def open_warehouse(path: str | os.PathLike[str] | None = None, read_only: bool | None = None) -> Warehouse:
    """Open the warehouse; on first writable use create it, migrate it and seed it from `data/`.

    Without `path`, `TUNEWISE_PARQUET_ROOT` (when set) opens Parquet files read-only, else `TUNEWISE_WAREHOUSE`
    or the user's data directory is used. `read_only=None` follows `TUNEWISE_READ_ONLY`.
    """
    root = paths.parquet_root()
    if path is None and root is not None:
        from core.warehouse.remote import open_parquet

        return open_parquet(root)
    file = paths.warehouse_path(path).resolve()  # one spelling per file: the writer lock is keyed by it
    if paths.read_only_requested(read_only):
        return _open_read_only(file, env=read_only is None)
    file.parent.mkdir(parents=True, exist_ok=True)
    wh = Warehouse(_connect(file, read_only=False), location=str(file))
    try:
        with wh._lock:
            cur = wh.cursor()
            migrate.check_not_newer(migrate.current_version(cur), wh.location)
            migrate.migrate(cur)
        if not _methods_in_sync(wh.cursor()):
            with wh.transaction("sync the method registry") as cur:
                _sync_methods(cur)
        from core.warehouse.seed import seed_if_empty

        seed_if_empty(wh)
    except BaseException:
        wh.close()
        raise
    return wh


def _open_read_only(file: Path, *, env: bool) -> Warehouse:
    if not file.is_file():
        raise InputError(
            f"no warehouse at {file}: create it once where it can be written (`python -m core warehouse init`)"
        )
    wh = Warehouse(
        _connect(file, read_only=True),
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
