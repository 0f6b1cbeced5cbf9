"""Import rows in the published-results format: read, validate every row, then write all or nothing.

Files: CSV (UTF-8, header row), Parquet, or JSON (an array of objects), with exactly the columns of
data/published_results.csv. Reading checks the file (type, size limit, encoding, columns); validation checks
every row (types, ranges, known task types) and collects every problem with its line number; only a clean
file is normalised (`prepare_*`) and written (`write_prepared`, inside the caller's write turn; see
store.py). Nothing is ever written for a rejected file. This module never opens the warehouse itself.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import numbers
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from core.errors import InputError
from core.warehouse import conventions
from core.warehouse.conventions import ORIGINS
from core.warehouse.models import link_model
from core.warehouse.normalise import OTHER, NormalisationReport, normalisation_report, normalise_method
from core.warehouse.paths import max_import_bytes

SUFFIXES: tuple[str, ...] = (".csv", ".parquet", ".json")
OPTIONAL_COLUMNS: tuple[str, ...] = ("seed",)  # rows TuneWise produces itself (DataFrames, run folders)
_TEXT_REQUIRED = ("source", "table", "base_model", "task", "task_type", "method", "metric", "adversarial")
_SHOWN_ERRORS = 5


class ImportRejectedError(InputError):
    """A file with bad rows: nothing was written. `errors` lists every (line number, reason)."""

    def __init__(self, name: str, errors: Sequence[tuple[int, str]], unit: str = "line") -> None:
        self.name = name
        self.errors = tuple(errors)
        self.unit = unit
        shown = "; ".join(f"{unit} {line}: {reason}" for line, reason in self.errors[:_SHOWN_ERRORS])
        more = f"; and {len(self.errors) - _SHOWN_ERRORS} more" if len(self.errors) > _SHOWN_ERRORS else ""
        super().__init__(f"{name} rejected: {self.count_text} — {shown}{more} — nothing was written; fix them and "
                         "re-import")

    @property
    def bad_rows(self) -> int:
        """How many rows of the file are bad (a row with several problems counts once)."""
        return len({line for line, _ in self.errors})

    @property
    def count_text(self) -> str:
        """'1 bad row (2 problems)': rows as the file has them, problems only when they differ."""
        rows, problems = self.bad_rows, len(self.errors)
        text = f"{rows} bad row" + ("s" if rows != 1 else "")
        return text + (f" ({problems} problems)" if problems != rows else "")


@dataclass(frozen=True)
class RawTable:
    """A file's rows before validation: each row with the line (or record) number users see."""

    name: str
    columns: tuple[str, ...]
    rows: tuple[tuple[int, Mapping[str, Any]], ...]
    unit: str
    sha256: str | None

    def __post_init__(self) -> None:
        if self.unit not in ("line", "record", "row"):
            raise ValueError(f"unknown row unit {self.unit!r}")


@dataclass(frozen=True)
class ImportReport:
    """What an import wrote: rows, the import id they carry, and how their method names normalised."""

    name: str
    import_id: int
    origin: str
    rows_added: int
    normalisation: NormalisationReport = field(repr=False)

    def __post_init__(self) -> None:
        if self.origin not in ORIGINS:
            raise ValueError(f"unknown origin {self.origin!r}")
        if self.rows_added != self.normalisation.rows:
            raise ValueError("rows added and normalised rows disagree")

    def __str__(self) -> str:
        added = f"imported {self.rows_added} rows from {self.name} (import #{self.import_id})"
        return f"{added}; {self.normalisation.summary()}"


# -- reading ------------------------------------------------------------------------------------------------


def read_file(path: Path, limit_bytes: int, *, allowed: Sequence[str] = ()) -> RawTable:
    """Read a results file; raises InputError for a missing, unknown, oversized, empty or unreadable file."""
    if not path.is_file():
        raise InputError(f"no file at {path}: check the path")
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise InputError(f"{path.name}: unknown file type {suffix or '(none)'!r}; use .csv, .parquet or .json")
    size = path.stat().st_size
    if size > limit_bytes:
        raise InputError(
            f"{path.name} is {size / 2**20:.1f} MB, over the {limit_bytes / 2**20:g} MB import limit; "
            "split it or raise TUNEWISE_MAX_IMPORT_MB"
        )
    data = path.read_bytes()
    if not data.strip():
        raise InputError(f"{path.name} is empty: it needs a header and at least one row")
    sha = hashlib.sha256(data).hexdigest()
    if suffix == ".csv":
        table = _read_csv(path.name, data, sha)
    elif suffix == ".json":
        table = _read_json(path.name, data, sha)
    else:
        table = _read_parquet(path.name, data, sha)
    _check_columns(table, allowed)
    if not table.rows:
        raise InputError(f"{path.name} has no rows: add at least one result under the header")
    return table


def _decode(name: str, data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{name} is not UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start}); re-save it as UTF-8"
        ) from None


def _read_csv(name: str, data: bytes, sha: str) -> RawTable:
    reader = csv.reader(io.StringIO(_decode(name, data), newline=""))
    try:
        header = tuple(h.strip() for h in next(reader))
        rows = []
        line = reader.line_num
        for record in reader:
            start, line = line + 1, reader.line_num
            if not record or not any(cell.strip() for cell in record):
                continue  # blank line
            if len(record) != len(header):
                rows.append((start, {"__error__": f"has {len(record)} fields, the header has {len(header)}"}))
                continue
            rows.append((start, dict(zip(header, record, strict=True))))
    except csv.Error as exc:
        raise InputError(f"{name} is not valid CSV near line {reader.line_num}: {exc}") from None
    return RawTable(name, header, tuple(rows), "line", sha)


def _read_json(name: str, data: bytes, sha: str) -> RawTable:
    try:
        records = json.loads(_decode(name, data))
    except json.JSONDecodeError as exc:
        raise InputError(f"{name} is not valid JSON (line {exc.lineno}: {exc.msg})") from None
    if not isinstance(records, list):
        raise InputError(f"{name}: JSON imports are an array of objects, one per row")
    columns: dict[str, None] = {}
    rows: list[tuple[int, Mapping[str, Any]]] = []
    for number, record in enumerate(records, start=1):
        if not isinstance(record, dict):
            rows.append((number, {"__error__": "is not a JSON object"}))
            continue
        columns.update(dict.fromkeys(record))
        rows.append((number, record))
    return RawTable(name, tuple(columns), tuple(rows), "record", sha)


def _read_parquet(name: str, data: bytes, sha: str) -> RawTable:
    try:
        table = pq.read_table(pa.BufferReader(data))
    except (pa.ArrowException, OSError) as exc:
        raise InputError(f"{name} is not a readable Parquet file: {exc}") from None
    rows = tuple(enumerate(table.to_pylist(), start=1))
    return RawTable(name, tuple(table.column_names), rows, "row", sha)


def frame_table(frame: pd.DataFrame) -> RawTable:
    """A DataFrame as rows numbered from 1, missing values as None."""
    if frame.empty:
        raise InputError("the DataFrame has no rows: nothing to add")
    clean = frame.astype(object).where(frame.notna(), None)
    rows = tuple(enumerate(clean.to_dict(orient="records"), start=1))
    return RawTable("DataFrame", tuple(str(c) for c in frame.columns), rows, "row", None)


def _check_columns(table: RawTable, allowed: Sequence[str]) -> None:
    missing = [c for c in conventions.PUBLISHED_COLUMNS if c not in table.columns]
    extra = [c for c in table.columns if c not in conventions.PUBLISHED_COLUMNS and c not in allowed]
    duplicated = sorted({c for c in table.columns if table.columns.count(c) > 1})
    problems = []
    if missing:
        problems.append(f"missing columns {', '.join(missing)}")
    if extra:
        problems.append(f"unexpected columns {', '.join(extra)}")
    if duplicated:
        problems.append(f"duplicated columns {', '.join(duplicated)}")
    if problems:
        raise InputError(
            f"{table.name}: {'; '.join(problems)} — the columns must be exactly: "
            f"{','.join(conventions.PUBLISHED_COLUMNS)}"
        )


# -- validation ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ValidRow:
    """One row that passed validation, typed."""

    line: int
    source: str
    table: str
    base_model: str
    base_params_b: float
    task: str
    task_type: str
    train_examples: int | None
    train_tokens: int | None
    method: str
    trainable_pct: float | None
    metric: str
    value: float
    distribution: str
    notes: str
    seed: int | None

    def __post_init__(self) -> None:
        if self.base_params_b <= 0:
            raise ValueError("base_params_b must be positive")
        if self.distribution not in conventions.DISTRIBUTION_NAMES:
            raise ValueError(f"unknown distribution {self.distribution!r}")


def _text(cell: Any) -> str:
    if cell is None:
        return ""
    if isinstance(cell, str):
        return cell.strip()
    raise TypeError(f"{cell!r} is not text")


def _number(column: str, cell: Any) -> float | None:
    if cell is None or (isinstance(cell, str) and not cell.strip()):
        return None
    if isinstance(cell, bool):
        raise ValueError(f"{column} {cell!r} is not a number")
    if isinstance(cell, numbers.Real):
        value = float(cell)
    else:
        try:
            value = float(str(cell).strip())
        except ValueError:
            raise ValueError(f"{column} {cell!r} is not a number") from None
    if not math.isfinite(value):
        raise ValueError(f"{column} {cell!r} is not a finite number")
    return value


def _train_size(cell: Any) -> tuple[int | None, int | None]:
    if isinstance(cell, numbers.Real) and not isinstance(cell, bool):
        count = float(cell)
        if not count.is_integer() or count < 0:
            raise ValueError(f"train_examples {cell!r} is not a whole number of examples")
        return int(count), None
    return conventions.parse_train_size(_text(cell))


def _validate_row(line: int, cells: Mapping[str, Any], task_types: frozenset[str]) -> tuple[ValidRow | None, list[str]]:
    """A typed row, or the reasons it is bad (every reason, not just the first)."""
    if "__error__" in cells:
        return None, [str(cells["__error__"])]
    reasons: list[str] = []
    text: dict[str, str] = {}
    for column in (*_TEXT_REQUIRED, "notes"):
        try:
            text[column] = _text(cells.get(column))
        except TypeError as exc:
            reasons.append(f"{column} {exc}")
            text[column] = ""
            continue
        if column != "notes" and not text[column]:
            reasons.append(f"{column} is empty")
    if text["task_type"] and text["task_type"] not in task_types:
        reasons.append(f"task_type {text['task_type']!r} is not one of {', '.join(sorted(task_types))}")
    distribution = ""
    if text["adversarial"]:
        try:
            distribution = conventions.distribution(text["adversarial"])
        except ValueError as exc:
            reasons.append(str(exc))
    parsed: dict[str, float | None] = {}
    for column in ("base_params_b", "trainable_pct", "value", "seed"):
        try:
            parsed[column] = _number(column, cells.get(column))
        except ValueError as exc:
            reasons.append(str(exc))
            parsed[column] = math.nan  # unparseable: already reported, skip the range checks below
    params, pct, value, seed = (parsed[c] for c in ("base_params_b", "trainable_pct", "value", "seed"))
    if params is None:
        reasons.append("base_params_b is empty: give the model size in billions, e.g. 0.125")
    elif not math.isnan(params) and not 0 < params <= 10_000:
        reasons.append(f"base_params_b {params:g} is outside (0, 10000] billions")
    if pct is not None and not math.isnan(pct) and not 0 <= pct <= 100:
        reasons.append(f"trainable_pct {pct:g} is outside [0, 100]")
    if value is None:
        reasons.append("value is empty")
    elif not math.isnan(value) and text["metric"] and (why := conventions.value_range_error(text["metric"], value)):
        reasons.append(why)
    if seed is not None and not math.isnan(seed) and not seed.is_integer():
        reasons.append(f"seed {seed:g} is not a whole number")
    try:
        examples, tokens = _train_size(cells.get("train_examples"))
    except (ValueError, TypeError) as exc:
        reasons.append(str(exc))
        examples = tokens = None
    if reasons or params is None or value is None:
        return None, reasons
    row = ValidRow(
        line=line,
        source=text["source"],
        table=text["table"],
        base_model=text["base_model"],
        base_params_b=params,
        task=text["task"],
        task_type=text["task_type"],
        train_examples=examples,
        train_tokens=tokens,
        method=text["method"],
        trainable_pct=pct,
        metric=text["metric"],
        value=value,
        distribution=distribution,
        notes=text["notes"],
        seed=None if seed is None else int(seed),
    )
    return row, []


def validate(table: RawTable, task_types: Iterable[str]) -> list[ValidRow]:
    """Every row typed and checked; raises ImportRejectedError listing every bad row."""
    known = frozenset(task_types)
    good: list[ValidRow] = []
    errors: list[tuple[int, str]] = []
    for line, cells in table.rows:
        row, reasons = _validate_row(line, cells, known)
        errors.extend((line, reason) for reason in reasons)
        if row is not None:
            good.append(row)
    if errors:
        raise ImportRejectedError(table.name, errors, table.unit)
    return good


# -- normalising and writing --------------------------------------------------------------------------------

_STAGE_SCHEMA = pa.schema(
    [
        ("row_order", pa.int64()), ("source", pa.string()), ("table_ref", pa.string()),
        ("base_model", pa.string()), ("base_params_b", pa.float64()), ("model_family", pa.string()),
        ("catalogue_id", pa.string()), ("task", pa.string()), ("task_type", pa.string()), ("metric", pa.string()),
        ("metric_kind", pa.string()), ("higher_is_better", pa.bool_()), ("distribution", pa.string()),
        ("method_id", pa.string()), ("method_raw", pa.string()), ("rank", pa.int32()), ("alpha", pa.float64()),
        ("targets", pa.string()), ("top_layers", pa.int32()), ("quantization", pa.string()),
        ("variant", pa.string()), ("quoted_from_prior_work", pa.bool_()), ("restricted_setup", pa.bool_()),
        ("trainable_pct", pa.float64()), ("train_examples", pa.int64()), ("train_tokens", pa.int64()),
        ("epochs", pa.float64()), ("metric_value", pa.float64()), ("value_scale", pa.string()),
        ("value_100", pa.float64()), ("seed", pa.int64()), ("notes", pa.string()),
    ]
)  # fmt: skip


def stage(rows: Sequence[ValidRow]) -> tuple[pa.Table, NormalisationReport]:
    """Normalise valid rows into the columns the warehouse stores, plus the normalisation report."""
    groups: dict[tuple[str, str], list[float]] = defaultdict(list)
    for row in rows:
        groups[(row.source, row.metric)].append(row.value)
    scales = {key: conventions.infer_scale(key[1], values) for key, values in groups.items()}
    methods = [normalise_method(row.method, row.notes) for row in rows]
    records = []
    for order, (row, method) in enumerate(zip(rows, methods, strict=True)):
        link = link_model(row.base_model)
        scale = scales[(row.source, row.metric)]
        records.append(
            {
                "row_order": order, "source": row.source, "table_ref": row.table, "base_model": row.base_model,
                "base_params_b": row.base_params_b, "model_family": link.family, "catalogue_id": link.catalogue_id,
                "task": row.task, "task_type": row.task_type, "metric": row.metric,
                "metric_kind": conventions.metric_kind(row.metric),
                "higher_is_better": conventions.higher_is_better(row.metric), "distribution": row.distribution,
                "method_id": method.method_id, "method_raw": row.method, "rank": method.rank, "alpha": method.alpha,
                "targets": method.targets, "top_layers": method.top_layers, "quantization": method.quantization,
                "variant": method.variant, "quoted_from_prior_work": method.quoted_from_prior_work,
                "restricted_setup": method.restricted, "trainable_pct": row.trainable_pct,
                "train_examples": row.train_examples, "train_tokens": row.train_tokens,
                "epochs": conventions.parse_epochs(row.notes), "metric_value": row.value, "value_scale": scale,
                "value_100": conventions.to_100(row.value, scale), "seed": row.seed, "notes": row.notes or None,
            }
        )  # fmt: skip
    return pa.Table.from_pylist(records, schema=_STAGE_SCHEMA), normalisation_report(methods)


def record_import(
    cur: duckdb.DuckDBPyConnection, *, name: str, sha256: str | None, origin: str, rows: int, other: int
) -> int:
    """Add the `imports` row; refuses a file whose exact bytes were imported before."""
    if sha256 is not None:
        seen = cur.execute("SELECT import_id, imported_at FROM imports WHERE sha256 = ?", [sha256]).fetchone()
        if seen is not None:
            raise InputError(
                f"{name} was already imported (import #{seen[0]} on {seen[1]:%Y-%m-%d %H:%M}); "
                "nothing was written — import a changed file, or leave it"
            )
    row = cur.execute(
        "INSERT INTO imports (file_name, sha256, origin, row_count, other_methods) VALUES (?, ?, ?, ?, ?) "
        "RETURNING import_id",
        [name, sha256, origin, rows, other],
    ).fetchone()
    assert row is not None
    return int(row[0])


# The staged rows joined to their dimension ids; setups are matched NULL-safely (blank size = blank size).
_KEYED = """
    SELECT st.*, so.source_id, mo.model_id, ta.task_id
    FROM staged st
    JOIN sources so ON so.citation = st.source AND so.table_ref = st.table_ref
    JOIN models mo ON mo.name = st.base_model AND mo.params_b = st.base_params_b
    JOIN tasks ta ON ta.name = st.task AND ta.task_type = st.task_type AND ta.metric = st.metric
        AND ta.distribution = st.distribution
"""
_SAME_SETUP = """
    su.source_id = k.source_id AND su.model_id = k.model_id AND su.task_id = k.task_id
    AND su.train_examples IS NOT DISTINCT FROM k.train_examples
    AND su.train_tokens IS NOT DISTINCT FROM k.train_tokens
    AND su.epochs IS NOT DISTINCT FROM k.epochs
"""


def _upsert_dimensions(cur: duckdb.DuckDBPyConnection) -> None:
    """Add unseen sources, models, tasks and setups, numbered in order of first appearance in the file."""
    cur.execute(
        "INSERT INTO sources (citation, table_ref) "
        "SELECT source, table_ref FROM staged GROUP BY ALL ORDER BY min(row_order) ON CONFLICT DO NOTHING"
    )
    cur.execute(
        "INSERT INTO models (name, params_b, family, catalogue_id) "
        "SELECT base_model, base_params_b, any_value(model_family), any_value(catalogue_id) FROM staged "
        "GROUP BY base_model, base_params_b ORDER BY min(row_order) ON CONFLICT DO NOTHING"
    )
    cur.execute(
        "INSERT INTO tasks (name, task_type, metric, metric_kind, higher_is_better, distribution) "
        "SELECT task, task_type, metric, metric_kind, higher_is_better, distribution FROM staged "
        "GROUP BY ALL ORDER BY min(row_order) ON CONFLICT DO NOTHING"
    )
    cur.execute(
        f"""
        INSERT INTO setups (source_id, model_id, task_id, train_examples, train_tokens, epochs)
        SELECT k.source_id, k.model_id, k.task_id, k.train_examples, k.train_tokens, k.epochs
        FROM ({_KEYED}) k
        WHERE NOT EXISTS (SELECT 1 FROM setups su WHERE {_SAME_SETUP})
        GROUP BY ALL ORDER BY min(k.row_order)
        """
    )


def _insert_results(cur: duckdb.DuckDBPyConnection, import_id: int, origin: str) -> int:
    row = cur.execute(
        f"""
        INSERT INTO results (
            import_id, source_id, model_id, task_id, setup_id, method_id, method_raw, rank, alpha, targets,
            top_layers, quantization, variant, quoted_from_prior_work, restricted_setup, trainable_pct,
            metric_value, value_scale, value_100, seed, notes, origin)
        SELECT ?, k.source_id, k.model_id, k.task_id, su.setup_id, k.method_id, k.method_raw, k.rank, k.alpha,
            k.targets, k.top_layers, k.quantization, k.variant, k.quoted_from_prior_work, k.restricted_setup,
            k.trainable_pct, k.metric_value, k.value_scale, k.value_100, k.seed, k.notes, ?
        FROM ({_KEYED}) k
        JOIN setups su ON {_SAME_SETUP}
        ORDER BY k.row_order
        """,
        [import_id, origin],
    ).fetchone()
    return int(row[0]) if row else 0


def refresh_pairs(cur: duckdb.DuckDBPyConnection, import_id: int | None) -> None:
    """Recompute `pair_rows` from the `pairs` view for the setups an import touched (None: all setups).

    Called inside the writer's transaction, so readers never see results without their pairs. Rows are
    written clustered by task type and method, the dashboard's main filters, so DuckDB's min/max zone
    maps skip the row groups a filtered query does not need.
    """
    order = "ORDER BY task_type, method_id, peft_result_id"
    if import_id is None:
        cur.execute("DELETE FROM pair_rows")
        cur.execute(f"INSERT INTO pair_rows SELECT * FROM pairs {order}")
        return
    touched = "SELECT DISTINCT setup_id FROM results WHERE import_id = ?"
    cur.execute(f"DELETE FROM pair_rows WHERE setup_id IN ({touched})", [import_id])
    cur.execute(f"INSERT INTO pair_rows SELECT * FROM pairs WHERE setup_id IN ({touched}) {order}", [import_id])


def write_staged(cur: duckdb.DuckDBPyConnection, staged: pa.Table, *, import_id: int, origin: str) -> None:
    """Write normalised rows inside the caller's transaction; every staged row must land."""
    if origin not in ORIGINS:
        raise ValueError(f"unknown origin {origin!r}")
    cur.register("staged", staged)
    try:
        _upsert_dimensions(cur)
        written = _insert_results(cur, import_id, origin)
    finally:
        cur.unregister("staged")
    if written != staged.num_rows:
        raise RuntimeError(f"wrote {written} of {staged.num_rows} rows; the import was rolled back")
    refresh_pairs(cur, import_id)


@dataclass(frozen=True)
class Prepared:
    """A validated, normalised file or frame, ready to be written by `write_prepared` (nothing written yet)."""

    name: str
    sha256: str | None
    staged: pa.Table
    normalisation: NormalisationReport

    def __post_init__(self) -> None:
        if self.staged.num_rows != self.normalisation.rows:
            raise ValueError("staged and normalised rows disagree")


def prepare(table: RawTable, task_types: Iterable[str]) -> Prepared:
    """Validate every row, then normalise; raises ImportRejectedError listing every bad row."""
    staged, report = stage(validate(table, task_types))
    return Prepared(table.name, table.sha256, staged, report)


def prepare_file(path: Path, task_types: Iterable[str], *, max_mb: float | None = None) -> Prepared:
    """Read and validate a results file (see the module docstring)."""
    return prepare(read_file(path, max_import_bytes(max_mb)), task_types)


def prepare_frame(frame: pd.DataFrame, task_types: Iterable[str]) -> Prepared:
    """`prepare_file` for a DataFrame in the published-results format (an optional `seed` column allowed)."""
    table = frame_table(frame)
    _check_columns(table, OPTIONAL_COLUMNS)
    return prepare(table, task_types)


def write_prepared(cur: duckdb.DuckDBPyConnection, prepared: Prepared, *, origin: str) -> ImportReport:
    """Write a prepared import inside the caller's write (all rows or none, with its `imports` row)."""
    if origin not in ORIGINS:
        raise InputError(f"origin {origin!r} is not one of {', '.join(ORIGINS)}")
    rows = prepared.staged.num_rows
    import_id = record_import(
        cur, name=prepared.name, sha256=prepared.sha256, origin=origin, rows=rows,
        other=prepared.normalisation.counts.get(OTHER, 0),
    )  # fmt: skip
    write_staged(cur, prepared.staged, import_id=import_id, origin=origin)
    return ImportReport(prepared.name, import_id, origin, rows, prepared.normalisation)
