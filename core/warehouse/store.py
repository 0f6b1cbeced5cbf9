"""The storage layer under the `Warehouse`: published snapshots for readers, copy-on-write turns for writers.

DuckDB's concurrency model (duckdb.org/docs/connect/concurrency) allows either one process that reads and
writes a file, or any number of processes that open it READ_ONLY while none writes; a process holding the
file open in one mode makes every other process's open in the other mode fail. TuneWise runs many app
replicas and CLI commands on one warehouse at once, so no process ever opens the published file for writing:

- **Readers** attach the published file READ_ONLY and keep that snapshot until a newer version is published.
  A published file is never modified in place, so holding it open blocks nobody, and every `cursor()` checks
  with one `stat` whether the name now points at a newer file and moves to it. Attaching into a private
  in-memory database sidesteps DuckDB's per-process instance cache, which would hand back the old file.
- **Writers** take turns behind a cross-process lock (`flock` on `<file>.lock`, waiting at most
  `TUNEWISE_WRITE_WAIT_S` seconds). The holder copies the published file to a private temporary file beside
  it, writes there, checkpoints, closes, fsyncs and renames the copy over the published name (atomic on
  POSIX). A writer killed midway leaves only its temporary file (removed by the next writer) and the kernel
  frees its lock; readers never see part of a write.

Each write copies the file: tens of milliseconds for the seeded warehouse, about a second at 1M results.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

import duckdb

from core.errors import InputError

SNAPSHOT = "tunewise_snapshot"  # the catalog name a reader attaches the published file under
QUIET = "SET enable_progress_bar = false"  # per connection: no progress bars over a CLI's one-line output
_POLL_S = 0.05


class WriteBusyError(InputError):
    """Another process held the warehouse's write lock for longer than this writer may wait."""


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _identity(file: Path) -> tuple[int, int, int, int]:
    """What changes when a new version is published over `file` (a rename gives a new inode)."""
    try:
        st = file.stat()
    except FileNotFoundError:
        raise InputError(
            f"no warehouse at {file}: create it once where it can be written (`python -m core warehouse init`)"
        ) from None
    return st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size


class FileSnapshots:
    """Read cursors on the newest published version of one warehouse file (see the module docstring)."""

    def __init__(self, file: Path) -> None:
        self.file = file
        self._guard = threading.Lock()
        self._identity: tuple[int, int, int, int] | None = None
        self._con: duckdb.DuckDBPyConnection | None = None

    def _attach(self) -> duckdb.DuckDBPyConnection:
        con = duckdb.connect()
        try:
            con.execute(f"ATTACH {_literal(str(self.file))} AS {SNAPSHOT} (READ_ONLY)")
        except duckdb.Error as exc:
            con.close()
            raise InputError(f"cannot read warehouse {self.file}: {str(exc).splitlines()[0]}") from None
        return con

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A fresh cursor on the newest snapshot; a query already running on an older one finishes there."""
        identity = _identity(self.file)
        with self._guard:
            if self._con is None or identity != self._identity:
                # The old snapshot is dropped, not closed: DuckDB keeps it alive while a cursor still uses it.
                self._con, self._identity = self._attach(), identity
            cur = self._con.cursor()
        cur.execute(f"USE {SNAPSHOT}")
        cur.execute(QUIET)
        return cur

    def close(self) -> None:
        with self._guard:
            if self._con is not None:
                self._con.close()
            self._con, self._identity = None, None


def lock_path(file: Path) -> Path:
    return file.with_name(f"{file.name}.lock")


def _holder(handle: IO[str]) -> str:
    handle.seek(0)
    return handle.read().strip() or "another process"


@contextmanager
def write_lock(file: Path, action: str, wait_s: float) -> Iterator[None]:
    """Hold the cross-process write lock of `file`, waiting at most `wait_s` seconds for the current holder."""
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        handle = lock_path(file).open("a+", encoding="utf-8")
    except OSError as exc:
        raise InputError(
            f"cannot {action}: the folder of {file} is not writable ({exc.strerror}); fix its permissions, or set "
            "TUNEWISE_READ_ONLY=1 for a read-only deployment"
        ) from None
    deadline = time.monotonic() + wait_s
    with handle:
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise WriteBusyError(
                        f"cannot {action}: another write is running on the warehouse {file} ({_holder(handle)}); "
                        f"gave up after {wait_s:g} s — try again in a moment, or wait longer with "
                        "TUNEWISE_WRITE_WAIT_S"
                    ) from None
                time.sleep(_POLL_S)
        try:
            handle.seek(0)
            handle.truncate()
            handle.write(f"{action}, pid {os.getpid()}, since {datetime.now(UTC):%H:%M:%S} UTC")
            handle.flush()
            yield
        finally:
            handle.seek(0)
            handle.truncate()
            handle.flush()
            fcntl.flock(handle, fcntl.LOCK_UN)


def _copies(file: Path) -> list[Path]:
    """Temporary copies of `file` that writers left (only the lock holder may call this)."""
    return list(file.parent.glob(f".{file.name}.*.tmp")) + list(file.parent.glob(f".{file.name}.*.tmp.wal"))


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def write_session(file: Path, action: str, wait_s: float) -> Iterator[duckdb.DuckDBPyConnection]:
    """A writable connection on a private copy of `file`, published over it if the block ends without error.

    Everything done in the block lands together or not at all (see the module docstring).
    """
    with write_lock(file, action, wait_s):
        for stale in _copies(file):  # a writer that died before publishing
            stale.unlink(missing_ok=True)
        copy = file.with_name(f".{file.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")
        wal = file.with_name(f"{file.name}.wal")
        try:
            if file.exists():
                shutil.copyfile(file, copy)
                if wal.exists():  # left by an older TuneWise that wrote in place; DuckDB replays it on open
                    shutil.copyfile(wal, copy.with_name(f"{copy.name}.wal"))
            con = duckdb.connect(str(copy))
            con.execute(QUIET)
            try:
                yield con
                con.execute("CHECKPOINT")
            finally:
                con.close()
            if copy.with_name(f"{copy.name}.wal").exists():
                raise RuntimeError(f"{copy} kept a write-ahead log after its checkpoint; nothing was published")
            _fsync(copy)
            os.replace(copy, file)
            wal.unlink(missing_ok=True)
            _fsync(file.parent)
        finally:
            copy.unlink(missing_ok=True)
            copy.with_name(f"{copy.name}.wal").unlink(missing_ok=True)
