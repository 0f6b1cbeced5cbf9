"""Export any table or view as CSV or Parquet, or every table as a Parquet folder.

The folder layout `<folder>/<table>/data.parquet` is what `TUNEWISE_PARQUET_ROOT` reads (see remote.py):
export, copy the folder to shared storage or an object store, and point other machines at it.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from core.errors import InputError

FORMATS = {".csv": "FORMAT csv, HEADER true", ".parquet": "FORMAT parquet"}


def base_tables(cur: duckdb.DuckDBPyConnection) -> list[str]:
    """The warehouse's tables (not views), sorted."""
    rows = cur.execute(
        "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main' AND NOT internal AND NOT temporary "
        "ORDER BY table_name"
    ).fetchall()
    return [r[0] for r in rows]


def relations(cur: duckdb.DuckDBPyConnection) -> list[str]:
    """Every exportable table and view name, sorted."""
    views = cur.execute(
        "SELECT view_name FROM duckdb_views() WHERE schema_name = 'main' AND NOT internal AND NOT temporary"
    ).fetchall()
    return sorted([*base_tables(cur), *(v[0] for v in views)])


def _literal(path: Path) -> str:
    """A SQL string literal for a path (COPY takes no parameters)."""
    return "'" + str(path).replace("'", "''") + "'"


def _copy(cur: duckdb.DuckDBPyConnection, name: str, path: Path) -> None:
    options = FORMATS[path.suffix.lower()]
    cur.execute(f'COPY (SELECT * FROM "{name}") TO {_literal(path)} ({options})')


def export_relation(cur: duckdb.DuckDBPyConnection, name: str, path: Path) -> Path:
    """Write table or view `name` to `path` (.csv or .parquet)."""
    known = relations(cur)
    if name not in known:
        raise InputError(f"unknown table or view {name!r}; choose one of {', '.join(known)}")
    if path.suffix.lower() not in FORMATS:
        raise InputError(f"{path.name}: export as .csv or .parquet (got {path.suffix or 'no suffix'!r})")
    if not path.parent.is_dir():
        raise InputError(f"folder {path.parent} does not exist; create it first")
    _copy(cur, name, path)
    return path


def export_folder(cur: duckdb.DuckDBPyConnection, folder: Path) -> list[Path]:
    """Write every table to `<folder>/<table>/data.parquet`; returns the files written."""
    if folder.exists() and not folder.is_dir():
        raise InputError(f"{folder} is a file; give a folder to export every table into")
    written = []
    for name in base_tables(cur):
        target = folder / name / "data.parquet"
        target.parent.mkdir(parents=True, exist_ok=True)
        _copy(cur, name, target)
        written.append(target)
    return written
