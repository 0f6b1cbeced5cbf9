"""Calibration runs and memory measurements: TuneWise's own measurements, and how they reach the warehouse.

The calibration runner is a long, separate process; it never holds the warehouse while it trains. It writes
a run folder instead, which `python -m core calibrate` ingests when the run ends and the app picks up if not:

    <folder>/calibration_runs.json|parquet      CalibrationRun records
    <folder>/memory_measurements.json|parquet   MemoryMeasurement records
    <folder>/results.csv|json|parquet           published-results rows (+ optional `seed`), origin 'calibration'
    <folder>/COMPLETE                           written last, so a half-written run is never ingested

`Warehouse.ingest_run_folder(folder)` validates every file first (`read_run_folder`), then lands everything in
one write turn (`write_run_folder`). Ingesting the same folder again is a no-op (its content hash is recorded).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq

from core.errors import InputError
from core.registry import METHODS
from core.warehouse.importer import OPTIONAL_COLUMNS, Prepared, prepare, read_file, record_import, write_staged
from core.warehouse.normalise import OTHER
from core.warehouse.paths import max_import_bytes

STATUSES: tuple[str, ...] = ("ok", "failed", "skipped")
COMPLETE_MARKER = "COMPLETE"


def _check_common(
    what: str,
    *,
    method_id: str,
    status: str,
    failure_reason: str | None,
    config: Any,
    library_versions: Any,
    device: str,
    model: str,
) -> None:
    """Checks shared by runs and measurements; messages say what to fix."""
    if not model.strip():
        raise InputError(f"{what}: model is empty")
    if not device.strip():
        raise InputError(f"{what}: device is empty (e.g. 'NVIDIA H100 80GB' or 'cpu')")
    if method_id not in METHODS:
        raise InputError(f"{what}: unknown method {method_id!r}; use a registry id such as lora or fft")
    if status not in STATUSES:
        raise InputError(f"{what}: status {status!r} is not one of {', '.join(STATUSES)}")
    if status == "ok" and failure_reason is not None:
        raise InputError(f"{what}: a run with status 'ok' has no failure_reason")
    if status != "ok" and not (failure_reason or "").strip():
        raise InputError(f"{what}: status {status!r} needs a failure_reason saying why")
    if not isinstance(config, Mapping):
        raise InputError(f"{what}: config must be a mapping of settings")
    try:
        json.dumps(config)
    except (TypeError, ValueError):
        raise InputError(f"{what}: config must be JSON-serialisable") from None
    if not isinstance(library_versions, Mapping) or not all(isinstance(v, str) for v in library_versions.values()):
        raise InputError(f"{what}: library_versions must map library names to version strings")


@dataclass(frozen=True)
class CalibrationRun:
    """One calibration run: a configuration, what was measured against what TuneWise predicted, or why not."""

    run_id: str
    model: str
    method_id: str
    config: Mapping[str, Any]
    device: str
    library_versions: Mapping[str, str]
    quantity: str  # what was measured, e.g. 'trainable_params' or 'gap_points'
    measured: float | None = None
    predicted: float | None = None
    status: str = "ok"
    failure_reason: str | None = None
    task: str | None = None

    def __post_init__(self) -> None:
        if not self.run_id.strip():
            raise InputError("a calibration run needs a run_id")
        what = f"calibration run {self.run_id!r}"
        _check_common(
            what,
            method_id=self.method_id,
            status=self.status,
            failure_reason=self.failure_reason,
            config=self.config,
            library_versions=self.library_versions,
            device=self.device,
            model=self.model,
        )
        if not self.quantity.strip():
            raise InputError(f"{what}: quantity is empty (what was measured, e.g. 'trainable_params')")
        if self.status == "ok" and self.measured is None:
            raise InputError(f"{what}: status 'ok' needs a measured value")


@dataclass(frozen=True)
class MemoryMeasurement:
    """Peak device memory of one configuration, measured and predicted, in bytes (or why it failed)."""

    model: str
    method_id: str
    config: Mapping[str, Any]
    device: str
    library_versions: Mapping[str, str]
    measured_bytes: int | None = None
    predicted_bytes: int | None = None
    status: str = "ok"
    failure_reason: str | None = None
    run_id: str | None = None

    def __post_init__(self) -> None:
        what = f"memory measurement of {self.model!r} / {self.method_id!r}"
        _check_common(
            what,
            method_id=self.method_id,
            status=self.status,
            failure_reason=self.failure_reason,
            config=self.config,
            library_versions=self.library_versions,
            device=self.device,
            model=self.model,
        )
        for name in ("measured_bytes", "predicted_bytes"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
                raise InputError(f"{what}: {name} must be a whole, non-negative number of bytes")
        if self.status == "ok" and self.measured_bytes is None:
            raise InputError(f"{what}: status 'ok' needs measured_bytes")


@dataclass(frozen=True)
class IngestReport:
    """What a run folder added; `skipped` when its exact content was ingested before.

    `calibration_runs` and `memory_measurements` count table rows (one per measured quantity and method);
    `runs` and `methods` count what a person started: the distinct runs (a row's run_id up to its first ':')
    and the distinct methods among them."""

    folder: str
    calibration_runs: int = 0
    memory_measurements: int = 0
    results: int = 0
    skipped: bool = False
    import_id: int | None = field(default=None)
    runs: int = 0
    methods: int = 0

    def __post_init__(self) -> None:
        if min(self.calibration_runs, self.memory_measurements, self.results, self.runs, self.methods) < 0:
            raise ValueError("counts cannot be negative")
        if self.skipped and (self.calibration_runs or self.memory_measurements or self.results or self.runs):
            raise ValueError("a skipped folder adds nothing")

    @property
    def counts(self) -> str:
        """Per run, without the folder: '1 run, 4 methods, 13 measurements, 0 results'."""
        if self.skipped:
            return "already ingested, nothing added"
        return (f"{_plural(self.runs, 'run')}, {_plural(self.methods, 'method')}, "
                f"{_plural(self.calibration_runs, 'measurement')}, {_plural(self.results, 'result')}")

    def __str__(self) -> str:
        return f"{self.folder}: {self.counts}"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' if n != 1 else ''}"


def insert_calibration_run(cur: duckdb.DuckDBPyConnection, run: CalibrationRun) -> None:
    """Insert inside the caller's transaction; a known run_id is refused."""
    try:
        cur.execute(
            "INSERT INTO calibration_runs (run_id, model, method_id, task, config, device, library_versions, "
            "quantity, measured, predicted, status, failure_reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [run.run_id, run.model, run.method_id, run.task, json.dumps(dict(run.config), sort_keys=True),
             run.device, json.dumps(dict(run.library_versions), sort_keys=True), run.quantity, run.measured,
             run.predicted, run.status, run.failure_reason],
        )  # fmt: skip
    except duckdb.ConstraintException:
        raise InputError(f"calibration run {run.run_id!r} is already recorded; give a new run a new run_id") from None


def insert_memory_measurement(cur: duckdb.DuckDBPyConnection, m: MemoryMeasurement) -> int:
    """Insert inside the caller's transaction; returns the new measurement id."""
    try:
        row = cur.execute(
            "INSERT INTO memory_measurements (run_id, model, method_id, config, device, library_versions, "
            "measured_bytes, predicted_bytes, status, failure_reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "RETURNING measurement_id",
            [m.run_id, m.model, m.method_id, json.dumps(dict(m.config), sort_keys=True), m.device,
             json.dumps(dict(m.library_versions), sort_keys=True), m.measured_bytes, m.predicted_bytes,
             m.status, m.failure_reason],
        ).fetchone()  # fmt: skip
    except duckdb.ConstraintException:
        raise InputError(f"memory measurement refers to unknown calibration run {m.run_id!r}") from None
    assert row is not None
    return int(row[0])


def _records(path: Path) -> list[dict[str, Any]]:
    """A JSON array of objects, or a Parquet file, as dicts."""
    if path.suffix == ".parquet":
        return pq.read_table(path).to_pylist()
    try:
        records = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path.name} is not UTF-8 JSON: {exc}") from None
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise InputError(f"{path.name}: expected a JSON array of objects, one per record")
    return records


def _build(kind: type[CalibrationRun] | type[MemoryMeasurement], path: Path) -> list[Any]:
    names = {f.name for f in dataclasses.fields(kind)}
    built = []
    for number, record in enumerate(_records(path), start=1):
        unknown = sorted(set(record) - names)
        if unknown:
            raise InputError(f"{path.name} record {number}: unknown fields {', '.join(unknown)}")
        for key in ("config", "library_versions"):  # Parquet writers often store these as JSON text
            if isinstance(record.get(key), str):
                record[key] = json.loads(record[key])
        try:
            built.append(kind(**record))
        except TypeError as exc:
            raise InputError(f"{path.name} record {number}: {exc}") from None
        except InputError as exc:
            raise InputError(f"{path.name} record {number}: {exc}") from None
    return built


def _find(folder: Path, stem: str, suffixes: tuple[str, ...]) -> Path | None:
    found = [folder / f"{stem}{s}" for s in suffixes if (folder / f"{stem}{s}").is_file()]
    if len(found) > 1:
        raise InputError(f"{folder}: both {found[0].name} and {found[1].name}; keep one")
    return found[0] if found else None


_FILES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("calibration_runs", (".json", ".parquet")),
    ("memory_measurements", (".json", ".parquet")),
    ("results", (".csv", ".json", ".parquet")),
)


def _present(folder: Path) -> tuple[Path | None, ...]:
    """(runs, measurements, results) files of a folder, each absent or one file."""
    return tuple(_find(folder, stem, suffixes) for stem, suffixes in _FILES)


def _digest(present: Iterable[Path]) -> str:
    """The folder's content hash: names and bytes of its record files (what makes ingesting idempotent)."""
    digest = hashlib.sha256()
    for path in present:
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


@dataclass(frozen=True)
class RunFolderContent:
    """A finished run folder, read and validated: what `write_run_folder` lands (nothing written yet)."""

    folder: str
    digest: str
    runs: tuple[CalibrationRun, ...]
    measurements: tuple[MemoryMeasurement, ...]
    results: Prepared | None

    def __post_init__(self) -> None:
        if len(self.digest) != 64:
            raise ValueError("digest must be a sha256 hex digest")


def read_run_folder(folder: Path, task_types: Iterable[str]) -> RunFolderContent:
    """Read and validate every file of a finished run folder (see the module docstring)."""
    if not folder.is_dir():
        raise InputError(f"no run folder at {folder}")
    if not (folder / COMPLETE_MARKER).is_file():
        raise InputError(f"{folder} has no {COMPLETE_MARKER} marker: the run is unfinished; ingest it when written")
    runs_file, memory_file, results_file = _present(folder)
    present = [p for p in (runs_file, memory_file, results_file) if p is not None]
    if not present:
        raise InputError(f"{folder} holds none of calibration_runs, memory_measurements or results files")
    runs = _build(CalibrationRun, runs_file) if runs_file else []
    measurements = _build(MemoryMeasurement, memory_file) if memory_file else []
    results = None
    if results_file is not None:
        results = prepare(read_file(results_file, max_import_bytes(), allowed=OPTIONAL_COLUMNS), task_types)
    return RunFolderContent(str(folder), _digest(present), tuple(runs), tuple(measurements), results)


def write_run_folder(cur: duckdb.DuckDBPyConnection, content: RunFolderContent) -> IngestReport:
    """Land a read run folder inside the caller's write; a folder whose content was ingested before adds nothing."""
    if cur.execute("SELECT 1 FROM imports WHERE sha256 = ?", [content.digest]).fetchall():
        return IngestReport(content.folder, skipped=True)
    results = content.results
    import_id = record_import(
        cur, name=content.folder, sha256=content.digest, origin="calibration",
        rows=results.staged.num_rows if results is not None else 0,
        other=results.normalisation.counts.get(OTHER, 0) if results is not None else 0,
    )  # fmt: skip
    for run in content.runs:
        insert_calibration_run(cur, run)
    for measurement in content.measurements:
        insert_memory_measurement(cur, measurement)
    if results is not None:
        write_staged(cur, results.staged, import_id=import_id, origin="calibration")
    records = (*content.runs, *content.measurements)
    return IngestReport(
        content.folder, len(content.runs), len(content.measurements),
        results.staged.num_rows if results is not None else 0, import_id=import_id,
        runs=len({r.run_id.split(":", 1)[0] for r in records if r.run_id}),
        methods=len({r.method_id for r in records}),
    )  # fmt: skip


def ingested_digests(cur: duckdb.DuckDBPyConnection) -> frozenset[str]:
    """Content hashes of every run folder already ingested (to find the ones not yet ingested)."""
    rows = cur.execute("SELECT sha256 FROM imports WHERE origin = 'calibration' AND sha256 IS NOT NULL").fetchall()
    return frozenset(r[0] for r in rows)


def pending_run_folders(root: Path, ingested: frozenset[str]) -> list[Path]:
    """Finished run folders under `root` whose content is not among the `ingested` hashes, oldest first.

    A folder whose files are unreadable is skipped here; ingesting it explicitly reports what is wrong.
    """
    if not root.is_dir():
        return []
    pending = []
    for folder in sorted(p for p in root.iterdir() if (p / COMPLETE_MARKER).is_file()):
        try:
            present = [p for p in _present(folder) if p is not None]
        except InputError:
            continue
        if present and _digest(present) not in ingested:
            pending.append(folder)
    return pending
