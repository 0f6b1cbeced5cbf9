"""Run the warehouse's queries over Parquet files in a folder or an object store, through DuckDB.

Setting: `TUNEWISE_PARQUET_ROOT=<folder or URL>` (e.g. `/mnt/shared/tunewise` or `s3://bucket/tunewise`).
The root holds one sub-folder per table, `<root>/<table>/*.parquet`, which is what
`python -m core warehouse export all <folder>` (or `Warehouse.export_folder`) writes. `open_warehouse()`
then returns a read-only `Warehouse` whose tables are views over `read_parquet(...)`, and whose derived
views (`results_wide`, `pairs`) are replayed from the same migration files, so every query in queries.py
runs unchanged. For s3:// roots DuckDB's httpfs extension reads the files and credentials come from the
standard AWS chain (environment, profile, instance role) via a `credential_chain` secret.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from core.errors import InputError
from core.warehouse import migrate
from core.warehouse.db import Warehouse
from core.warehouse.export import base_tables
from core.warehouse.paths import ENV_PARQUET_ROOT


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


def open_parquet(root: str) -> Warehouse:
    """A read-only Warehouse over `<root>/<table>/*.parquet` (see the module docstring)."""
    remote = "://" in root
    if not remote and not Path(root).is_dir():
        raise InputError(f"{ENV_PARQUET_ROOT}={root!r} is not a folder; export one with `warehouse export all`")
    tables, views = _reference_schema()
    if not remote:
        missing = [t for t in tables if not any((Path(root) / t).glob("*.parquet"))]
        if missing:
            raise InputError(
                f"{root} lacks Parquet files for {', '.join(missing)}; write them with `warehouse export all {root}`"
            )
    con = duckdb.connect()
    try:
        if root.startswith("s3://"):
            con.execute("CREATE SECRET tunewise_s3 (TYPE s3, PROVIDER credential_chain)")
        base = root.rstrip("/")
        for table in tables:
            pattern = _literal(f"{base}/{table}/*.parquet")
            con.execute(f'CREATE VIEW "{table}" AS SELECT * FROM read_parquet({pattern})')
        for ddl in views:
            con.execute(ddl)
    except duckdb.Error as exc:
        con.close()
        raise InputError(f"cannot read the Parquet warehouse at {root}: {str(exc).splitlines()[0]}") from None
    return Warehouse(con, location=root, read_only_reason=f"queries run over Parquet files ({ENV_PARQUET_ROOT})")
