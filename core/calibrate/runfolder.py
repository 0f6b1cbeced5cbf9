"""The run folder: how a calibration process talks to the app without sharing memory or the warehouse.

The runner is a separate process; the app (the warehouse's single writer) only reads files. Layout:

    spec.json                   the settings of the run (written first)
    status.json                 {"state": running|done|failed|cancelled, "message", "pid", ...}; replaced atomically
    progress.jsonl              one JSON event per line, appended and flushed (steps, losses, method results)
    summary.json                {"runs": [...]}: per method and data size, what `--json` prints
    curves.parquet              learning curves (learn mode): method, data_size, step, loss, elapsed_s
    calibration_runs.parquet    CalibrationRun records     } ingested by core.warehouse.runs.ingest_run_folder
    memory_measurements.parquet MemoryMeasurement records  }
    results.parquet             published-results rows of the learn mode (origin 'calibration')
    COMPLETE                    written last: the folder is finished and may be ingested
    stored.json                 whether the runner stored the folder in the warehouse, and what it added
    cancel                      written by the app to ask the runner to stop at the next step
    runner.log                  the process's stdout and stderr
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from platformdirs import user_data_dir

from core.warehouse.runs import COMPLETE_MARKER

ENV_RUNS_DIR = "TUNEWISE_RUNS_DIR"
STATES: tuple[str, ...] = ("starting", "running", "done", "failed", "cancelled")
FINAL_STATES: tuple[str, ...] = ("done", "failed", "cancelled")

SPEC = "spec.json"
STATUS = "status.json"
PROGRESS = "progress.jsonl"
SUMMARY = "summary.json"
CURVES = "curves.parquet"
RUNS = "calibration_runs.parquet"
MEASUREMENTS = "memory_measurements.parquet"
RESULTS = "results.parquet"
CANCEL = "cancel"
LOG = "runner.log"
STORED = "stored.json"


def runs_dir() -> Path:
    """Where run folders live: `TUNEWISE_RUNS_DIR`, else `runs/` in the user data dir (beside the warehouse)."""
    configured = os.environ.get(ENV_RUNS_DIR, "").strip()
    if configured:
        return Path(configured).expanduser()
    return Path(user_data_dir("tunewise", appauthor=False)) / "runs"


def save_upload(name: str, data: bytes, root: Path | None = None) -> Path:
    """Keep an uploaded data file under `<runs>/uploads/<content hash>/<its name>` (the same bytes, the same
    path), so a spec can name it before its run folder exists and after the upload widget is gone."""
    folder = (root or runs_dir()) / "uploads" / hashlib.sha256(data).hexdigest()[:16]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / (Path(name).name or "data")
    path.write_bytes(data)
    return path


def new_run_id() -> str:
    """Sortable and unique: UTC time plus a random suffix, e.g. 20260101-120000-1a2b3c."""
    return f"{datetime.now(UTC):%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:6]}"


@dataclass(frozen=True)
class Status:
    """The run's state as the app sees it."""

    state: str
    message: str = ""
    pid: int | None = None
    updated: float = 0.0

    def __post_init__(self) -> None:
        if self.state not in STATES:
            raise ValueError(f"unknown run state {self.state!r}")

    @property
    def final(self) -> bool:
        return self.state in FINAL_STATES


class RunFolder:
    """One run's folder; every write is safe to read concurrently (atomic replace or flushed appends)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @property
    def run_id(self) -> str:
        return self.path.name

    def create(self) -> RunFolder:
        self.path.mkdir(parents=True, exist_ok=True)
        return self

    def file(self, name: str) -> Path:
        return self.path / name

    # -- writes (the runner) ------------------------------------------------------------------------------

    def write_json(self, name: str, payload: Mapping[str, Any]) -> None:
        """Write via a temporary file and os.replace, so a reader never sees half a file."""
        target = self.file(name)
        temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        temporary.write_text(json.dumps(payload, indent=1, default=str), encoding="utf-8")
        os.replace(temporary, target)

    def set_status(self, state: str, message: str = "", pid: int | None = None) -> None:
        status = Status(state, message, os.getpid() if pid is None else pid, time.time())
        self.write_json(STATUS, {"state": status.state, "message": status.message, "pid": status.pid,
                                 "updated": status.updated})

    def event(self, kind: str, **fields: Any) -> None:
        """Append one progress event as a JSON line, flushed so a polling reader sees it at once."""
        line = json.dumps({"event": kind, "time": time.time(), **fields}, default=str)
        with self.file(PROGRESS).open("a", encoding="utf-8") as handle:
            handle.write(line + "\n")
            handle.flush()

    def write_table(self, name: str, rows: Sequence[Mapping[str, Any]]) -> None:
        """Rows as Parquet (mappings are stored as JSON text, as runs.py reads them); nothing for no rows."""
        if not rows:
            return
        clean = [{k: json.dumps(v, sort_keys=True) if isinstance(v, Mapping) else v for k, v in r.items()}
                 for r in rows]
        target = self.file(name)
        temporary = target.with_name(f".{target.name}.tmp")
        pq.write_table(pa.Table.from_pylist(clean), temporary)
        os.replace(temporary, target)

    def mark_complete(self) -> None:
        self.file(COMPLETE_MARKER).write_text(datetime.now(UTC).isoformat(), encoding="utf-8")

    def request_cancel(self) -> None:
        self.file(CANCEL).write_text("cancel", encoding="utf-8")

    # -- reads (the app) ----------------------------------------------------------------------------------

    @property
    def cancel_requested(self) -> bool:
        return self.file(CANCEL).exists()

    @property
    def complete(self) -> bool:
        return self.file(COMPLETE_MARKER).is_file()

    def status(self) -> Status | None:
        try:
            data = json.loads(self.file(STATUS).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        return Status(data["state"], data.get("message", ""), data.get("pid"), data.get("updated", 0.0))

    def events(self) -> Iterator[dict[str, Any]]:
        """Every complete progress line (a line still being written is skipped until it ends)."""
        try:
            text = self.file(PROGRESS).read_text(encoding="utf-8")
        except FileNotFoundError:
            return
        for line in text.splitlines(keepends=True):
            if line.endswith("\n"):
                yield json.loads(line)

    def summary(self) -> list[dict[str, Any]]:
        try:
            return list(json.loads(self.file(SUMMARY).read_text(encoding="utf-8"))["runs"])
        except FileNotFoundError:
            return []

    def read_spec(self) -> dict[str, Any]:
        """The spec file as written (`CalibrationSpec.to_json`), unvalidated; empty before it is written."""
        return self._json(SPEC)

    def stored(self) -> dict[str, Any]:
        """What `runner.store` recorded (empty until the runner tried)."""
        return self._json(STORED)

    def _json(self, name: str) -> dict[str, Any]:
        try:
            return dict(json.loads(self.file(name).read_text(encoding="utf-8")))
        except FileNotFoundError:
            return {}
