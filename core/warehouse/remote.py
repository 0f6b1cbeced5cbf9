"""Run the warehouse's queries over Parquet exports in a folder or an object store, through DuckDB.

Setting: `TUNEWISE_PARQUET_ROOT=<folder or URL>` (e.g. `/mnt/shared/tunewise` or `s3://bucket/tunewise`).
Two layouts are read:

- **Published versions** (`python -m core warehouse publish ROOT`, for several app replicas): one writer
  exports every table into a new folder `<root>/versions/<version>/<table>/data.parquet`, then switches the
  pointer `<root>/CURRENT` (a one-line text file naming the version, replaced atomically). Readers resolve
  the pointer, so they always see one complete version; a local root is re-checked on every query (one
  `stat`), a remote one at most every `TUNEWISE_PARQUET_REFRESH_S` seconds (default 5). The newest
  `KEEP_VERSIONS` versions are kept so a reader still on the previous one finishes its query.
- **A plain export** (`warehouse export all ROOT`): `<root>/<table>/*.parquet`, no pointer.

Tables become views over `read_parquet(...)` and the derived views (`results_wide`, `pairs`) are replayed
from the migration files, so every query in queries.py runs unchanged. For s3:// roots DuckDB's httpfs
extension reads the files, with credentials from the standard AWS chain through a `credential_chain` secret.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from core.errors import InputError
from core.warehouse import migrate
from core.warehouse.export import base_tables, export_folder
from core.warehouse.paths import ENV_PARQUET_ROOT
from core.warehouse.store import QUIET, write_lock

POINTER = "CURRENT"
VERSIONS = "versions"
KEEP_VERSIONS = 3
ENV_REFRESH_S = "TUNEWISE_PARQUET_REFRESH_S"


def _reference_schema() -> tuple[list[str], list[str]]:
    """(table names, view DDL in creation order) of a fully migrated, empty warehouse."""
    ref = duckdb.connect()
    try:
        migrate.migrate(ref)
        tables = base_tables(ref)
        views = ref.execute(
            "SELECT sql FROM duckdb_views() WHERE schema_name = 'main' AND NOT internal ORDER BY view_oid"
        ).fetchall()
        return tables, [v[0] for v in views]
    finally:
        ref.close()


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _refresh_s() -> float:
    text = os.environ.get(ENV_REFRESH_S, "").strip()
    try:
        value = float(text) if text else 5.0
    except ValueError:
        raise InputError(f"{ENV_REFRESH_S}={text!r} is not a number of seconds, e.g. 5") from None
    if value < 0:
        raise InputError(f"{ENV_REFRESH_S} must be at least 0 seconds, got {value:g}")
    return value


class ParquetSnapshots:
    """Read cursors on the current version of a Parquet root (see the module docstring)."""

    def __init__(self, root: str) -> None:
        self.root = root.rstrip("/")
        self.remote = "://" in root
        self._tables, self._views = _reference_schema()
        self._guard = threading.Lock()
        self._version = ""
        self._checked = 0.0
        self._con: duckdb.DuckDBPyConnection | None = None
        if not self.remote and not Path(root).is_dir():
            raise InputError(f"{ENV_PARQUET_ROOT}={root!r} is not a folder; write one with `warehouse publish`")
        self._refresh_s = _refresh_s()

    def _pointer(self, con: duckdb.DuckDBPyConnection) -> str:
        """The published version the pointer names, or '' for a plain export without a pointer."""
        if not self.remote:
            path = Path(self.root) / POINTER
            return path.read_text(encoding="utf-8").strip() if path.is_file() else ""
        try:
            rows = con.execute("SELECT content FROM read_text(?)", [f"{self.root}/{POINTER}"]).fetchall()
        except duckdb.IOException:
            return ""
        return str(rows[0][0]).strip() if rows else ""

    def _build(self, version: str) -> duckdb.DuckDBPyConnection:
        base = f"{self.root}/{VERSIONS}/{version}" if version else self.root
        if not self.remote:
            missing = [t for t in self._tables if not any((Path(base) / t).glob("*.parquet"))]
            if missing:
                raise InputError(
                    f"{base} lacks Parquet files for {', '.join(missing)}; write them with `warehouse publish "
                    f"{self.root}` (or `warehouse export all {self.root}`)"
                )
        con = self._connect()
        try:
            for table in self._tables:
                files = _literal(f"{base}/{table}/*.parquet")
                con.execute(f'CREATE VIEW "{table}" AS SELECT * FROM read_parquet({files})')
            for ddl in self._views:
                con.execute(ddl)
        except duckdb.Error as exc:
            con.close()
            raise InputError(f"cannot read the Parquet warehouse at {base}: {str(exc).splitlines()[0]}") from None
        return con

    def _connect(self) -> duckdb.DuckDBPyConnection:
        con = duckdb.connect()
        if self.root.startswith("s3://"):
            con.execute("CREATE SECRET tunewise_s3 (TYPE s3, PROVIDER credential_chain)")
        return con

    @property
    def version(self) -> str:
        """The version being read ('' for a plain export)."""
        self.cursor().close()
        return self._version

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A fresh cursor on the current version (re-resolving the pointer as the module docstring says)."""
        with self._guard:
            now = time.monotonic()
            due = self._con is None or not self.remote or now - self._checked >= self._refresh_s
            if due:
                probe = self._con if self._con is not None else self._connect()
                version = self._pointer(probe)
                self._checked = now
                if self._con is None or version != self._version:
                    self._con, self._version = self._build(version), version
            assert self._con is not None
            cur = self._con.cursor()
        cur.execute(QUIET)
        return cur

    def close(self) -> None:
        with self._guard:
            if self._con is not None:
                self._con.close()
            self._con = None


def publish(cur: duckdb.DuckDBPyConnection, root: Path, *, wait_s: float) -> str:
    """Export every table as a new version under `root`, then switch `root/CURRENT` to it; returns the version.

    One publisher at a time (a lock beside the pointer). Object stores: publish to a local folder and copy
    `versions/<version>/` up before `CURRENT` (e.g. `aws s3 sync`, then `aws s3 cp CURRENT`).
    """
    if "://" in str(root):
        raise InputError(f"publish writes a local folder, not {root}: publish locally, then copy it up (pointer last)")
    if root.exists() and not root.is_dir():
        raise InputError(f"{root} is a file; give a folder to publish Parquet versions into")
    root.mkdir(parents=True, exist_ok=True)
    pointer = root / POINTER
    with write_lock(pointer, f"publish Parquet to {root}", wait_s):
        folder = root / VERSIONS
        folder.mkdir(exist_ok=True)
        numbers = [int(p.name[1:7]) for p in folder.iterdir() if p.is_dir() and p.name[1:7].isdigit()]
        version = f"v{max(numbers, default=0) + 1:06d}-{datetime.now(UTC):%Y%m%dT%H%M%S}"  # sorts by number
        staging = folder / f".{version}.{uuid.uuid4().hex[:6]}.partial"
        try:
            export_folder(cur, staging)
            staging.rename(folder / version)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        temporary = root / f".{POINTER}.{os.getpid()}.tmp"
        temporary.write_text(version + "\n", encoding="utf-8")
        os.replace(temporary, pointer)
        versions = sorted(p for p in folder.iterdir() if p.is_dir() and p.name[1:7].isdigit())
        for old in versions[:-KEEP_VERSIONS]:
            shutil.rmtree(old, ignore_errors=True)
        for partial in folder.glob(".*.partial"):  # publishers that died midway
            shutil.rmtree(partial, ignore_errors=True)
    return version
