"""Schema migrations: numbered SQL files applied in order, each in its own transaction.

`migrations/NNNN_name.sql` files are the schema's history; `schema_migrations` records which were applied,
so an older warehouse file upgrades in place on its next writable open. A failed migration rolls back
and leaves the file at the previous version.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import duckdb

from core.errors import InputError

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


class MigrationError(RuntimeError):
    """A migration file failed to apply; the warehouse stays at the version before it."""


@dataclass(frozen=True)
class Migration:
    """One numbered SQL file."""

    version: int
    name: str
    path: Path

    def __post_init__(self) -> None:
        if self.version < 1:
            raise ValueError(f"migration versions start at 1, got {self.version}")

    def sql(self) -> str:
        return self.path.read_text(encoding="utf-8")


def available() -> tuple[Migration, ...]:
    """All migration files in version order; versions must run 1, 2, 3... without gaps."""
    found = []
    for path in MIGRATIONS_DIR.glob("*.sql"):
        match = _FILE.match(path.name)
        if match is None:
            raise MigrationError(f"{path.name}: migration files are named NNNN_name.sql")
        found.append(Migration(int(match.group(1)), match.group(2), path))
    found.sort(key=lambda m: m.version)
    if [m.version for m in found] != list(range(1, len(found) + 1)):
        raise MigrationError(f"migration versions must be 1..N without gaps: {[m.path.name for m in found]}")
    return tuple(found)


def latest_version() -> int:
    return len(available())


def current_version(cur: duckdb.DuckDBPyConnection) -> int:
    """The highest applied version; 0 for a new file."""
    # fetchall, not fetchone: DuckDB 2 keeps a half-read result open and blocks the cursor's next query
    (exists,) = cur.execute(
        "SELECT count(*) FROM information_schema.tables "  # tables and views: Parquet warehouses have views
        "WHERE table_schema = 'main' AND table_name = 'schema_migrations'"
    ).fetchall()
    if not exists[0]:
        return 0
    (row,) = cur.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchall()
    return int(row[0])


def check_not_newer(version: int, location: str) -> None:
    """Refuse a file written by a newer TuneWise: its schema may mean things this code does not know."""
    if version > latest_version():
        raise InputError(
            f"warehouse {location} has schema version {version}, newer than this TuneWise knows "
            f"({latest_version()}): upgrade TuneWise to open it"
        )


def migrate(cur: duckdb.DuckDBPyConnection, target: int | None = None) -> list[int]:
    """Apply pending migrations up to `target` (default: all); returns the versions applied."""
    cur.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        "version INTEGER PRIMARY KEY, name VARCHAR NOT NULL, applied_at TIMESTAMP NOT NULL DEFAULT current_timestamp)"
    )
    done = current_version(cur)
    applied = []
    for migration in available():
        if migration.version <= done or (target is not None and migration.version > target):
            continue
        cur.execute("BEGIN TRANSACTION")
        try:
            cur.execute(migration.sql())
            cur.execute(
                "INSERT INTO schema_migrations (version, name) VALUES (?, ?)", [migration.version, migration.name]
            )
            cur.execute("COMMIT")
        except duckdb.Error as exc:
            cur.execute("ROLLBACK")
            raise MigrationError(f"migration {migration.path.name} failed and was rolled back: {exc}") from exc
        applied.append(migration.version)
    return applied
