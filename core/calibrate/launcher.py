"""Start, watch and cancel a calibration process from the app (or any other long-lived caller).

The runner is `python -m core calibrate --spec FOLDER/spec.json --run-dir FOLDER --ingest`, started in its own
session (process group), so a cancel reaches it and anything it spawned (`accelerate launch` workers). Cancel =
write the `cancel` marker (the runner stops at its next step), SIGTERM the group (the runner stores what it
finished and writes status `cancelled`), then SIGKILL the group after a grace period. A process that died
without a final status is reported as failed with the tail of its log.

One live run per runs folder (`runs_dir()`, one per machine unless configured otherwise): runs share the
machine's CPU or GPU, so a second would distort both measurements. `live.json` in the runs folder names the
run that holds the machine; it is read and replaced under an exclusive `flock`, so two starts racing (two
browser sessions, or the app and a shell) cannot both win. The entry lapses by itself once that run's status
is final or its process is gone. Every session of the app sees the live run, and anyone may cancel it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from core.calibrate.runfolder import LOG, SPEC, RunFolder, Status, new_run_id, runs_dir
from core.calibrate.spec import CalibrationSpec
from core.errors import InputError

LAUNCH = "launch.json"
LIVE = "live.json"
GUARD = ".live.lock"
GRACE_S = 30.0  # a cancelled runner stores the methods it finished before it exits
_ROOT = Path(__file__).resolve().parents[2]
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}  # processes this process started, reaped on poll


@dataclass(frozen=True)
class Launched:
    """A started run: its folder and the process group leader's pid."""

    folder: RunFolder
    pid: int
    command: tuple[str, ...]

    @property
    def run_id(self) -> str:
        return self.folder.run_id


@dataclass(frozen=True)
class LiveRun:
    """The run that holds the machine: its id, process, start time (epoch seconds) and who started it."""

    run_id: str
    pid: int
    started: float
    owner: str

    @property
    def started_text(self) -> str:
        return time.strftime("%H:%M", time.localtime(self.started))

    @property
    def busy_message(self) -> str:
        return f"a calibration run is already running (started {self.started_text}); cancel it or wait"


class RunBusyError(InputError):
    """A start was refused because another run holds the machine."""

    def __init__(self, live: LiveRun) -> None:
        super().__init__(live.busy_message)
        self.live = live


@contextlib.contextmanager
def _guard(root: Path) -> Iterator[None]:
    """Exclusive access to `live.json` across processes (released when the holder exits, even by SIGKILL)."""
    root.mkdir(parents=True, exist_ok=True)
    with (root / GUARD).open("a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def live_run(root: Path | None = None) -> LiveRun | None:
    """The run holding the machine, or None when no run is live."""
    root = root or runs_dir()
    try:
        data = json.loads((root / LIVE).read_text(encoding="utf-8"))
        live = LiveRun(str(data["run_id"]), int(data["pid"]), float(data["started"]), str(data["owner"]))
    except (FileNotFoundError, KeyError, ValueError, TypeError):
        return None
    return None if state(RunFolder(root / live.run_id)).final else live


def _record(root: Path, live: LiveRun) -> None:
    RunFolder(root).write_json(LIVE, {"run_id": live.run_id, "pid": live.pid, "started": live.started,
                                      "owner": live.owner})


def claim(folder: RunFolder, owner: str) -> None:
    """Take the machine for a run started outside `launch` (a shell's `python -m core calibrate`); a run that
    `launch` started already holds it. Raises RunBusyError when another run is live."""
    root = folder.path.parent
    with _guard(root):
        live = live_run(root)
        if live is not None and live.run_id == folder.run_id:
            return
        if live is not None:
            raise RunBusyError(live)
        folder.create().write_json(LAUNCH, {"pid": os.getpid(), "command": sys.argv, "started": time.time()})
        _record(root, LiveRun(folder.run_id, os.getpid(), time.time(), owner))


def launch(spec: CalibrationSpec, *, root: Path | None = None, owner: str = "the app") -> Launched:
    """Write `spec` into a new run folder and start the runner on it, unless another run is live (RunBusyError)."""
    root = root or runs_dir()
    with _guard(root):
        live = live_run(root)
        if live is not None:
            raise RunBusyError(live)
        folder = RunFolder(root / new_run_id()).create()
        spec.write(folder.file(SPEC))
        command = (sys.executable, "-m", "core", "calibrate", "--spec", str(folder.file(SPEC)), "--run-dir",
                   str(folder.path), "--ingest")
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        folder.set_status("starting", "starting the calibration process", pid=0)
        with folder.file(LOG).open("wb") as log:
            process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                       cwd=_ROOT, env=env, start_new_session=True)
        _CHILDREN[process.pid] = process
        started = time.time()
        folder.write_json(LAUNCH, {"pid": process.pid, "command": list(command), "started": started})
        _record(root, LiveRun(folder.run_id, process.pid, started, owner))
    return Launched(folder, process.pid, command)


def launched_pid(folder: RunFolder) -> int | None:
    """The pid `launch` recorded (None for a folder started elsewhere)."""
    try:
        return int(json.loads(folder.file(LAUNCH).read_text(encoding="utf-8"))["pid"])
    except (FileNotFoundError, KeyError, ValueError):
        return None


def alive(pid: int | None) -> bool:
    """Whether the process still runs (children of this process are reaped here, so no zombie counts)."""
    if pid is None:
        return False
    child = _CHILDREN.get(pid)
    if child is not None:
        return child.poll() is None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def exit_code(pid: int | None) -> int | None:
    child = _CHILDREN.get(pid) if pid is not None else None
    return child.poll() if child is not None else None


def state(folder: RunFolder) -> Status:
    """The run's status; a process gone without a final status is a failure, with its log's last line."""
    status = folder.status() or Status("starting")
    if status.final:
        return status
    pid = launched_pid(folder)
    if pid is None or alive(pid):
        return status
    status = folder.status() or status  # it may have finished between the two reads
    if status.final:
        return status
    code = exit_code(pid)
    reason = f"the calibration process exited (code {code}) without a result" if code is not None else (
        "the calibration process is gone without a result")
    tail = log_tail(folder)
    return Status("failed", f"{reason}: {tail}" if tail else reason, pid)


def log_tail(folder: RunFolder, lines: int = 1) -> str:
    try:
        text = folder.file(LOG).read_text(encoding="utf-8", errors="replace").strip()
    except FileNotFoundError:
        return ""
    return " | ".join(text.splitlines()[-lines:])


def cancel(folder: RunFolder, *, grace_s: float = GRACE_S) -> Status:
    """Stop the run: marker, SIGTERM to its group, SIGKILL after `grace_s`; returns the final status."""
    folder.request_cancel()
    pid = launched_pid(folder)
    if pid is not None and alive(pid):
        _signal_group(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if alive(pid):
            _signal_group(pid, signal.SIGKILL)
            while alive(pid):
                time.sleep(0.05)
    status = folder.status()
    if status is None or not status.final:
        folder.set_status("cancelled", "cancelled by the user", pid=pid or 0)
        status = folder.status()
    assert status is not None
    return status


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, sig)  # the runner leads its own session, so its pid is the group id
