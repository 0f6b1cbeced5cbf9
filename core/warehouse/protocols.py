"""What code that only reads the warehouse may rely on, as typed protocols (no import of the `Warehouse` itself).

The read queries (queries.py), the gap model and the recommender take any of these, so a `Warehouse` on a
DuckDB file, one over a Parquet export, or a test double with a real DuckDB connection all serve them.
"""

from __future__ import annotations

from typing import Protocol

import duckdb


class Readable(Protocol):
    """A fresh cursor on one consistent version of the data, for the calling thread."""

    def cursor(self) -> duckdb.DuckDBPyConnection: ...


class WarehouseReader(Readable, Protocol):
    """A readable warehouse with a stable name (a cache key) and its mode: what the gap model needs."""

    @property
    def location(self) -> str: ...

    @property
    def read_only(self) -> bool: ...
