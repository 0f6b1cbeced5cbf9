"""The dashboard's read queries, as functions returning pandas DataFrames.

Each takes anything `Readable` (a `Warehouse` on a DuckDB file or on Parquet files; see protocols.py), so
the same code serves the app, the CLI and remote Parquet folders. Filters are SQL parameters, never string
formatting; unknown filter values raise InputError naming the valid ones.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import pandas as pd

from core.errors import InputError
from core.registry import METHODS
from core.warehouse import migrate
from core.warehouse.conventions import DISTRIBUTION_NAMES, METRIC_KINDS, ORIGINS
from core.warehouse.normalise import OTHER
from core.warehouse.protocols import Readable

# Filtered columns as named in `results_wide` and `pair_rows` (flat), and over the base tables (narrow).
_FLAT: Mapping[str, str] = MappingProxyType({c: c for c in (
    "task_type", "method_id", "source", "distribution", "origin", "metric_kind", "params_b")})  # fmt: skip
_NARROW: Mapping[str, str] = MappingProxyType({
    "task_type": "t.task_type", "distribution": "t.distribution", "metric_kind": "t.metric_kind",
    "params_b": "m.params_b", "source": "s.citation", "method_id": "r.method_id", "origin": "r.origin",
})  # fmt: skip
_NARROW_JOINS: Mapping[str, str] = MappingProxyType({
    "t": "JOIN tasks t ON t.task_id = r.task_id",
    "m": "JOIN models m ON m.model_id = r.model_id",
    "s": "JOIN sources s ON s.source_id = r.source_id",
})  # fmt: skip


def _tuple(values: Sequence[str] | None) -> tuple[str, ...] | None:
    return None if values is None else tuple(values)


@dataclass(frozen=True)
class Filters:
    """The dashboard's filters, shared by results and pairs; None means 'any'. Model sizes in billions."""

    task_types: Sequence[str] | None = None
    min_params_b: float | None = None
    max_params_b: float | None = None
    methods: Sequence[str] | None = None
    sources: Sequence[str] | None = None
    distributions: Sequence[str] | None = None
    origins: Sequence[str] | None = None
    metric_kinds: Sequence[str] | None = None

    def __post_init__(self) -> None:
        for name in ("task_types", "methods", "sources", "distributions", "origins", "metric_kinds"):
            value = getattr(self, name)
            if isinstance(value, str):
                raise InputError(f"filter {name} takes a list, e.g. [{value!r}]")
            object.__setattr__(self, name, _tuple(value))
        lo, hi = self.min_params_b, self.max_params_b
        if lo is not None and hi is not None and lo > hi:
            raise InputError(f"model size range is empty: min {lo:g}B is above max {hi:g}B")
        for name, allowed in (
            ("methods", tuple(METHODS)),
            ("distributions", DISTRIBUTION_NAMES),
            ("origins", ORIGINS),
            ("metric_kinds", METRIC_KINDS),
        ):
            unknown = [v for v in getattr(self, name) or () if v not in allowed]
            if unknown:
                raise InputError(f"unknown {name} {', '.join(map(repr, unknown))}; choose from {', '.join(allowed)}")

    def _lists(self) -> tuple[tuple[str, tuple[str, ...] | None], ...]:
        """(column, chosen values) for every list filter; values are tuples after __post_init__."""
        return tuple(
            (column, getattr(self, name))
            for column, name in (
                ("task_type", "task_types"),
                ("method_id", "methods"),
                ("source", "sources"),
                ("distribution", "distributions"),
                ("origin", "origins"),
                ("metric_kind", "metric_kinds"),
            )
        )

    def where(self, columns: Mapping[str, str] = _FLAT) -> tuple[str, list[Any]]:
        """A SQL WHERE clause and its parameters; `columns` names each filtered column's SQL expression."""
        clauses: list[str] = []
        params: list[Any] = []
        for column, values in self._lists():
            if values is not None:
                clauses.append(f"{columns[column]} IN ({', '.join('?' * len(values))})" if values else "false")
                params.extend(values)
        if self.min_params_b is not None:
            clauses.append(f"{columns['params_b']} >= ?")
            params.append(self.min_params_b)
        if self.max_params_b is not None:
            clauses.append(f"{columns['params_b']} <= ?")
            params.append(self.max_params_b)
        return (f"WHERE {' AND '.join(clauses)}" if clauses else ""), params

    def matching_results(self) -> tuple[str, list[Any]]:
        """`SELECT r.result_id FROM results r ...` joining only the tables these filters need.

        Every result has its source, model and task (foreign keys), so leaving unfiltered tables out
        changes no answer; it makes counts and page look-ups several times faster than `results_wide`.
        """
        active = {column for column, values in self._lists() if values is not None}
        if self.min_params_b is not None or self.max_params_b is not None:
            active.add("params_b")
        aliases = {_NARROW[column].split(".")[0] for column in active}
        joins = " ".join(join for alias, join in _NARROW_JOINS.items() if alias in aliases)
        where, params = self.where(_NARROW)
        return f"SELECT r.result_id FROM results r {joins} {where}", params


def _frame(src: Readable, sql: str, params: Sequence[Any] = ()) -> pd.DataFrame:
    # Arrow is about twice as fast as DuckDB's direct pandas conversion for wide string columns.
    cur = src.cursor()
    try:
        return cur.sql(sql, params=list(params)).to_arrow_table().to_pandas()
    finally:
        cur.close()


def _page(limit: int | None, offset: int) -> str:
    if (limit is not None and limit < 1) or offset < 0:
        raise InputError(f"page limit must be at least 1 and offset at least 0, got {limit} and {offset}")
    return ("" if limit is None else f" LIMIT {int(limit)}") + (f" OFFSET {int(offset)}" if offset else "")


def results(
    src: Readable, filters: Filters | None = None, *, limit: int | None = None, offset: int = 0
) -> pd.DataFrame:
    """Results with their names spelled out, oldest first; `limit`/`offset` page through them.

    A page is found in two steps: the ids of the page from the narrow join, then `results_wide` for just
    those ids (result ids only grow, so the zone maps on `result_id` skip the rest of the table). Results
    are never updated or deleted, so a write between the two steps cannot change the page's rows.
    """
    chosen = filters or Filters()
    page = _page(limit, offset)
    if limit is None:
        where, params = chosen.where()
        return _frame(src, f"SELECT * FROM results_wide {where} ORDER BY result_id{page}", params)
    ids_sql, params = chosen.matching_results()
    ids = [row[0] for row in src.cursor().execute(f"{ids_sql} ORDER BY r.result_id{page}", params).fetchall()]
    return _frame(
        src,
        "SELECT * FROM results_wide WHERE result_id BETWEEN ? AND ? AND list_contains(?, result_id) ORDER BY result_id",
        [min(ids, default=0), max(ids, default=0), ids],
    )


def count_results(src: Readable, filters: Filters | None = None) -> int:
    """How many results match (the total behind a page of `results`)."""
    ids_sql, params = (filters or Filters()).matching_results()
    ((count,),) = src.cursor().execute(f"SELECT count(*) FROM ({ids_sql})", params).fetchall()
    return int(count)


def pairs(src: Readable, filters: Filters | None = None, *, limit: int | None = None, offset: int = 0) -> pd.DataFrame:
    """Matched FFT-vs-PEFT pairs with their gap (PEFT minus FFT, 0-100 scale); see migrations/0003_pairs.sql."""
    where, params = (filters or Filters()).where()
    return _frame(src, f"SELECT * FROM pair_rows {where} ORDER BY peft_result_id{_page(limit, offset)}", params)


def count_pairs(src: Readable, filters: Filters | None = None) -> int:
    """How many pairs match."""
    where, params = (filters or Filters()).where()
    ((count,),) = src.cursor().execute(f"SELECT count(*) FROM pair_rows {where}", params).fetchall()
    return int(count)


def gap_summary(src: Readable, filters: Filters | None = None) -> pd.DataFrame:
    """Per method: pairs, gap quartiles and mean, and the share of pairs where PEFT did at least as well.

    Forgetting metrics measure retention, not the target task: pass `metric_kinds=["target"]` to leave them out.
    """
    where, params = (filters or Filters()).where()
    return _frame(
        src,
        f"""
        SELECT method_id, count(*) AS pairs, count(DISTINCT source) AS sources,
            quantile_cont(gap, 0.25) AS gap_q25, median(gap) AS gap_median, quantile_cont(gap, 0.75) AS gap_q75,
            avg(gap) AS gap_mean, avg((peft_advantage >= 0)::INTEGER) AS share_peft_at_least_fft
        FROM pair_rows {where}
        GROUP BY method_id ORDER BY pairs DESC, method_id
        """,
        params,
    )


def claims(src: Readable) -> pd.DataFrame:
    """The seed paper's claims, numeric and qualitative, in claim order."""
    return _frame(src, "SELECT * FROM claims ORDER BY try_cast(substr(claim_id, 2) AS INTEGER), claim_id")


def calibration_runs(src: Readable) -> pd.DataFrame:
    """Calibration runs, newest first."""
    return _frame(src, "SELECT * FROM calibration_runs ORDER BY created_at DESC, run_id")


def memory_measurements(src: Readable) -> pd.DataFrame:
    """Memory measurements, newest first."""
    return _frame(src, "SELECT * FROM memory_measurements ORDER BY created_at DESC, measurement_id DESC")


def method_counts(src: Readable) -> pd.DataFrame:
    """The normalisation report: rows per method id with the raw names that map to it."""
    return _frame(
        src,
        "SELECT method_id, count(*) AS rows, list(DISTINCT method_raw ORDER BY method_raw) AS raw_names "
        "FROM results GROUP BY method_id ORDER BY rows DESC, method_id",
    )


def task_types(src: Readable) -> tuple[str, ...]:
    """The warehouse's task types, sorted: the one list import validation, the model and the pages use."""
    rows = src.cursor().execute("SELECT task_type FROM task_types ORDER BY task_type").fetchall()
    return tuple(r[0] for r in rows)


def stats(src: Readable) -> dict[str, Any]:
    """Counts per table and view (`results`, `sources`, `claims`, `pairs`, ...), plus schema and mode."""
    cur = src.cursor()
    row = cur.execute(
        """
        SELECT
            (SELECT count(*) FROM results), (SELECT count(*) FROM sources), (SELECT count(*) FROM models),
            (SELECT count(*) FROM tasks), (SELECT count(*) FROM claims), (SELECT count(*) FROM pair_rows),
            (SELECT count(*) FROM calibration_runs), (SELECT count(*) FROM memory_measurements),
            (SELECT count(*) FROM imports), (SELECT count(*) FROM results WHERE method_id = ?)
        """,
        [OTHER],
    ).fetchall()[0]
    keys = (
        "results", "sources", "models", "tasks", "claims", "pairs", "calibration_runs", "memory_measurements",
        "imports", "other_methods",
    )  # fmt: skip
    counts: dict[str, Any] = {key: int(value) for key, value in zip(keys, row, strict=True)}
    counts["schema_version"] = migrate.current_version(cur)
    location = getattr(src, "location", None)
    if location is not None:
        counts["location"] = location
    counts["read_only"] = bool(getattr(src, "read_only", False))
    return counts
